"""The few-shot protocol: deterministic, balanced, disjoint, hashed."""

from dataclasses import replace

import pytest

from replicate.errors import DataError
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS, resolve_task
from replicate.tasks.base import Example, Pools

from conftest import paper_files

P = Protocol(test_cap=50)


def bbc():
    task = TASKS.get("bbc-topic")
    return task, task.load_pools("")


def test_deterministic_in_task_shot_seed():
    task, pools = bbc()
    a, b = draw_split(task, pools, 32, 8, P), draw_split(task, pools, 32, 8, P)
    assert a == b
    c = draw_split(task, pools, 32, 13, P)
    assert c["train"] != a["train"] and c["hash"] != a["hash"]
    assert c["test"] == a["test"]  # every seed is scored on the same test set


def test_balanced_exact_total_and_disjoint():
    task, pools = bbc()
    m = draw_split(task, pools, 32, 21, P)
    assert len(m["train"]) == len(m["dev"]) == 32
    assert sorted(m["label_counts"]["train"].values()) == [6, 6, 6, 7, 7]
    assert set(m["train"]).isdisjoint(m["dev"])
    assert len(m["test"]) == 50


def test_many_labels_take_eight_per_label():
    files = paper_files("tnews")
    task = resolve_task("tnews", files)
    m = draw_split(task, task.load_pools(""), 32, 8, P)
    assert set(m["label_counts"]["train"].values()) == {8} and len(m["train"]) == 15 * 8


def test_resolve_detects_changed_data():
    task, pools = bbc()
    m = draw_split(task, pools, 32, 8, P)
    parts = resolve(m, pools)
    assert [ex.id for ex in parts["train"]] == m["train"]
    victim = m["train"][0]
    edited = Pools(train=[replace(ex, text=ex.text + "!") if ex.id == victim else ex for ex in pools.train],
                   test=pools.test)
    with pytest.raises(DataError, match="content hash differs"):
        resolve(m, edited)


def test_too_few_examples_is_a_clear_error():
    task = TASKS.get("spam-detection")
    tiny = Pools(train=[Example(id=str(i), text=f"t{i}", label=i % 2) for i in range(6)],
                 test=[Example(id="x", text="x", label=0)])
    with pytest.raises(DataError, match="needed for 16 train"):
        draw_split(task, tiny, 32, 8, P)
