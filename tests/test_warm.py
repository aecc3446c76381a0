"""WARM: averaging reward models trained from one start gives a model that loads, scores and names its parents."""

from __future__ import annotations

import json

import pytest

from tests.align_fixtures import llmctl_in_process, word_tokenizer
from tests.cli_helpers import run_llmctl
from tests.test_dpo import synthetic_pairs
from tests.test_reward import preference_batch, save_reward_model, tiny_reward_model, train_reward_model


@pytest.fixture(scope="module")
def three_reward_models(tmp_path_factory):
    """Three reward models from one initialisation, trained on differently ordered data, published in a store."""
    home = tmp_path_factory.mktemp("home")
    tokenizer = word_tokenizer()
    records = synthetic_pairs(48, 10)
    for seed in range(3):
        model = tiny_reward_model(seed=0)
        train_reward_model(model, records, tokenizer, order_seed=seed)
        save_reward_model(model, tokenizer, f"rm-{seed}", home)
    return home


def test_average_of_three_loads_scores_and_has_three_parents(three_reward_models, capsys, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from llmctl.reward.artifacts import load_reward_model_dir
    from llmctl.reward.model import pairwise_accuracy

    home = three_reward_models
    result = run_llmctl("merge", "rm-0", "rm-1", "rm-2", "--method", "average", "--weights", "2,1,1",
                        "--name", "rm-warm", env={"LLMCTL_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    merged = home / "models" / "rm-warm"
    meta = json.loads((merged / "llmctl.json").read_text())
    assert meta["parents"] == ["rm-0", "rm-1", "rm-2"]
    assert meta["kind"] == "reward-model" and meta["base"] == "tiny-llama"
    assert meta["weights"] == pytest.approx([0.5, 0.25, 0.25])
    inputs = [load_file(str(home / "models" / f"rm-{i}" / "model.safetensors")) for i in range(3)]
    averaged = load_file(str(merged / "model.safetensors"))
    for name, tensor in averaged.items():
        expected = 0.5 * inputs[0][name] + 0.25 * inputs[1][name] + 0.25 * inputs[2][name]
        torch.testing.assert_close(tensor, expected, atol=1e-6, rtol=1e-6)
    model, tokenizer = load_reward_model_dir(merged)
    assert pairwise_accuracy(model, preference_batch(synthetic_pairs(40, 11), tokenizer)) > 0.9
    monkeypatch.setenv("LLMCTL_HOME", str(home))
    code, out, err = llmctl_in_process(capsys, "score", "rm-warm", "--data", str(_write_pairs(home)))
    assert code == 0 and "accuracy" in out, err


def _write_pairs(home):
    path = home / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in synthetic_pairs(6, 13)))
    return path


def test_models_of_different_architecture_or_base_are_refused(three_reward_models, tmp_path):
    import shutil

    from llmctl.errors import DataError
    from llmctl.reward.warm import check_compatible

    home = three_reward_models
    other = tmp_path / "wider"
    shutil.copytree(home / "models" / "rm-0", other)
    config = json.loads((other / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="num_hidden_layers"):
        check_compatible([home / "models" / "rm-0", other])
    rebased = tmp_path / "rebased"
    shutil.copytree(home / "models" / "rm-1", rebased)
    meta = json.loads((rebased / "llmctl.json").read_text())
    (rebased / "llmctl.json").write_text(json.dumps({**meta, "base": "another-base"}))
    result = run_llmctl("merge", "rm-0", str(rebased), env={"LLMCTL_HOME": str(home)})
    assert result.returncode != 0
    assert "different bases" in result.stderr and "Traceback" not in result.stderr
    assert not (home / "models" / "rm-0-warm2").exists()
