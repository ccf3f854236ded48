"""The frozen-feature probe used to explain tasks that stay at chance."""

import torch

from replicate.backbones import BACKBONES
from replicate.probe import logistic_probe, probe_task
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS

from conftest import FIXTURES


def test_logistic_probe_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 8, generator=g)
    x[:, 0] += 3 * (2 * y - 1)  # separable with a margin
    clf = logistic_probe(x, y, 2)
    assert (clf(x).argmax(-1) == y).float().mean() == 1.0


def test_probe_reports_both_kinds_with_majority():
    backbone, tok = BACKBONES.get("tiny-bert").load()
    for name, kind in (("spam-detection", "logistic-regression"), ("bbc-same-topic", "cosine-threshold")):
        task = TASKS.get(name)
        pools = task.load_pools(str(FIXTURES))
        parts = resolve(draw_split(task, pools, 8, 8, Protocol(test_cap=20)), pools)
        out = probe_task(task, parts, backbone, tok, max_length=32)
        labels = [ex.label for ex in parts["test"]]
        assert out["probe"] == kind and out["n_fit"] == 16 and out["n_test"] == 20
        assert out["majority"] == 100 * max(labels.count(y) for y in set(labels)) / len(labels)
        correct = out["acc"] * out["n_test"] / 100  # a count of test examples
        assert abs(correct - round(correct)) < 1e-4  # float32 mean
