"""The fused CPU LoRA branch (llmctl/train/cpu_lora_branch.py) against peft's own LoRA expression."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from llmctl.train.cpu_lora_branch import RESOLUTION, install, keep_mask  # noqa: E402


class TwoProjections(torch.nn.Module):
    """Two projections reading the same input, like q_proj and k_proj."""

    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(24, 40, bias=False)
        self.k_proj = torch.nn.Linear(24, 16, bias=False)

    def forward(self, x):  # noqa: ANN001, D102
        return self.q_proj(x).sum(-1) + self.k_proj(x).sum(-1)


def adapted(dropout: float, *, dora: bool = False):  # noqa: ANN201
    """A peft LoRA model with non-zero B matrices (peft starts them at zero, which would hide mistakes)."""
    torch.manual_seed(0)
    model = peft.get_peft_model(TwoProjections(), peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q_proj", "k_proj"], use_dora=dora))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    return model


def layers(model):  # noqa: ANN001, ANN201
    """The peft LoRA Linear layers of ``model``."""
    return [m for m in model.modules() if type(m) is peft.tuners.lora.layer.Linear]


def gradients(model, x, seed: int):  # noqa: ANN001, ANN201
    """Output and gradients (input and trainable parameters) of one forward/backward pass after seeding torch."""
    x = x.clone().requires_grad_()
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(x)
    out.backward(torch.linspace(-1, 1, out.numel()).view(out.shape))
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.detach(), x.grad, grads


def test_without_dropout_the_fused_branch_equals_peft():
    model = adapted(0.0)
    x = torch.randn(3, 5, 24)
    reference = gradients(model, x, seed=1)
    assert install(model) == 2
    fused = gradients(model, x, seed=1)
    torch.testing.assert_close(fused[0], reference[0])
    torch.testing.assert_close(fused[1], reference[1])
    for name in reference[2]:
        torch.testing.assert_close(fused[2][name], reference[2][name])


def test_with_dropout_the_fused_branch_equals_peft_given_the_same_mask():
    """peft's ``lora_B(lora_A(x * keep * scale)) * scaling`` with the masks the fused branch drew, layer by layer."""
    model = adapted(0.3)
    install(model)
    x = torch.randn(3, 5, 24)
    fused = gradients(model, x, seed=7)

    torch.manual_seed(7)  # the fused branch drew one mask per layer, in forward order, from torch's generator
    masks = [keep_mask((3, 5, 24), 0.3) for _ in layers(model)]
    plain = adapted(0.3)  # fresh copy of the same weights, for the reference computation
    plain.load_state_dict(model.state_dict())
    x_ref = x.clone().requires_grad_()
    total = 0
    for layer, (keep, scale) in zip(layers(plain), masks, strict=True):
        dropped = x_ref * keep * scale
        total = total + (layer.base_layer(x_ref) + layer.lora_B["default"](layer.lora_A["default"](dropped))
                         * layer.scaling["default"]).sum(-1)
    total.backward(torch.linspace(-1, 1, total.numel()).view(total.shape))
    torch.testing.assert_close(fused[0], total.detach())
    torch.testing.assert_close(fused[1], x_ref.grad)
    reference = {n: p.grad for n, p in plain.named_parameters() if p.requires_grad}
    for name, grad in fused[2].items():
        torch.testing.assert_close(grad, reference[name])


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_masks_drop_the_requested_fraction_and_keep_the_expectation(p):
    keep, scale = keep_mask((1000, 1000), p)
    rounded = round(p * RESOLUTION) / RESOLUTION
    dropped = 1 - keep.float().mean().item()
    assert abs(dropped - p) < 5 * (p * (1 - p) / 1e6) ** 0.5 + 1 / RESOLUTION
    assert scale == pytest.approx(1 / (1 - rounded))


def test_masks_replay_from_torchs_seed_and_differ_between_calls():
    torch.manual_seed(3)
    first, second = keep_mask((64, 64), 0.1)[0], keep_mask((64, 64), 0.1)[0]
    torch.manual_seed(3)
    assert torch.equal(keep_mask((64, 64), 0.1)[0], first)
    assert not torch.equal(first, second)


def test_eval_and_no_grad_run_peft_expression_without_dropout():
    model = adapted(0.3)
    x = torch.randn(2, 4, 24)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    install(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(model(x).detach(), expected)


def test_dora_layers_keep_their_own_variant():
    model = adapted(0.1, dora=True)
    assert install(model) == 0


def test_adapter_trained_with_the_fused_branch_loads_as_plain_peft_lora(tmp_path):
    model = adapted(0.1)
    install(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randn(4, 3, 24)
    for _ in range(3):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
    model.save_pretrained(tmp_path)
    model.eval()
    base = TwoProjections()
    base.load_state_dict({k.replace("base_model.model.", "").replace(".base_layer", ""): v
                          for k, v in model.state_dict().items() if "lora_" not in k})
    loaded = peft.PeftModel.from_pretrained(base, tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_gradient_checkpointing_replays_the_same_dropout_masks(tmp_path, monkeypatch):
    """Recomputed forward passes draw the same masks, so checkpointing changes memory, not the run."""
    import json

    from llmctl.train.finetune import FinetuneRequest, run_finetune
    from tests.tiny_models import make_tiny_model_dir

    monkeypatch.setenv("LLMCTL_RUNS_DIR", str(tmp_path / "runs"))
    model = make_tiny_model_dir("llama", tmp_path / "llama")
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": f"Name city {i}.", "output": f"City {i} is here."})
                              for i in range(8)) + "\n")
    losses = {}
    for checkpointing in ("false", "true"):
        outcome = run_finetune(FinetuneRequest(str(model), "lora", str(data), name=f"gc-{checkpointing}", overrides=[
            "max_steps=4", "batch_size=2", "val_split=0", "save_every=0", "precision=fp32", "lora_dropout=0.2",
            "learning_rate=1e-2", f"gradient_checkpointing={checkpointing}"]))
        losses[checkpointing] = [r["loss"] for r in outcome.result.history if "loss" in r]
    assert losses["true"] == pytest.approx(losses["false"], abs=1e-5)
    assert len(set(losses["true"])) == 4  # the adapter moved: later steps see other losses
