"""MP2 pre-training: resumable to the same result, nothing of a downstream test pool or
few-shot pool in its data, UNSEEN TASK tasks refused, one clear line per bad entry."""

import copy
import json

import pytest
import torch

from conftest import FIXTURES, TINY_CONFIG
from replicate.config import check_config, pretrain_settings
from replicate.errors import ConfigError
from replicate.jobs import CHECKPOINT_FILE, RESUME_FILE, SUMMARY_FILE, load_pretrained, pretrain_job
from replicate.pretrain import held_out_texts, make_pretrain_config, upstream_data
from replicate.splits import Protocol, draw_split, few_shot_pool
from replicate.tasks import TASKS

UPSTREAM = ["bbc-topic", "bbc-title-topic", "bbc-next-sentence-choice", "bbc-quote-speaker", "tweet-source"]


def mp2_config(tmp_path, steps=6):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["protocol"]["downstream_reserve"] = 0.2
    cfg["grid"]["methods"] = ["mp2-shallow"]
    cfg["pretraining"] = {"mp2-shallow": {
        "prompt": "shallow", "tasks": UPSTREAM, "prompt_length": 3, "n_prompts": 4, "intrinsic_dim": 8,
        "steps": steps, "batch_size": 2, "router_lr": 0.01, "prompt_lr": 0.01, "eval_every": 3, "save_every": 2,
        "dev_cap": 4, "train_cap": 12, "max_length": 96}}
    cfg["methods"] = {"mp2-shallow": {"epochs": 2, "stage1_epochs": 1, "max_length": 48, "prompt_length": 3,
                                      "n_prompts": 4}}
    return check_config(cfg)


def test_a_killed_pretraining_resumes_to_the_same_checkpoint(tmp_path):
    cfg = mp2_config(tmp_path)
    settings = pretrain_settings(cfg, "mp2-shallow", "tiny-bert")
    whole = pretrain_job(settings, str(tmp_path / "whole"), str(FIXTURES), device="cpu")
    assert not (tmp_path / "whole" / RESUME_FILE).exists()
    # killed after step 3: the resume checkpoint of step 2 survives, step 3 is lost
    assert pretrain_job(settings, str(tmp_path / "killed"), str(FIXTURES), device="cpu", stop_after=3) is None
    assert not (tmp_path / "killed" / CHECKPOINT_FILE).exists()
    saved = torch.load(tmp_path / "killed" / RESUME_FILE, weights_only=False)
    assert saved["progress"]["step"] == 2
    resumed = pretrain_job(settings, str(tmp_path / "killed"), str(FIXTURES), device="cpu")
    a = torch.load(tmp_path / "whole" / CHECKPOINT_FILE, weights_only=False)
    b = torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=False)
    for key in ("router", "z", "A", "head"):
        assert torch.equal(a[key], b[key]), key
    assert resumed["dev_curve"] == whole["dev_curve"] and resumed["best_step"] == whole["best_step"]
    summary = json.loads((tmp_path / "whole" / SUMMARY_FILE).read_text())
    assert [t["name"] for t in summary["tasks"]] == UPSTREAM
    assert len(summary["routers"]) == len(UPSTREAM) and len(summary["routers"][0][0]) == 4
    # a cell names its checkpoint's hash; a checkpoint of other settings is refused
    cell_settings = {"pretraining": settings}
    _, provenance = load_pretrained(cell_settings, str(tmp_path / "whole" / CHECKPOINT_FILE))
    assert provenance["sha256"] == summary["checkpoint"]["sha256"]
    other = pretrain_settings(mp2_config(tmp_path, steps=7), "mp2-shallow", "tiny-bert")
    with pytest.raises(ConfigError, match="other settings"):
        load_pretrained({"pretraining": other}, str(tmp_path / "whole" / CHECKPOINT_FILE))


def test_no_test_pool_or_few_shot_text_reaches_pretraining():
    """The embedded default's upstream suite: for every task, nothing of any downstream test
    pool, nor of an UNSEEN DATA task's few-shot pool (its reserve), is in its data, whole or
    as a piece; every few-shot draw of an UNSEEN DATA task comes from the reserve alone; no
    UNSEEN TASK task is an upstream task."""
    from replicate.config import load_config

    cfg = load_config("config/config.yaml")
    protocol = Protocol(**cfg["protocol"])
    data_dir = str(FIXTURES)
    held_out = held_out_texts("embedded", data_dir, protocol)
    downstream = [n for n in TASKS if TASKS.get(n).suite == "embedded" and TASKS.get(n).track != "upstream"]
    forbidden = set()
    for name in downstream:
        task = TASKS.get(name)
        pools = task.load_pools(data_dir)
        forbidden |= {ex.text for ex in pools.test}
        if task.track == "unseen-data":
            reserve = few_shot_pool(task, pools, protocol)
            forbidden |= {ex.text for ex in reserve}
            split = draw_split(task, pools, 2, 13, protocol)  # the fixture pools are small
            assert set(split["train"]) | set(split["dev"]) <= {ex.id for ex in reserve}
    joined = "\x00".join(forbidden)
    pcfg = make_pretrain_config("mp2-shallow", {**cfg["pretraining"]["mp2-shallow"], "train_cap": 300})
    assert len(pcfg.tasks) >= 12 and len({TASKS.get(t).family for t in pcfg.tasks}) >= 4
    checked = 0
    for name in pcfg.tasks:
        task = TASKS.get(name)
        assert task.track in ("unseen-data", "upstream")
        try:
            pools = task.load_pools(data_dir)
        except ValueError:  # pos-first-noun: the fixture corpora carry no part-of-speech tags
            continue
        train, dev = upstream_data(task, pools, protocol, held_out, pcfg)
        for ex in train + dev:
            for text in (ex.text, ex.text_b, *(ex.options or ())):
                assert text not in forbidden
                assert text is None or len(text) < 20 or text not in joined, (name, text)
        checked += 1
    assert checked >= len(pcfg.tasks) - 1


def test_unseen_task_tasks_and_bad_entries_are_one_clear_line(tmp_path):
    cfg = mp2_config(tmp_path)
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mp2-shallow"]["tasks"] = ["bbc-topic", "spam-detection"]
    with pytest.raises(ConfigError, match="spam-detection is an UNSEEN TASK task"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    del bad["pretraining"]["mp2-shallow"]
    with pytest.raises(ConfigError, match="no pre-training named 'mp2-shallow'"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["protocol"]["downstream_reserve"] = None
    with pytest.raises(ConfigError, match="downstream_reserve"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mp2-shallow"]["router_lr"] = 0
    with pytest.raises(ConfigError, match="pretraining/mp2-shallow/router_lr"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mp2-shallow"]["steps_per_task"] = 3
    with pytest.raises(ConfigError, match="unknown field"):
        check_config(bad)
