"""CPT as MP2's MRC model runs it: a checkpoint with cpt-large's key names loads into the
module the harness runs, with nothing missing and nothing unexplained."""

import json
import shutil

import pytest
import torch

from replicate.backbones import BACKBONES, cpt_state_dict, load_cpt, weights_fingerprint
from replicate.errors import DataError


def test_cpt_checkpoint_loads_every_encoder_weight(tiny_cpt_dir):
    raw = torch.load(tiny_cpt_dir / "pytorch_model.bin", weights_only=True)
    model = load_cpt(str(tiny_cpt_dir), {})
    state = model.state_dict()
    encoder_keys = {k.removeprefix("model.encoder.") for k in raw if k.startswith("model.encoder.")}
    assert set(state) == encoder_keys  # nothing missing, nothing left over
    for key in encoder_keys:
        torch.testing.assert_close(state[key], raw[f"model.encoder.{key}"], atol=0, rtol=0)
    config = json.loads((tiny_cpt_dir / "config.json").read_text())
    assert len(model.encoder.layer) == config["encoder_layers"] == BACKBONES.get("tiny-cpt").n_layers
    assert model.config.max_position_embeddings == raw["model.encoder.embeddings.position_embeddings.weight"].shape[0]
    assert model.config.type_vocab_size == 2 and not model.training


def test_cpt_keys_load_with_or_without_the_model_prefix(tiny_cpt_dir):
    raw = torch.load(tiny_cpt_dir / "pytorch_model.bin", weights_only=True)
    stripped = {k.removeprefix("model."): v for k, v in raw.items()}  # fastnlp/CPT convert_ckpt.py's form
    assert cpt_state_dict(stripped).keys() == cpt_state_dict(raw).keys()


@pytest.mark.parametrize("change, message", [("extra", "unexpected keys"), ("missing", "missing")])
def test_a_foreign_or_incomplete_checkpoint_is_refused(tiny_cpt_dir, tmp_path, change, message):
    copy = tmp_path / "cpt"
    shutil.copytree(tiny_cpt_dir, copy)
    raw = torch.load(copy / "pytorch_model.bin", weights_only=True)
    if change == "extra":
        raw["model.pooler.dense.weight"] = torch.zeros(2, 2)
    else:
        del raw["model.encoder.encoder.layer.3.output.dense.weight"]
    torch.save(raw, copy / "pytorch_model.bin")
    with pytest.raises(DataError, match=message):
        load_cpt(str(copy), {})


def test_cpt_backbone_runs_with_its_tokenizer_and_token_types(tiny_cpt_dir):
    spec = BACKBONES.get("tiny-cpt")
    model, tok = spec.load(local_dir=str(tiny_cpt_dir))
    assert spec.token_type == 1 and spec.uses_cls
    ids = torch.tensor([tok("情感分析：很好")["input_ids"]])
    ones = model(input_ids=ids, token_type_ids=torch.ones_like(ids)).last_hidden_state
    zeros = model(input_ids=ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    assert ones.shape == (1, ids.shape[1], spec.d_model) and not torch.allclose(ones, zeros)
    assert weights_fingerprint(model) == weights_fingerprint(spec.load(local_dir=str(tiny_cpt_dir))[0])


def test_cpt_without_files_is_one_clear_error():
    with pytest.raises(DataError, match="backbone_dirs"):
        BACKBONES.get("tiny-cpt").load()
