"""SPoT's retrieval probe: the target's prompt trains against the source pre-training's head,
frozen, so that it and the source prompts (all trained against that one shared head) are
compared in the same head's space."""

import copy
import dataclasses

import pytest
import torch

from conftest import FIXTURES, TINY_CONFIG, train_first_group
from replicate.config import check_config, pretrain_settings
from replicate.jobs import CHECKPOINT_FILE, load_pretrained, pretrain_job
from replicate.methods import METHODS
from replicate.methods.common import span_head

SOURCES = ("bbc-title-topic", "tweet-source", "bbc-ppt-spc")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A per-task pre-training (three source prompts, one shared head) and its run config."""
    tmp = tmp_path_factory.mktemp("spot")
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp / "results")
    cfg["protocol"]["downstream_reserve"] = 0.2
    cfg["grid"]["methods"] = ["spot-retrieval"]
    cfg["pretraining"] = {"spot-sources": {
        "prompt": "per-task", "layout": "options", "tasks": list(SOURCES), "prompt_length": 3, "steps": 6,
        "batch_size": 2, "prompt_lr": 0.03, "eval_every": 3, "save_every": 2, "dev_cap": 4, "train_cap": 12,
        "max_length": 96, "init_vocab_size": 50}}
    cfg["methods"] = {"spot-retrieval": {"epochs": 2, "probe_epochs": 2, "max_length": 64, "prompt_length": 3,
                                         "batch_size": 4, "pretraining": "spot-sources", "layout": "options"}}
    cfg = check_config(cfg)
    settings = pretrain_settings(cfg, "spot-sources", "tiny-bert")
    pretrain_job(settings, str(tmp / "pre"), str(FIXTURES), device="cpu")
    checkpoint = str(tmp / "pre" / CHECKPOINT_FILE)
    tensors, _ = load_pretrained({"pretraining": settings}, checkpoint)
    return cfg, checkpoint, tensors


def _build(cfg, tensors, seeds=(8, 13), **overrides):
    from replicate.backbones import BACKBONES

    method = METHODS.get("spot-retrieval")
    mcfg = method.make_config({**cfg["methods"]["spot-retrieval"], **overrides})
    spec = BACKBONES.get("tiny-bert")
    backbone, tokenizer = spec.load()
    model = method.build(backbone, spec, tokenizer, mcfg, list(seeds), init_tokens=list(range(1000, 1100)),
                         pretrained=tensors)
    return method, mcfg, model, spec


def test_the_probe_trains_against_the_checkpoints_head_which_stays_unchanged(sources, monkeypatch, tmp_path):
    """Through the train job: when the probe starts and when its epochs are over (before the
    retrieval swaps prompts), every seed's head is the pre-training's head, bit for bit,
    while the probe's prompt did train."""
    cfg, checkpoint, tensors = sources
    cfg = copy.deepcopy(cfg)
    cfg["results_dir"] = str(tmp_path / "results")
    method = METHODS.get("spot-retrieval")
    seen = {}
    stages_of = type(method).stages

    def watched(model, mcfg):
        probe, *rest = stages_of(method, model, mcfg)

        def enter():
            seen["head_in"] = model.head.weight.detach().clone()
            seen["prompt_in"] = model.prompt.weight.detach().clone()

        def leave(seeds):
            seen["head_out"] = model.head.weight.detach().clone()
            seen["prompt_out"] = model.prompt.weight.detach().clone()
            return probe.leave(seeds)

        return [dataclasses.replace(probe, enter=enter, leave=leave), *rest]

    monkeypatch.setattr(method, "stages", watched)
    seeds = cfg["grid"]["seeds"]
    results = train_first_group(cfg, checkpoint)
    assert all(r["status"] == "ok" for r in results)
    head = tensors["head"].float()
    assert seen["head_in"].shape[0] == len(seeds)
    for s in range(len(seeds)):
        assert torch.equal(seen["head_in"][s], head)
        assert torch.equal(seen["head_out"][s], head)
        assert not torch.equal(seen["prompt_out"][s], seen["prompt_in"][s])  # the probe did train


def test_the_probes_param_groups_hold_no_head(sources):
    """The probe's optimiser holds the prompt alone; the transfer stage tunes the prompt and
    the head (the downstream transfer, as every prompt method here)."""
    cfg, _, tensors = sources
    method, mcfg, model, _ = _build(cfg, tensors)
    probe, transfer = method.stages(model, mcfg)
    ids = lambda stage: {id(p) for g in stage.groups for p in g["params"]}  # noqa: E731
    head = {id(p) for p in model.head.parameters()}
    assert probe.name == "probe" and ids(probe) == {id(p) for p in model.prompt.parameters()}
    assert not ids(probe) & head
    assert head <= ids(transfer)


def test_without_transfer_head_the_probe_still_uses_the_checkpoints_head_and_the_transfer_a_fresh_one(sources):
    cfg, _, tensors = sources
    method, mcfg, model, spec = _build(cfg, tensors, transfer_head=False)
    head = tensors["head"].float()
    assert all(torch.equal(model.head.weight[s], head) for s in range(2))
    probe = method.stages(model, mcfg)[0]
    probe.leave([0, 1])
    fresh = span_head(spec.d_model, [8, 13]).weight
    for s in range(2):
        assert torch.equal(model.head.weight[s], fresh[s]) and not torch.equal(fresh[s], head)
