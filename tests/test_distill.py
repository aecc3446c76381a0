"""Distillation: the losses against reference computations, and training that brings a student closer to its teacher
on held-out text, with one tokenizer (KL) and across two (ULD)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from llmctl.errors import DataError
from llmctl_plugins.methods.distill._loss import (
    align_by_index,
    forward_kl,
    generalized_jsd,
    kl_family_loss,
    reverse_kl,
    uld_distance,
)
from llmctl_plugins.methods.distill._method import choose_loss
from tests.align_fixtures import finetune, metrics_of

# --- the losses ------------------------------------------------------------------------------------------------------


def random_logits(rows: int, width: int, seed: int, scale: float = 3.0):
    """Seeded Gaussian logits ``(rows, width)``, spread enough that the distributions are far from uniform."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, width, generator=generator) * scale


@pytest.mark.parametrize("temperature", [1.0, 0.7, 2.0])
def test_forward_and_reverse_kl_equal_torch_kl_div(temperature):
    import torch.nn.functional as F

    student, teacher = random_logits(6, 50, 0), random_logits(6, 50, 1)
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    expected_forward = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(-1)  # KL(teacher ‖ student)
    expected_reverse = F.kl_div(log_t, log_s, reduction="none", log_target=True).sum(-1)  # KL(student ‖ teacher)
    assert forward_kl(student, teacher, temperature).allclose(expected_forward, atol=1e-6)
    assert reverse_kl(student, teacher, temperature).allclose(expected_reverse, atol=1e-6)
    assert kl_family_loss("forward_kl", student, teacher, temperature=temperature).allclose(expected_forward, atol=1e-6)
    assert kl_family_loss("reverse_kl", student, teacher, temperature=temperature).allclose(expected_reverse, atol=1e-6)


@pytest.mark.parametrize(("beta", "temperature"), [(0.5, 1.0), (0.1, 1.0), (0.9, 2.0), (0.3, 0.5)])
def test_generalized_jsd_equals_the_gkd_definition(beta, temperature):
    """JSD_β = β KL(p_T ‖ M) + (1 − β) KL(p_S ‖ M) with M = (1 − β) p_S + β p_T, in plain probabilities."""
    import torch.nn.functional as F

    student, teacher = random_logits(5, 40, 2), random_logits(5, 40, 3)
    p_s = F.softmax(student / temperature, dim=-1)
    p_t = F.softmax(teacher / temperature, dim=-1)
    mixture = (1 - beta) * p_s + beta * p_t
    expected = beta * (p_t * (p_t / mixture).log()).sum(-1) + (1 - beta) * (p_s * (p_s / mixture).log()).sum(-1)
    assert generalized_jsd(student, teacher, beta, temperature).allclose(expected, atol=1e-6)
    assert kl_family_loss("jsd", student, teacher, beta, temperature).allclose(expected, atol=1e-6)


def test_jsd_at_the_ends_of_beta_is_forward_and_reverse_kl():
    student, teacher = random_logits(4, 30, 4), random_logits(4, 30, 5)
    assert generalized_jsd(student, teacher, 0.0).allclose(forward_kl(student, teacher))
    assert generalized_jsd(student, teacher, 1.0).allclose(reverse_kl(student, teacher))


def test_jsd_equals_trl_generalized_jsd_loss():
    """TRL's own GKD loss (not a copy) on the same logits: per-token mean over the batch."""
    gkd = pytest.importorskip("trl.experimental.gkd.gkd_trainer")
    student, teacher = random_logits(6, 32, 6), random_logits(6, 32, 7)
    for beta in (0.0, 0.4, 1.0):
        theirs = gkd.GKDTrainer.generalized_jsd_loss(student[None], teacher[None], beta=beta, temperature=1.5,
                                                     reduction="sum")
        ours = generalized_jsd(student, teacher, beta, 1.5).sum()
        assert math.isclose(float(ours), float(theirs), rel_tol=1e-5, abs_tol=1e-6)


def test_kl_uses_the_vocabulary_both_models_share():
    student, teacher = random_logits(3, 64, 8), random_logits(3, 70, 9)
    assert kl_family_loss("forward_kl", student, teacher).allclose(forward_kl(student, teacher[:, :64]))


def reference_uld(student_logits, teacher_logits, temperature: float = 1.0):
    """Boizard et al. 2024, Eq. 3–4: sort each probability vector decreasingly, pad the smaller vocabulary with zeros,
    W1 = Σ_i |p_S(i) − p_T(i)| per position (written from the paper, not from the implementation)."""
    import torch.nn.functional as F

    p_s = F.softmax(student_logits / temperature, dim=-1)
    p_t = F.softmax(teacher_logits / temperature, dim=-1)
    width = max(p_s.shape[-1], p_t.shape[-1])
    p_s = F.pad(p_s, (0, width - p_s.shape[-1])).sort(dim=-1, descending=True).values
    p_t = F.pad(p_t, (0, width - p_t.shape[-1])).sort(dim=-1, descending=True).values
    return (p_s - p_t).abs().sum(-1)


@pytest.mark.parametrize(("student_width", "teacher_width", "temperature"),
                         [(40, 40, 1.0), (30, 90, 1.0), (90, 30, 1.0), (50, 120, 2.0)])
def test_uld_distance_equals_the_papers_formula(student_width, teacher_width, temperature):
    student = random_logits(7, student_width, 10).requires_grad_(True)
    teacher = random_logits(7, teacher_width, 11)
    ours = uld_distance(student, teacher, temperature)
    expected = reference_uld(student, teacher, temperature)
    assert ours.allclose(expected, atol=1e-6)
    ours.sum().backward()
    assert student.grad is not None and bool(student.grad.abs().sum() > 0)


def test_uld_of_a_distribution_with_itself_is_zero_whatever_the_order_of_its_tokens():
    import torch

    teacher = random_logits(2, 25, 12)
    shuffled = teacher[:, torch.randperm(25)]
    assert uld_distance(shuffled, teacher).abs().max() < 1e-6


def test_answer_positions_pair_by_index_and_cut_to_the_shorter_answer():
    student_rows, teacher_rows = align_by_index([3, 2, 0], [2, 4, 5])
    assert student_rows == [0, 1, 3, 4]
    assert teacher_rows == [0, 1, 2, 3]


def test_loss_choice():
    assert choose_loss("auto", True, "t") == "forward_kl"
    assert choose_loss("auto", False, "t") == "uld"
    assert choose_loss("uld", True, "t") == "uld"
    assert choose_loss("jsd", True, "t") == "jsd"
    with pytest.raises(DataError, match="loss=reverse_kl needs the teacher to share the student's vocabulary"):
        choose_loss("reverse_kl", False, "t")


# --- training on tiny models -----------------------------------------------------------------------------------------


@pytest.fixture()
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine the threads' hand-offs cost more
    than their matrix products (measured here: a 20-step run 0.6–1.1 s on one thread, 0.8–10 s on two)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def name_records(numbers) -> list[dict]:
    """``Name i`` → ``It is i.`` instruction records (words the tiny BPE tokenizer knows)."""
    return [{"instruction": f"Name {i}", "output": f"It is {i}."} for i in numbers]


def word_records(count: int, seed: int) -> list[dict]:
    """Three words, answered by the same words reversed and a fixed closing word (words of the word tokenizer)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a, b, c = (rng.randrange(20, 300) for _ in range(3))
        rows.append({"instruction": f"w{a} w{b} w{c}", "output": f"w{c} w{b} w{a} w7"})
    return rows


def answer_logits_of(model_dir: Path, held_out: Path) -> list:
    """Per held-out example, the model's logits at the positions that predict its answer tokens."""
    import torch

    from llmctl.data.dataset import load_examples
    from llmctl.data.encode import IGNORE, chat_template_for, encode_example
    from llmctl.models.loading import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir)
    examples, _ = load_examples(held_out)
    template = chat_template_for(tokenizer)
    logits = []
    with torch.no_grad():
        for example in examples:
            encoded = encode_example(example, tokenizer, template, 512)
            ids = torch.tensor([encoded.input_ids])
            labels = torch.tensor(encoded.labels[1:])
            logits.append(model(input_ids=ids).logits[0, :-1][labels != IGNORE])
    return logits


def mean_kl(teacher: list, student: list) -> float:
    """Mean KL(teacher ‖ student) over every answer position of the held-out examples."""
    import torch.nn.functional as F

    total = count = 0.0
    for t, s in zip(teacher, student, strict=True):
        log_t, log_s = F.log_softmax(t, dim=-1), F.log_softmax(s, dim=-1)
        total += float((log_t.exp() * (log_t - log_s)).sum())
        count += t.shape[0]
    return total / count


def mean_uld(teacher: list, student: list) -> float:
    """Mean ULD distance (the paper's formula, :func:`reference_uld`) over answer positions paired by index."""
    total = count = 0.0
    for t, s in zip(teacher, student, strict=True):
        shared = min(t.shape[0], s.shape[0])
        total += float(reference_uld(s[:shared], t[:shared]).sum())
        count += shared
    return total / count


def trained_teacher(tmp_path: Path, tokenizer: str, records: list[dict]) -> Path:
    """A tiny teacher (3 layers, hidden 64) fully fine-tuned on ``records`` so that its distribution is not uniform."""
    from llmctl.testing import make_tiny_model_dir, write_instruction_data

    model = make_tiny_model_dir("llama", tmp_path / f"teacher-{tokenizer}", tokenizer=tokenizer, seed=0,
                                num_hidden_layers=3)
    data = write_instruction_data(tmp_path / f"teacher-{tokenizer}.jsonl", records=records)
    outcome = finetune(model, "full", data, tmp_path / "runs", "max_steps=15", "learning_rate=1e-2", "batch_size=8")
    losses = [r["loss"] for r in metrics_of(outcome.run)]
    assert losses[-1] < losses[0] - 1.0, losses  # the teacher learned something: far from uniform now
    return outcome.run


def tiny_student(tmp_path: Path, tokenizer: str) -> Path:
    """A smaller random student (2 layers, hidden 32)."""
    from llmctl.testing import make_tiny_model_dir

    return make_tiny_model_dir("llama", tmp_path / f"student-{tokenizer}", tokenizer=tokenizer, seed=1,
                               hidden_size=32, intermediate_size=64)


def distill(student: Path, teacher: Path, data: Path, tmp_path: Path, *overrides: str) -> Path:
    """The run folder of 20 full-weight distillation steps of ``student`` from ``teacher`` on ``data``."""
    outcome = finetune(student, "distill", data, tmp_path / "runs", f"teacher={teacher}", "adapter=none",
                       "max_steps=20", "learning_rate=3e-3", "batch_size=8", *overrides)
    return outcome.run


def test_distillation_lowers_the_students_kl_to_the_teacher_on_held_out_text(tmp_path, one_thread):
    """One tokenizer (the tiny BPE) for a 3-layer teacher and a smaller 2-layer student: pure distillation
    (alpha=0, forward KL) lowers the mean KL(teacher ‖ student) on held-out examples' answer tokens — examples the
    student never trained on — and lowers it further than plain SFT on the same data for the same steps."""
    from llmctl.testing import write_instruction_data

    train = name_records(range(40))
    held_out = write_instruction_data(tmp_path / "held-out.jsonl", records=name_records(range(100, 116)))
    teacher = trained_teacher(tmp_path, "bpe", train)
    student = tiny_student(tmp_path, "bpe")
    data = write_instruction_data(tmp_path / "train.jsonl", records=train)
    run = distill(student, teacher, data, tmp_path, "alpha=0")
    sft = distill(student, teacher, data, tmp_path, "alpha=1")  # the same run with the distillation term off

    teacher_logits = answer_logits_of(teacher, held_out)
    before = mean_kl(teacher_logits, answer_logits_of(student, held_out))
    after = mean_kl(teacher_logits, answer_logits_of(run, held_out))
    sft_only = mean_kl(teacher_logits, answer_logits_of(sft, held_out))
    print(f"held-out KL(teacher ‖ student): before {before:.3f}, distilled {after:.3f}, SFT only {sft_only:.3f}")
    assert after < 0.8 * before
    assert after < sft_only
    records = metrics_of(run)
    assert {"ce", "distill", "kl"} <= set(records[0])
    assert records[-1]["kl"] < records[0]["kl"]
    assert json.loads((run / "distill.json").read_text())["loss"] == "forward_kl"


def test_distillation_across_tokenizers_lowers_the_uld_distance_on_held_out_text(tmp_path, capsys, one_thread):
    """A word-level teacher and a byte-level BPE student. KL is undefined across two vocabularies, so the measure is
    the ULD distance itself (sorted-probability W1, answer positions paired by index, the paper's formula) on
    held-out examples: it falls from before to after distillation (loss = CE + 3 × ULD), and below that of the same
    run without the ULD term (plain SFT)."""
    from llmctl.testing import write_instruction_data

    train = word_records(40, seed=0)
    held_out = write_instruction_data(tmp_path / "held-out.jsonl", records=word_records(16, seed=1))
    teacher = trained_teacher(tmp_path, "word", train)
    student = tiny_student(tmp_path, "bpe")
    data = write_instruction_data(tmp_path / "train.jsonl", records=train)
    run = distill(student, teacher, data, tmp_path, "uld_weight=3")
    assert "Universal Logit Distillation" in capsys.readouterr().err
    sft = distill(student, teacher, data, tmp_path, "uld_weight=0")

    teacher_logits = answer_logits_of(teacher, held_out)
    before = mean_uld(teacher_logits, answer_logits_of(student, held_out))
    after = mean_uld(teacher_logits, answer_logits_of(run, held_out))
    sft_only = mean_uld(teacher_logits, answer_logits_of(sft, held_out))
    print(f"held-out ULD distance: before {before:.3f}, distilled {after:.3f}, SFT only {sft_only:.3f}")
    assert after < 0.9 * before
    assert after < sft_only
    records = metrics_of(run)
    assert {"ce", "distill", "uld", "aligned"} <= set(records[0]) and "kl" not in records[0]
    assert json.loads((run / "distill.json").read_text())["loss"] == "uld"


def test_lora_student_with_itself_as_teacher_starts_at_zero_kl_and_saves_an_adapter(tmp_path, one_thread):
    """The default student adapter is LoRA (B = 0 at the start), so a student distilled from its own base model starts
    exactly at the teacher: KL 0 on the first step. Every KL-family loss runs."""
    from llmctl.testing import make_tiny_model_dir, write_instruction_data

    model = make_tiny_model_dir("llama", tmp_path / "model", tokenizer="bpe")
    data = write_instruction_data(tmp_path / "data.jsonl", count=8)
    for loss in ("forward_kl", "reverse_kl", "jsd"):
        outcome = finetune(model, "distill", data, tmp_path / "runs", f"teacher={model}", f"loss={loss}",
                           "max_steps=2")
        first = metrics_of(outcome.run)[0]
        assert first["kl"] < 1e-5 and first["distill"] < 1e-5, first
        assert (outcome.run / "adapter_config.json").is_file()
        assert json.loads((outcome.run / "distill.json").read_text())["loss"] == loss


def test_teacher_errors_are_one_line_before_any_model_loads(tmp_path):
    from llmctl.testing import make_tiny_model_dir, run_cli, temporary_store, write_instruction_data

    model = make_tiny_model_dir("llama", tmp_path / "model", tokenizer="bpe")
    data = write_instruction_data(tmp_path / "data.jsonl", count=4)
    with temporary_store(tmp_path) as store:
        base = ("finetune", str(model), "--method", "distill", "--data", str(data), "--dry-run")
        code, _, err = run_cli(*base)
        assert code != 0 and "needs teacher=MODEL" in err and len(err.strip().splitlines()) == 1
        code, _, err = run_cli(*base, "teacher=smollm2-135n")
        assert code != 0 and "did you mean 'smollm2-135m'" in err and len(err.strip().splitlines()) == 1
        code, _, err = run_cli(*base, f"teacher={tmp_path / 'nothing'}")
        assert code != 0 and "no such file or folder" in err
        (store.runs / "lora-run").mkdir(parents=True)
        (store.runs / "lora-run" / "adapter_config.json").write_text("{}")
        code, _, err = run_cli(*base, "teacher=lora-run")
        assert code != 0 and "is an adapter run, not a model" in err and "llmctl convert lora-run --merge" in err
        make_tiny_model_dir("llama", store.runs / "full-run", tokenizer="bpe")  # a --method full run, by its id
        code, out, err = run_cli(*base, "teacher=full-run")
        assert code == 0, err
        assert "full-run" in out


def test_packing_is_refused_across_tokenizers(tmp_path):
    from llmctl.testing import make_tiny_model_dir, write_instruction_data

    student = make_tiny_model_dir("llama", tmp_path / "student", tokenizer="bpe")
    teacher = make_tiny_model_dir("llama", tmp_path / "teacher", tokenizer="word")
    data = write_instruction_data(tmp_path / "data.jsonl", count=4)
    with pytest.raises(DataError, match="packing=true cannot be used when the teacher has its own tokenizer"):
        finetune(student, "distill", data, tmp_path / "runs", f"teacher={teacher}", "packing=true")


def test_a_vocabulary_that_only_adds_tokens_after_the_students_is_shared():
    from transformers import AutoTokenizer

    from llmctl.testing import tiny_tokenizer_dir, word_tokenizer_dir
    from llmctl_plugins.methods.distill._teacher import same_vocabulary

    student = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    teacher = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    teacher.add_tokens(["<extra-token>"])  # e.g. a pad token added when the teacher was fine-tuned
    assert same_vocabulary(student, student)
    assert same_vocabulary(student, teacher) and same_vocabulary(teacher, student)
    assert not same_vocabulary(student, AutoTokenizer.from_pretrained(word_tokenizer_dir()))


def test_paired_data_keeps_both_encodings_and_reads_val_data(tmp_path):
    """Across tokenizers each example is encoded by both tokenizers; the batch carries the teacher's under _ keys."""
    from transformers import AutoTokenizer

    from llmctl.data.encode import IGNORE
    from llmctl.testing import tiny_tokenizer_dir, word_tokenizer_dir, write_instruction_data
    from llmctl.train.method import MethodContext, model_inputs
    from llmctl_plugins.methods.distill._data import collate_paired, load_paired_data
    from llmctl_plugins.methods.distill._teacher import Teacher

    student = AutoTokenizer.from_pretrained(tiny_tokenizer_dir())
    words = AutoTokenizer.from_pretrained(word_tokenizer_dir())
    teacher = Teacher("t", "t", tmp_path, words, words.chat_template)
    train = write_instruction_data(tmp_path / "train.jsonl", records=word_records(6, seed=0))
    held = write_instruction_data(tmp_path / "held.jsonl", records=word_records(3, seed=1))
    settings = {"packing": False, "max_length": 64, "train_on_prompt": False, "val_data": str(held), "val_split": 0.1,
                "seed": 0}
    data = load_paired_data(settings, MethodContext(tokenizer=student, data_path=train), teacher)
    assert (len(data.train), len(data.validation)) == (6, 3)
    item = data.train[0]
    answer = [t for t in item.teacher.labels if t != IGNORE]
    assert words.decode(answer).split()[-2:] == ["w7", "<|im_end|>"]  # the answer in the teacher's own tokens
    batch = collate_paired(data.train[:2], 0, words)
    assert batch["_teacher_input_ids"].shape[0] == 2 and set(model_inputs(batch)) == {"input_ids", "attention_mask"}
