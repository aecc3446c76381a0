"""DPO next to LoRA SFT (peak memory, same model, adapter and batch) and next to trl's DPOTrainer (steps/s).

Each configuration runs in its own process (``python -m benchmarks.align WORKER``) so its peak resident memory
is its own. SFT trains on the same rows DPO sees (prompt + chosen and prompt + rejected as separate examples, so a
batch of B pairs is 2B rows); trl runs with the same LoRA, batch, length, learning rate and fp32.
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
PAIRS_PER_BATCH = 2
STEPS = int(os.environ.get("LLMCTL_BENCH_ALIGN_STEPS", "8"))  # fewer for a quick look
MAX_LENGTH = 96
LORA_R = 8
LEARNING_RATE = 5e-5
DATA = ROOT / "recipes" / "data" / "preferences.jsonl"


def _peak_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sft_file(directory: Path) -> Path:
    """The preference pairs as SFT conversations: prompt + chosen and prompt + rejected, one row each."""
    from llmctl.data.preference import read_preferences

    rows = []
    for pair in read_preferences(DATA):
        for answer in (pair.chosen, pair.rejected):
            text = answer if isinstance(answer, str) else answer[-1]["content"]
            rows.append({"messages": [*pair.prompt, {"role": "assistant", "content": text}]})
    path = directory / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _ours(method: str, directory: Path) -> dict[str, float]:
    """One `llmctl finetune` run in this process: steps/s and peak memory."""
    from llmctl.train.finetune import FinetuneRequest, run_finetune

    os.environ["LLMCTL_RUNS_DIR"] = str(directory / "runs")
    data = DATA if method == "dpo" else _sft_file(directory)
    batch = PAIRS_PER_BATCH if method == "dpo" else 2 * PAIRS_PER_BATCH
    overrides = [f"max_steps={STEPS}", f"batch_size={batch}", f"max_length={MAX_LENGTH}", "val_split=0",
                 "eval_every=0", "save_every=0", "precision=fp32", f"lora_r={LORA_R}", f"lora_alpha={2 * LORA_R}",
                 "lora_dropout=0", f"learning_rate={LEARNING_RATE}"]
    outcome = run_finetune(FinetuneRequest(model=MODEL, method=method if method == "dpo" else "lora",
                                           data=str(data), overrides=overrides))
    return {"steps_per_s": outcome.result.steps / outcome.result.seconds, "peak_bytes": _peak_bytes()}


def _trl(directory: Path) -> dict[str, float]:
    """trl's DPOTrainer with the same model, LoRA, batch, length, learning rate and precision."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from llmctl.data.preference import read_preferences
    from llmctl.models.loading import load_tokenizer
    from llmctl.models.resolve import resolve_model
    from llmctl.plugins import get_registry

    path = resolve_model(MODEL).path
    tokenizer = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype="float32")
    pairs = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in read_preferences(DATA)]
    targets = list(get_registry().family("smollm2").lora_target_modules)
    args = DPOConfig(output_dir=str(directory / "trl"), bf16=False, use_cpu=True, report_to=[], max_steps=STEPS,
                     per_device_train_batch_size=PAIRS_PER_BATCH, max_length=MAX_LENGTH, learning_rate=LEARNING_RATE,
                     beta=0.1, logging_steps=STEPS, save_strategy="no", lr_scheduler_type="cosine",
                     warmup_steps=int(0.1 * STEPS), max_grad_norm=1.0)
    peft = LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.0, target_modules=targets,
                      task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer,
                         peft_config=peft)
    started = time.perf_counter()
    trainer.train()
    return {"steps_per_s": STEPS / (time.perf_counter() - started), "peak_bytes": _peak_bytes()}


def _worker(kind: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llmctl-bench-align-") as folder:
        return _trl(Path(folder)) if kind == "trl" else _ours(kind, Path(folder))


def _spawn(kind: str) -> dict[str, float]:
    """Run one worker in a fresh process and return its JSON report."""
    return spawn_worker("benchmarks.align", kind)


def run() -> Section:
    """DPO peak memory over LoRA SFT (target ≤ 1.2×) and DPO steps/s over trl's DPOTrainer."""
    section = Section("DPO: memory next to LoRA SFT, speed next to trl",
                      f"{MODEL}, LoRA r={LORA_R} on the family's projections, {PAIRS_PER_BATCH} pairs per step "
                      f"(SFT: the same {2 * PAIRS_PER_BATCH} rows), max_length {MAX_LENGTH}, fp32, {STEPS} steps, "
                      f"`recipes/data/preferences.jsonl`; each configuration in its own process. Peak memory is "
                      "the process's peak resident set (model, optimizer, activations and runtime).")
    dpo, sft = _spawn("dpo"), _spawn("sft")
    mib = 2 ** 20
    section.rows.append(Row("llmctl DPO peak memory", dpo["peak_bytes"] / mib, "MiB", "llmctl LoRA SFT, same rows",
                            sft["peak_bytes"] / mib, higher_is_better=False,
                            note=f"DPO / SFT = {dpo['peak_bytes'] / sft['peak_bytes']:.2f}× (target ≤ 1.2×: the "
                                 "reference is the adapter switched off, no second model copy)"))
    try:
        trl = _spawn("trl")
    except RuntimeError as error:
        section.rows.append(Row("llmctl DPO steps/s", dpo["steps_per_s"], "steps/s", "trl DPOTrainer", float("nan"),
                                note=f"trl not measured: {error}"))
        return section
    section.rows.append(Row("llmctl DPO steps/s", dpo["steps_per_s"], "steps/s", "trl DPOTrainer (same settings)",
                            trl["steps_per_s"], note=f"trl peak memory {trl['peak_bytes'] / mib:.0f} MiB"))
    return section


if __name__ == "__main__":
    print(json.dumps(_worker(sys.argv[1])))
