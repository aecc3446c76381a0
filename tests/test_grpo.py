"""GRPO: advantages by hand, loss and gradients against trl's GRPOTrainer code, learning, and an exact resume."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from tests.align_fixtures import lora, tiny_causal_lm, word_tokenizer

REWARD = "reward=tests.ppo_rewards:target_word_count"
TEMPERATURE = 0.7
GROUP = 3


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and other work on a 2-core machine does not stall them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_group_advantages_match_hand_computed_values():
    import torch

    from llmctl_plugins.methods.grpo._loss import STD_EPS, group_advantages

    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 0.0, 1.0, 0.0])
    std = (1 / 3) ** 0.5  # group 1: deviations ±0.5, Bessel: (4 × 0.25) / 3
    std3 = (sum((r - 1.0) ** 2 for r in (3.0, 0.0, 1.0, 0.0)) / 3) ** 0.5
    group, stds = group_advantages(rewards, 4, "group")
    expected = [0.5 / (std + STD_EPS), -0.5 / (std + STD_EPS), -0.5 / (std + STD_EPS), 0.5 / (std + STD_EPS),
                0, 0, 0, 0, 2 / (std3 + STD_EPS), -1 / (std3 + STD_EPS), 0, -1 / (std3 + STD_EPS)]
    torch.testing.assert_close(group, torch.tensor(expected))
    assert stds.tolist()[1] == 0.0  # a group whose answers all score the same teaches nothing
    rloo, _ = group_advantages(rewards, 4, "rloo")  # r − mean of the three others
    torch.testing.assert_close(rloo, torch.tensor([1 - 1 / 3, 0 - 2 / 3, 0 - 2 / 3, 1 - 1 / 3, 0, 0, 0, 0,
                                                   3 - 1 / 3, 0 - 4 / 3, 1 - 1, 0 - 4 / 3]))
    plain, _ = group_advantages(rewards, 4, "none-std")
    torch.testing.assert_close(plain, torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0, 2.0, -1.0, 0.0, -1.0]))


def _batch(tokenizer, seed: int = 0) -> dict:
    """Two prompts of one length (so trl's positions are ours), three answers each, of different lengths."""
    import torch

    rng = random.Random(seed)
    rows, width = 6, 7
    prompts = [tokenizer(" ".join(f"w{rng.randrange(20, 300)}" for _ in range(5)))["input_ids"] for _ in range(2)]
    completion = torch.full((rows, width), tokenizer.pad_token_id)
    mask = torch.zeros(rows, width)
    for row, length in enumerate([7, 3, 5, 1, 7, 4]):
        completion[row, :length] = torch.tensor([rng.randrange(6, 480) for _ in range(length)])
        mask[row, :length] = 1
    prompt_ids = torch.tensor(prompts)
    return {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion,
            "completion_mask": mask, "advantages": torch.tensor([1.3, -0.7, 0.4, -1.1, 0.0, 0.9])}


def _trl_inputs(inputs: dict) -> dict:
    """trl's layout: every answer's row carries its prompt."""
    return {**inputs, "prompt_ids": inputs["prompt_ids"].repeat_interleave(GROUP, 0),
            "prompt_mask": inputs["prompt_mask"].repeat_interleave(GROUP, 0)}


def _trl_trainer(policy, tmp_path, tokenizer, **config):
    """trl's GRPOTrainer on a fresh copy of the tiny model with ``policy``'s adapter weights copied in."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tests.ppo_rewards import target_word_count

    base = tiny_causal_lm(seed=0, vocab_size=len(tokenizer))
    args = GRPOConfig(output_dir=str(tmp_path / "trl"), bf16=False, use_cpu=True, report_to=[],
                      per_device_train_batch_size=6, num_generations=3, max_completion_length=7,
                      temperature=TEMPERATURE, **config)
    trainer = GRPOTrainer(model=base, reward_funcs=[target_word_count], args=args,
                          train_dataset=Dataset.from_list([{"prompt": "w1 w2"}] * 6), processing_class=tokenizer,
                          peft_config=policy.peft_config["default"])
    assert not trainer.model.load_state_dict(policy.state_dict(), strict=False).missing_keys
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


@pytest.fixture(scope="module")
def policy_and_batch():
    """A tiny llama with a non-trivial LoRA adapter, and one batch of answers."""
    tokenizer = word_tokenizer()
    policy = lora(tiny_causal_lm(seed=0, vocab_size=len(tokenizer)), init_b=True)
    return policy, tokenizer, _batch(tokenizer)


def _our_logps(policy, inputs, reference: bool = False, shared: bool = True):
    import contextlib

    import torch

    from llmctl_plugins.methods.grpo._rollout import answer_logprobs

    off = contextlib.nullcontext
    with torch.no_grad() if reference else off(), policy.disable_adapter() if reference else off():
        return answer_logprobs(policy, inputs, GROUP, TEMPERATURE, shared)


@pytest.mark.parametrize("shared", [True, False])
def test_completion_logprobs_match_trl(policy_and_batch, tmp_path, shared):
    """Our log-probabilities (answer positions only, at the sampling temperature) are trl's, policy and reference,
    with each prompt run once for its answers (its key/value cache shared) or every answer's whole row."""
    import torch

    policy, tokenizer, inputs = policy_and_batch
    trainer = _trl_trainer(policy, tmp_path, tokenizer)
    rows = _trl_inputs(inputs)
    ids = torch.cat([rows["prompt_ids"], rows["completion_ids"]], 1)
    attention = torch.cat([rows["prompt_mask"], rows["completion_mask"].long()], 1)
    with torch.no_grad():
        theirs, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, 7)
        with trainer.model.disable_adapter():
            their_ref, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, 7)
        ours = _our_logps(policy, inputs, shared=shared)
    mask = inputs["completion_mask"].bool()
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-5, rtol=0)
    our_ref = _our_logps(policy, inputs, reference=True, shared=shared)
    torch.testing.assert_close(our_ref[mask], their_ref[mask], atol=1e-5, rtol=0)
    assert (ours[mask] - their_ref[mask]).abs().max() > 1e-3  # the adapter matters


def test_shared_prompt_gradients_equal_full_rows(policy_and_batch):
    """Running each prompt once (its cache repeated for the answers) gives the full rows' gradients, prompts of
    different lengths (left padding) included."""
    import torch

    policy, _, inputs = policy_and_batch
    inputs = dict(inputs)
    inputs["prompt_mask"] = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    inputs["prompt_ids"] = inputs["prompt_ids"].masked_fill(inputs["prompt_mask"] == 0, 0)
    grads = []
    for shared in (True, False):
        model = copy.deepcopy(policy)
        logps = _our_logps(model, inputs, shared=shared)
        (logps * inputs["completion_mask"] * torch.linspace(-1, 1, 7)).sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize("family", ["gemma", "mixtral", "phi3", "qwen2"])
def test_shared_prompt_logprobs_equal_full_rows_in_other_families(family):
    """The repeated key/value cache works for every decoder the families bring (sliding windows, experts, fused qkv)."""
    import torch

    from llmctl_plugins.methods.grpo._rollout import answer_logprobs

    model = tiny_causal_lm(family, seed=0)
    generator = torch.Generator().manual_seed(0)
    batch = {"prompt_ids": torch.randint(3, 500, (2, 5), generator=generator),
             "prompt_mask": torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]),
             "completion_ids": torch.randint(3, 500, (6, 4), generator=generator),
             "completion_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0],
                                              [1, 1, 1, 1]]).float()}
    with torch.no_grad():
        shared, full = (answer_logprobs(model, batch, GROUP, TEMPERATURE, flag) for flag in (True, False))
    torch.testing.assert_close(shared * batch["completion_mask"], full * batch["completion_mask"], atol=1e-5, rtol=0)


def test_next_token_draws_from_the_tempered_top_k_distribution():
    import torch

    from llmctl.train.sampling import SamplingSettings, next_token

    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, 2.0, -1e9, 0.5]]).repeat(100_000, 1)
    for temperature, top_k in ((1.0, 0), (0.5, 2)):
        kept = logits[0] if not top_k else torch.tensor([-1e9, 1.0, 2.0, -1e9, -1e9])
        expected = torch.softmax(kept / temperature, -1)
        drawn = next_token(logits, SamplingSettings(1, temperature, top_k))
        frequencies = torch.bincount(drawn, minlength=5).float() / len(drawn)
        torch.testing.assert_close(frequencies, expected, atol=5e-3, rtol=0)
        assert frequencies[3] == 0  # a token of probability 0 is never drawn


def test_sample_groups_decodes_like_generate():
    """Greedy (top_k=1), the shared-prompt decode loop gives transformers' generate answers, prompt by prompt."""
    import torch

    from llmctl.train.sampling import SamplingSettings, sample_groups, sample_responses

    tokenizer = word_tokenizer()
    model = tiny_causal_lm(seed=3, vocab_size=len(tokenizer))
    prompts = [[6, 7, 8, 9, 10], [11, 12], [13, 14, 15]]
    settings = SamplingSettings(max_new_tokens=6, temperature=1.0, top_k=1)
    eos = int(model(torch.tensor([[11, 12]])).logits[0, -1].argmax())  # the second prompt stops at once
    grouped = sample_groups(model, prompts, 2, 0, eos, settings)
    plain = sample_responses(model, [p for p in prompts for _ in range(2)], 0, eos, settings)
    width = grouped["response_mask"].shape[1]
    assert plain["response_mask"].shape[1] >= width
    for key in ("input_ids", "attention_mask"):
        torch.testing.assert_close(grouped[key], plain[key][:, :grouped[key].shape[1]])
    assert grouped["response_mask"][2:4].sum() == 2  # one token each: the EOS, kept
    assert grouped["prompt_ids"].shape == (3, 5) and grouped["prompt_mask"].sum() == 10


@pytest.mark.parametrize(("loss_type", "beta", "unbiased_kl", "shared"), [
    ("grpo", 0.0, True, True), ("grpo", 0.04, True, True), ("grpo", 0.04, False, False), ("dr_grpo", 0.0, True, True),
    ("dr_grpo", 0.04, True, False), ("dapo", 0.0, True, False), ("dapo", 0.04, True, True),
    ("dapo", 0.04, False, True)])
def test_loss_and_gradients_match_trl(policy_and_batch, tmp_path, loss_type, beta, unbiased_kl, shared):
    """Same batch, same old and reference log-probs: trl's ``_compute_loss`` and our method's loss agree."""
    import torch

    from llmctl_plugins.methods.grpo import GrpoSettings
    from llmctl_plugins.methods.grpo._method import GrpoMethod

    policy, tokenizer, inputs = policy_and_batch
    policy = copy.deepcopy(policy)
    epsilon_high = 0.28 if loss_type == "dapo" else 0.2
    with torch.no_grad():  # the rollout's policy: a little off the current one, so some ratios clip both ways
        generator = torch.Generator().manual_seed(1)
        old = _our_logps(policy, inputs) + 0.3 * torch.randn(inputs["completion_ids"].shape, generator=generator)
        ref = _our_logps(policy, inputs, reference=True) if beta else None
    trainer = _trl_trainer(policy, tmp_path, tokenizer, loss_type=loss_type, beta=beta, epsilon=0.2,
                           epsilon_high=epsilon_high, use_bias_correction_kl=unbiased_kl)
    trl_inputs = {**_trl_inputs(inputs), "old_per_token_logps": old,
                  "num_items_in_batch": inputs["completion_mask"].sum()}
    if beta:
        trl_inputs["ref_per_token_logps"] = ref
    theirs = trainer._compute_loss(trainer.model, trl_inputs)
    theirs.backward()
    their_grads = {n: p.grad for n, p in trainer.model.named_parameters() if p.requires_grad}

    method = GrpoMethod()
    method.grpo = GrpoSettings(loss_type=loss_type, beta=beta, epsilon=0.2, epsilon_high=epsilon_high,
                               max_new_tokens=7, temperature=TEMPERATURE, num_generations=GROUP,
                               unbiased_kl=unbiased_kl, shared_prompt=shared)
    batch = {**inputs, "old_logps": old, "ref_logps": ref, "_metrics": {}, "_rollout": 0}
    policy.train()
    out = method.loss(policy, batch, {})
    ours = out.total / method.count(batch)  # the loop divides the summed loss by the step's units
    ours.backward()
    assert abs(ours.item() - theirs.item()) < 1e-5, (ours.item(), theirs.item())
    assert out.metrics["clip_fraction"] > 0
    assert ("kl" in out.metrics) == bool(beta)
    our_grads = {n: p.grad for n, p in policy.named_parameters() if p.requires_grad}
    assert our_grads.keys() == their_grads.keys()
    assert sum(float(g.abs().sum()) for g in our_grads.values()) > 0
    for name, grad in our_grads.items():
        torch.testing.assert_close(grad, their_grads[name], atol=1e-5, rtol=0, msg=name)


def _prompts(path, count: int = 16, seed: int = 0):
    rng = random.Random(seed)
    path.write_text("".join(json.dumps({"prompt": " ".join(f"w{rng.randrange(100, 400)}" for _ in range(3))}) + "\n"
                            for _ in range(count)))
    return path


def test_grpo_on_the_loop_raises_a_rule_based_reward(tmp_path):
    from tests.align_fixtures import finetune, metrics_of, word_model_dir

    outcome = finetune(word_model_dir(tmp_path / "base"), "grpo", _prompts(tmp_path / "prompts.jsonl"),
                       tmp_path / "runs", REWARD, "adapter=none", "learning_rate=1e-2", "max_steps=16",
                       "batch_size=8", "num_generations=4", "max_new_tokens=8")
    records = metrics_of(outcome.run)
    assert len(records) == 16
    for key in ("reward", "reward_std", "reward/tests.ppo_rewards:target_word_count",
                "reward/tests.ppo_rewards:target_word_count/std", "completion_length", "clip_fraction",
                "zero_std_groups"):
        assert key in records[-1], key
    assert "kl" not in records[-1]  # beta = 0: no reference forward, no KL
    first, last = (sum(r["reward"] for r in part) / 4 for part in (records[:4], records[-4:]))
    assert last > first + 1.0, (first, last)  # target words per 8-word answer: ≈ 0.8 at random
    assert (outcome.run / "config.json").is_file()  # adapter=none saves the whole policy


RESUME = [REWARD, "val_split=0", "max_steps=6", "save_every=3", "batch_size=2", "grad_accum=2", "num_generations=3",
          "max_new_tokens=6", "num_iterations=2", "beta=0.05", "learning_rate=5e-3", "eval_every=0", "warmup_ratio=0",
          "lora_dropout=0.1"]


def test_sigkill_then_resume_gives_the_same_rewards_and_losses(tmp_path, monkeypatch):
    """A rollout reused over two steps straddles the checkpoint (step 3 samples, step 4 reuses it)."""
    from llmctl.train.finetune import FinetuneRequest, run_finetune
    from tests.align_fixtures import metrics_of, word_model_dir

    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    model, data = word_model_dir(tmp_path / "base"), _prompts(tmp_path / "prompts.jsonl")
    straight = run_finetune(FinetuneRequest(str(model), "grpo", str(data), overrides=RESUME, name="straight"))
    script = textwrap.dedent(f"""
        import os, signal
        from llmctl.train.finetune import FinetuneRequest, run_finetune

        def kill_at_four(step, record):
            if step == 4:
                os.kill(os.getpid(), signal.SIGKILL)

        run_finetune(FinetuneRequest({str(model)!r}, "grpo", {str(data)!r}, overrides={RESUME!r}, name="killed"),
                     callbacks=[kill_at_four])
    """)
    child = subprocess.run([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"},
                           capture_output=True)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    checkpoint = tmp_path / "runs" / "killed" / "checkpoints" / "step-000003"
    assert (checkpoint / "method-0.pt").is_file()  # the rollout step 4 reuses
    resumed = run_finetune(FinetuneRequest(""), resume="killed")
    before, after = metrics_of(straight.run), metrics_of(resumed.run)
    assert [r["step"] for r in after] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(before, after, strict=True):
        assert a["reward"] == b["reward"] and a["completion_length"] == b["completion_length"], a["step"]
        assert abs(a["loss"] - b["loss"]) < 1e-6 and abs(a["kl"] - b["kl"]) < 1e-6, a["step"]
    assert before[3]["reward"] == before[2]["reward"]  # step 4 trained on step 3's rollout
    assert json.loads((resumed.run / "llmctl.json").read_text())["status"] == "finished"


def test_without_a_reward_or_with_a_validation_split_is_one_line(tmp_path):
    from llmctl.errors import DataError, LlmctlError
    from tests.align_fixtures import finetune, word_model_dir

    model, data = word_model_dir(tmp_path / "base"), _prompts(tmp_path / "prompts.jsonl", count=2)
    with pytest.raises(DataError, match="reward="):
        finetune(model, "grpo", data, tmp_path / "runs", "val_split=0", "max_steps=1")
    with pytest.raises(LlmctlError, match="grpo has no validation loss"):
        finetune(model, "grpo", data, tmp_path / "runs", REWARD, "val_split=0.1", "max_steps=1")


def test_a_record_without_the_column_a_reward_reads_is_refused_before_the_model_loads(tmp_path):
    from llmctl.errors import DataError
    from tests.align_fixtures import finetune, word_model_dir

    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "w1 w2", "answer": "w3"}\n{"prompt": "w4 w5"}\n')
    with pytest.raises(DataError, match=r"prompts\.jsonl:2: missing column 'answer'"):
        finetune(word_model_dir(tmp_path / "base"), "grpo", data, tmp_path / "runs", "reward=exact-match",
                 "val_split=0")
