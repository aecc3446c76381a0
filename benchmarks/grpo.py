"""GRPO: ``llmctl finetune --method grpo`` next to trl's GRPOTrainer at the same settings (steps/s, peak memory).

Same model, LoRA, prompts, G answers per prompt, answer length, learning rate, loss (dapo), β = 0 and fp32; each
configuration in its own process (``python -m benchmarks.grpo WORKER``) so its peak resident memory is its own. The
reward (answer length in words) only has to be the same on both sides: generation dominates a GRPO step, so answers
that stop early would make a step cheaper, and each side's mean answer length is reported next to its speed.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT, spawn_worker
from benchmarks.report import Row, Section

MODEL = "smollm2-135m"
PROMPTS_PER_STEP = 2
GENERATIONS = 4
NEW_TOKENS = 48
STEPS = int(os.environ.get("LLMCTL_BENCH_GRPO_STEPS", "8"))  # fewer for a quick look
LORA_R = 8
LEARNING_RATE = 5e-5
DATA = ROOT / "recipes" / "data" / "prompts.jsonl"


def answer_words(prompts, completions, **_):
    """The reward of both sides: words per answer (any reward does; it only has to be the same)."""
    return [float(len(str(c if isinstance(c, str) else c[-1]["content"]).split())) for c in completions]


def _peak_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _ours(directory: Path) -> dict[str, float]:
    """One ``llmctl finetune --method grpo`` run in this process: steps/s, peak memory, mean answer tokens."""
    from llmctl.train.finetune import FinetuneRequest, run_finetune

    os.environ["LLMCTL_RUNS_DIR"] = str(directory / "runs")
    overrides = [f"max_steps={STEPS}", f"batch_size={PROMPTS_PER_STEP}", f"num_generations={GENERATIONS}",
                 f"max_new_tokens={NEW_TOKENS}", "reward=benchmarks.grpo:answer_words", "loss_type=dapo", "beta=0",
                 "temperature=1.0", "val_split=0", "eval_every=0", "save_every=0", "precision=fp32",
                 f"lora_r={LORA_R}", f"lora_alpha={2 * LORA_R}", "lora_dropout=0", f"learning_rate={LEARNING_RATE}"]
    outcome = run_finetune(FinetuneRequest(model=MODEL, method="grpo", data=str(DATA), overrides=overrides))
    records = outcome.result.history
    length = sum(r["completion_length"] for r in records) / len(records)
    return {"steps_per_s": outcome.result.steps / outcome.result.seconds, "peak_bytes": _peak_bytes(),
            "completion_length": length}


def _trl(directory: Path) -> dict[str, float]:
    """trl's GRPOTrainer with the same model, LoRA, prompts, G, lengths, learning rate, loss and precision."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from llmctl.models.loading import load_tokenizer
    from llmctl.models.resolve import resolve_model
    from llmctl.plugins import get_registry

    path = resolve_model(MODEL).path
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype="float32")
    prompts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in prompts])
    targets = list(get_registry().family("smollm2").lora_target_modules)
    args = GRPOConfig(output_dir=str(directory / "trl"), bf16=False, use_cpu=True, report_to=[], max_steps=STEPS,
                      per_device_train_batch_size=PROMPTS_PER_STEP * GENERATIONS, num_generations=GENERATIONS,
                      max_completion_length=NEW_TOKENS, temperature=1.0, loss_type="dapo", beta=0.0,
                      learning_rate=LEARNING_RATE, logging_steps=1, save_strategy="no", lr_scheduler_type="cosine",
                      warmup_steps=int(0.1 * STEPS), max_grad_norm=1.0)
    peft = LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.0, target_modules=targets,
                      task_type="CAUSAL_LM")
    lengths: list[float] = []

    class Lengths(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            """Keep trl's mean answer length of each step."""
            if logs and "completions/mean_length" in logs:
                lengths.append(float(logs["completions/mean_length"]))

    trainer = GRPOTrainer(model=model, reward_funcs=[answer_words], args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft, callbacks=[Lengths()])
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return {"steps_per_s": STEPS / seconds, "peak_bytes": _peak_bytes(),
            "completion_length": sum(lengths) / len(lengths) if lengths else float("nan")}


def _worker(kind: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llmctl-bench-grpo-") as folder:
        return _trl(Path(folder)) if kind == "trl" else _ours(Path(folder))


def _spawn(kind: str) -> dict[str, float]:
    """Run one worker in a fresh process and return its JSON report."""
    return spawn_worker("benchmarks.grpo", kind)


def run() -> Section:
    """llmctl GRPO steps/s over trl's GRPOTrainer (target ≥ 1.5×) and peak memory (target ≤ 1.0×)."""
    section = Section("GRPO: speed and memory next to trl's GRPOTrainer",
                      f"{MODEL}, LoRA r={LORA_R} on the family's projections, {PROMPTS_PER_STEP} prompts × "
                      f"G={GENERATIONS} answers per step, up to {NEW_TOKENS} new tokens at temperature 1, loss dapo, "
                      f"β=0, fp32, {STEPS} steps, `recipes/data/prompts.jsonl`; each side in its own process. "
                      "llmctl samples each prompt's G answers from one prefill and trains them on the prompt's "
                      "shared key/value cache; trl runs `generate` and full rows. Peak memory is the process's peak "
                      "resident set.")
    ours = _spawn("ours")
    mib = 2 ** 20
    try:
        trl = _spawn("trl")
    except RuntimeError as error:
        section.rows.append(Row("llmctl GRPO steps/s", ours["steps_per_s"], "steps/s", "trl GRPOTrainer",
                                float("nan"), note=f"trl not measured: {error}"))
        return section
    section.rows.append(Row("llmctl GRPO steps/s", ours["steps_per_s"], "steps/s", "trl GRPOTrainer (same settings)",
                            trl["steps_per_s"], note=f"target ≥ 1.5×; mean answer tokens: llmctl "
                                                     f"{ours['completion_length']:.1f}, trl "
                                                     f"{trl['completion_length']:.1f}"))
    section.rows.append(Row("llmctl GRPO peak memory", ours["peak_bytes"] / mib, "MiB",
                            "trl GRPOTrainer (same settings)", trl["peak_bytes"] / mib, higher_is_better=False,
                            note="target ≤ 1.0× (ratio ≥ 1 here: the ratio column is × better)"))
    return section


if __name__ == "__main__":
    print(json.dumps(_worker(sys.argv[1])))
