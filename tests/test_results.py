"""One result per cell, written atomically, saying exactly what produced it."""

import json
import os

import pytest

from replicate import jobs
from replicate.config import Group, cell_settings, check_config, config_hash
from replicate.io import write_json_atomic


def test_atomic_write_leaves_old_file_or_new_never_half(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1})

    def crash(*args):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["r.json"]  # the temporary file is gone too


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_keep_the_umasks_mode(tmp_path, umask, mode):
    """A shared cluster filesystem: results others in the group can read (mkstemp alone gives 0600)."""
    import torch

    from replicate.io import save_torch_atomic

    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "r.json", {"v": 1})
        save_torch_atomic({"t": torch.zeros(1)}, tmp_path / "c.pt")
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"r.json": mode, "c.pt": mode}


def test_result_carries_provenance(tmp_path, tiny_config):
    cfg = check_config(tiny_config)
    settings = cell_settings(cfg, Group("pt", "tiny-bert", "fine-foods", 8))
    splits = [str(tmp_path / f"split{s}.json") for s in (8, 13)]
    manifests = jobs.make_splits(settings, [8, 13], "", splits)
    out = [str(tmp_path / f"seed{s}.json") for s in (8, 13)]
    jobs.train_group(settings, [8, 13], splits, out, "")
    for seed, path, manifest in zip((8, 13), out, manifests):
        r = json.loads(open(path).read())
        assert (r["method"], r["backbone"], r["task"], r["shot"], r["seed"]) == ("pt", "tiny-bert", "fine-foods", 8, seed)
        assert r["status"] == "ok" and r["score"] == r["metrics"]["acc"]
        assert r["split"]["hash"] == manifest["hash"]
        p = r["provenance"]
        assert p["config_hash"] == config_hash(settings)
        assert {"torch", "transformers", "python"} <= set(p["packages"])
        assert p["git"]["commit"] and r["wall_time_s"] > 0
        assert p["trainable_parameters"] == {"prompt": 4 * 32, "head": 32 * 2}
        assert len(p["backbone_weights_sha256"]) == 64
        assert r["dev"]["best_epoch"] in (1, 2) and len(r["train_loss_curve"]) == 2


def test_a_failing_seed_is_recorded_not_lost(tmp_path, tiny_config, monkeypatch):
    from replicate import train as train_module

    cfg = check_config(tiny_config)
    settings = cell_settings(cfg, Group("model-tuning", "tiny-bert", "fine-foods", 8))
    splits = [str(tmp_path / f"split{s}.json") for s in (8, 13)]
    jobs.make_splits(settings, [8, 13], "", splits)
    real_fit = train_module.GroupTrainer.fit

    def fit_failing_for_13(self):
        if self.data[0].seed == 13:
            raise FloatingPointError("non-finite loss at epoch 1")
        return real_fit(self)

    monkeypatch.setattr(train_module.GroupTrainer, "fit", fit_failing_for_13)
    out = [str(tmp_path / f"seed{s}.json") for s in (8, 13)]
    jobs.train_group(settings, [8, 13], splits, out, "")
    ok, failed = (json.loads(open(p).read()) for p in out)
    assert ok["status"] == "ok" and ok["score"] is not None
    assert failed["status"] == "failed" and "non-finite loss" in failed["error"] and failed["score"] is None
