"""ATTEMPT's and ComPT's split schemes (replicate/splits.py, ``draw_attempt``): exact
index choice, reproducibility, leakage, unchanged MP2 hashes, and ``shot: full`` in configs."""

import copy

import pytest
from conftest import t2t_files

from replicate.config import check_config, split_path
from replicate.errors import ConfigError, DataError
from replicate.splits import Protocol, draw_split, parse_shot, protocol_dict, randperm, resolve
from replicate.tasks import TASKS, resolve_task
from replicate.tasks.base import Example, Pools
from replicate.tasks.text2text import TEXT2TEXT_TASKS

SMALL = dict(dev_holdout=5)  # fixtures have 24 rows: ATTEMPT's 1,000-row holdout would take all


def load(name):
    return resolve_task(name, t2t_files(name)).load_pools("unused")


def test_randperm_is_torchs_seeded_randperm():
    # torch 2.x CPU; pinned so that a change of torch's algorithm is noticed
    assert randperm(10, 42) == [2, 6, 1, 8, 4, 5, 0, 9, 3, 7]
    assert randperm(10, 123) == [2, 0, 8, 1, 3, 7, 4, 9, 5, 6]


def test_small_task_halves_validation_exactly_as_attempt():
    task, pools = TASKS.get("rte"), load("rte")
    m = draw_split(task, pools, "full", 1, Protocol(scheme="attempt"))
    perm = randperm(len(pools.test), 42)  # A:110-111: validation_size = len // 2
    assert m["dev"] == [pools.test[i].id for i in perm[:12]]
    assert m["test"] == [pools.test[i].id for i in perm[12:]]
    assert m["pools"] == {"train": "train", "dev": "test", "test": "test"}
    assert set(m["dev"]).isdisjoint(m["test"])
    assert m["train"] == [ex.id for ex in pools.train]
    k = draw_split(task, pools, 4, 7, Protocol(scheme="attempt"))
    assert k["train"] == [pools.train[i].id for i in randperm(len(pools.train), 7)[:4]]  # subsample, A:139-140
    assert (k["dev"], k["test"]) == (m["dev"], m["test"])  # the partition is the data seed's alone


def test_large_task_holds_out_training_rows_as_dev():
    task, pools = TASKS.get("qqp"), load("qqp")
    perm = randperm(len(pools.train), 42)
    m = draw_split(task, pools, 4, 42, Protocol(scheme="attempt", **SMALL))
    assert m["dev"] == [pools.train[i].id for i in perm[:5]]  # A:125-126
    assert m["train"] == [pools.train[i].id for i in perm[5:9]]  # draw seed = data seed: ATTEMPT exactly
    assert m["pools"] == {"train": "train", "dev": "train", "test": "test"}
    for seed in range(20):
        m = draw_split(task, pools, 4, seed, Protocol(scheme="attempt", **SMALL))
        assert set(m["train"]).isdisjoint(m["dev"])


def test_given_splits_mnli():
    task, pools = TASKS.get("mnli"), load("mnli")
    m = draw_split(task, pools, "full", 0, Protocol(scheme="attempt"))
    assert m["pools"] == {"train": "train", "dev": "dev", "test": "test"}
    assert m["dev"] == [ex.id for ex in pools.dev] and m["test"] == [ex.id for ex in pools.test]
    parts = resolve(m, pools)
    assert parts["dev"][0].text.startswith("The validation_mismatched")
    assert parts["test"][0].text.startswith("The validation_matched")


def test_compt_scheme_first_k_of_seed_123_and_caps():
    task, pools = TASKS.get("mrpc"), load("mrpc")
    proto = Protocol(scheme="compt", dev_cap=3, test_cap=4)
    a = draw_split(task, pools, 8, 1, proto)
    b = draw_split(task, pools, 8, 2, proto)
    assert a["train"] == b["train"] == [pools.train[i].id for i in randperm(len(pools.train), 123)[:8]]
    perm = randperm(len(pools.test), 123)
    assert a["dev"] == [pools.test[i].id for i in perm[:12][:3]]
    assert a["test"] == [pools.test[i].id for i in perm[12:][:4]]
    given = draw_split(TASKS.get("paws-en"), load("paws-en"), 8, 1, proto)
    assert given["test"] == [load("paws-en").test[i].id for i in randperm(24, 123)[:4]]  # subsample, C:244-245


SCHEMES = [Protocol(scheme="attempt", **SMALL), Protocol(scheme="compt", **SMALL),
           Protocol(scheme="compt", dev_cap=3, test_cap=5, **SMALL)]


@pytest.mark.parametrize("name", [t.name for t in TEXT2TEXT_TASKS])
def test_no_test_example_reaches_train_or_dev(name):
    task, pools = TASKS.get(name), load(name)
    test_texts = {(ex.text, ex.text_b) for ex in pools.test}
    for proto in SCHEMES:
        for shot in (4, "full"):
            for seed in (0, 42):
                m = draw_split(task, pools, shot, seed, proto)
                parts = resolve(m, pools)
                test_keys = {(m["pools"]["test"], i) for i in m["test"]}
                for part in ("train", "dev"):
                    keys = {(m["pools"][part], i) for i in m[part]}
                    assert keys.isdisjoint(test_keys), (name, part)
                    assert all(m["pools"][part] != "test" or part == "dev" for _ in [0])
                    if m["pools"][part] != "test":
                        assert not {(ex.text, ex.text_b) for ex in parts[part]} & test_texts
                if name != "imdb":  # ComPT's IMDB dev is drawn from its train split (C:784-786)
                    assert set(m["train"]).isdisjoint(m["dev"]) or m["pools"]["train"] != m["pools"]["dev"]
                assert draw_split(task, pools, shot, seed, proto) == m  # reproducible


def test_mp2_hashes_unchanged():
    """Hashes computed with main's splits.py before the schemes existed (commit 52139e8)."""
    task = TASKS.get("sentence-polarity")
    pools = Pools(train=[Example(id=str(i), text=f"t{i}", label=i % 2) for i in range(40)],
                  test=[Example(id=str(i), text=f"u{i}", label=i % 2) for i in range(10)])
    assert draw_split(task, pools, 4, 13, Protocol())["hash"] == \
        "f12d79c3f79078c08e814a74ae3ddd145c115d2fea648cc7aaa72c9424ccc1f2"
    assert draw_split(task, pools, 4, 13, Protocol(test_cap=5))["hash"] == \
        "6a8d9d88d5de6be381002cea94935807d7af5ec718eb7d209286f3f913438838"
    assert "scheme" not in protocol_dict(Protocol()) and "pools" not in draw_split(task, pools, 4, 13, Protocol())
    assert protocol_dict(Protocol(scheme="compt"))["scheme"] == "compt"


def test_full_needs_an_attempt_scheme():
    with pytest.raises(DataError):
        draw_split(TASKS.get("rte"), load("rte"), "full", 0, Protocol())


def test_parse_shot():
    assert parse_shot("16") == 16 and parse_shot("full") == "full" and parse_shot(4) == 4
    with pytest.raises(ValueError):
        parse_shot("all")


def test_config_accepts_shot_full_with_attempt_scheme(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["grid"]["tasks"] = ["rte"]
    cfg["grid"]["shots"] = [16, "full"]
    cfg["paper_data_files"] = t2t_files("rte")
    with pytest.raises(ConfigError, match="full"):
        check_config(copy.deepcopy(cfg), check_data=False)
    cfg["protocol"] = dict(cfg.get("protocol", {}), scheme="attempt")
    out = check_config(cfg, check_data=False)
    assert out["grid"]["shots"] == [16, "full"]
    assert split_path(out, "rte", "full", 1).endswith("/splits/rte/shotfull/seed1.json")
    bad = copy.deepcopy(cfg)
    bad["grid"]["shots"] = ["all"]
    with pytest.raises(ConfigError):
        check_config(bad, check_data=False)


def test_attempt_scheme_refuses_tasks_without_a_rule(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["protocol"] = dict(cfg.get("protocol", {}), scheme="attempt")
    with pytest.raises(ConfigError, match="ATTEMPT split rule"):
        check_config(cfg, check_data=False)


def test_default_protocol_keys_unchanged(tiny_config):
    out = check_config(copy.deepcopy(tiny_config), check_data=False)
    assert set(out["protocol"]) == {"many_labels", "per_label_when_many", "test_cap", "drop_longer_than",
                                    "length_prompt_slots", "downstream_reserve"}
