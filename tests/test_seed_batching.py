"""Seeds batched through one frozen backbone train exactly as they do alone.

Tolerance: the backbone runs in eval mode while prompts train (MPMP's setting, so no
dropout), and the batched and solo runs of a seed compute the same arithmetic except that
matrix products see a different batch shape, so floating-point summation order differs;
differences stay at float32 round-off (we allow 1e-4 absolute on parameters after several
Adam steps, 1e-9 on dev accuracy, which is a count ratio). With train_mode (dropout on),
seeds draw masks from one shared generator, so batched and solo runs agree in distribution
only.
"""

import pytest
import torch

from replicate.backbones import BACKBONES
from replicate.methods import METHODS
from replicate.methods.common import frequent_tokens
from replicate.mrc import PROMPT_SLOT_FIRST_ID, MRCEncoder
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS
from replicate.train import GroupTrainer, SeedData

SEEDS = [8, 13, 21]


def seed_data(task, tokenizer, cfg, method, seeds, use_cls=True):
    pools = task.load_pools("")
    enc = MRCEncoder(tokenizer, task, cfg.max_length, method.prompt_length(cfg), use_cls)
    out = []
    for s in seeds:
        parts = resolve(draw_split(task, pools, 8, s, Protocol(test_cap=16)), pools)
        out.append(SeedData(s, *(list(map(enc.encode, parts[k])) for k in ("train", "dev", "test"))))
    return out, enc


def init_tokens(tok, task):
    return frequent_tokens(tok, (ex.text for ex in task.load_pools("").train[:200]), 100)


def train(method_name, seeds, backbone="tiny-bert", poison=None, **overrides):
    """Train ``seeds`` together; ``poison``: a seed index whose prompt is set to NaN first."""
    spec = BACKBONES.get(backbone)
    method = METHODS.get(method_name)
    cfg = method.make_config({"epochs": 3, "batch_size": 4, "max_length": 40, "prompt_length": 3, **overrides})
    backbone, tok = spec.load()
    task = TASKS.get("bbc-topic")
    data, enc = seed_data(task, tok, cfg, method, seeds, spec.uses_cls)
    torch.manual_seed(0)
    model = method.build(backbone, spec, tok, cfg, seeds, init_tokens(tok, task))
    if poison is not None:
        with torch.no_grad():
            model.prompt.weight[poison] = float("nan")
    outcomes = GroupTrainer(model, method, cfg, task, enc, data, tok.pad_token_id, log=lambda m: None).fit()
    return model, outcomes


@pytest.mark.parametrize("method, backbone", [("pt", "tiny-bert"), ("ptv2", "tiny-bert"), ("ptv2", "tiny-t5")])
def test_batched_equals_solo(method, backbone):
    batched, b_out = train(method, SEEDS, backbone)
    for i, seed in enumerate(SEEDS):
        solo, s_out = train(method, [seed], backbone)
        torch.testing.assert_close(batched.prompt.weight[i], solo.prompt.weight[0], atol=1e-4, rtol=0)
        torch.testing.assert_close(batched.head.weight[i], solo.head.weight[0], atol=1e-4, rtol=0)
        assert b_out[i].dev_curve == s_out[0].dev_curve
        assert b_out[i].best_epoch == s_out[0].best_epoch
        assert b_out[i].test_metrics == pytest.approx(s_out[0].test_metrics, abs=1e-9)
        # training moved the prompt away from its (seed-keyed, identical) initialisation
        assert b_out[i].loss_curve[0] != b_out[i].loss_curve[-1]


def test_a_diverging_seed_fails_alone_and_the_others_train_as_if_alone():
    batched, outcomes = train("pt", SEEDS, poison=1)
    assert outcomes[1].status == "failed" and "diverged at epoch 1: loss is nan" in outcomes[1].error
    assert outcomes[1].test_metrics == {}
    for i in (0, 2):
        solo, s_out = train("pt", [SEEDS[i]])
        assert outcomes[i].status == "ok"
        torch.testing.assert_close(batched.prompt.weight[i], solo.prompt.weight[0], atol=1e-4, rtol=0)
        assert outcomes[i].test_metrics == pytest.approx(s_out[0].test_metrics, abs=1e-9)


def test_a_loss_that_explodes_without_nan_is_divergence():
    # lr 1e3 throws the head's logits far apart: the loss grows by orders of magnitude
    _, outcomes = train("pt", [8], lr=1e3, head_lr=1e3, diverge_factor=10.0, epochs=4)
    assert outcomes[0].status == "failed" and "x the first step's" in outcomes[0].error
    _, tolerant = train("pt", [8], lr=1e3, head_lr=1e3, diverge_factor=0.0, epochs=4)
    assert tolerant[0].status == "ok"


def test_a_seeds_examples_only_move_its_own_slice():
    spec = BACKBONES.get("tiny-bert")
    method = METHODS.get("ptv2")
    cfg = method.make_config({"prompt_length": 2, "init": "uniform"})
    backbone, tok = spec.load()
    model = method.build(backbone, spec, tok, cfg, SEEDS)
    ids = torch.tensor([[tok.cls_token_id, PROMPT_SLOT_FIRST_ID, PROMPT_SLOT_FIRST_ID + 1, 2054, 2003,
                         tok.sep_token_id]] * 2)
    out = model(ids, torch.ones_like(ids), torch.zeros_like(ids), torch.tensor([1, 1]))
    out.sum().backward()
    for p in (model.prompt.weight, model.head.weight):
        assert p.grad[1].abs().sum() > 0
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0


@pytest.mark.parametrize("backbone_name, method_name", [("tiny-bert", "ptv2"), ("tiny-t5", "ptv2"),
                                                        ("tiny-bert", "pt")])
def test_prompt_is_added_at_the_slots_of_every_prompted_layer(backbone_name, method_name):
    """Layer k receives exactly its hidden states plus prompt[k] at the prompt slots (after
    [CLS]; T5 has none) and nothing elsewhere; layers past the prompt's depth get nothing."""
    spec = BACKBONES.get(backbone_name)
    method = METHODS.get(method_name)
    cfg = method.make_config({"prompt_length": 2, "init": "uniform"})
    backbone, tok = spec.load()
    model = method.build(backbone, spec, tok, cfg, [8, 13]).eval()
    layers = backbone.encoder.block if spec.arch == "t5" else backbone.encoder.layer
    before, after = {}, {}
    for k, layer in enumerate(layers):
        layer.register_forward_pre_hook(lambda m, a, k=k: before.__setitem__(k, a[0].detach()), prepend=True)
        layer.register_forward_pre_hook(lambda m, a, k=k: after.__setitem__(k, a[0].detach()))
    ids = torch.tensor([[tok.cls_token_id, PROMPT_SLOT_FIRST_ID, PROMPT_SLOT_FIRST_ID + 1, 2054, 2003,
                         tok.sep_token_id]])
    with torch.no_grad():
        model(ids, torch.ones_like(ids), torch.zeros_like(ids), torch.tensor([1]))
    prompts = model.prompt()[1]  # seed 13: (depth, L, d)
    a = model.prompt_offset
    assert a == (0 if spec.arch == "t5" else 1)
    for k in range(len(layers)):
        added = after[k] - before[k]
        expected = torch.zeros_like(added)
        if k < prompts.shape[0]:
            expected[0, a:a + 2] = prompts[k]
        torch.testing.assert_close(added, expected, atol=1e-6, rtol=0)
    assert (prompts.shape[0] == spec.n_layers) == (method_name == "ptv2")


def test_model_tuning_restarts_each_seed_from_pristine_weights(tmp_path, tiny_config):
    from replicate import jobs
    from replicate.config import Group, cell_settings, check_config

    cfg = check_config(tiny_config)
    settings = cell_settings(cfg, Group("model-tuning", "tiny-bert", "bbc-topic", 8))
    splits = [str(tmp_path / f"s{s}.json") for s in (8, 13)]
    jobs.make_splits(settings, [8, 13], "", splits)
    together = jobs.train_group(settings, [8, 13], splits, [str(tmp_path / f"a{s}.json") for s in (8, 13)], "")
    alone = jobs.train_group(settings, [13], splits[1:], [str(tmp_path / "b13.json")], "")
    assert together[1]["train_loss_curve"] == alone[0]["train_loss_curve"]
    assert together[1]["metrics"] == alone[0]["metrics"]
    assert together[1]["dev"] == alone[0]["dev"]
    assert together[0]["train_loss_curve"] != together[1]["train_loss_curve"]


def test_failed_group_leaves_no_prompt_hooks_on_the_shared_backbone(monkeypatch):
    from replicate import train as train_module

    spec = BACKBONES.get("tiny-bert")
    method = METHODS.get("ptv2")
    cfg = method.make_config({"epochs": 1, "batch_size": 4, "max_length": 40, "prompt_length": 3, "init": "uniform"})
    backbone, tok = spec.load()
    task = TASKS.get("bbc-topic")
    data, enc = seed_data(task, tok, cfg, method, [8])

    def explode(self):
        raise FloatingPointError("non-finite loss at epoch 1")

    monkeypatch.setattr(train_module.GroupTrainer, "fit", explode)
    outcomes = []
    train_module.run_group(method, cfg, spec, task, backbone, tok, None, data, enc,
                           lambda o, wall: outcomes.append(o), log=lambda m: None)
    assert outcomes[0].status == "failed" and "non-finite" in outcomes[0].error
    assert all(not layer._forward_pre_hooks for layer in backbone.encoder.layer)
