"""The frozen-feature probe used to explain tasks that stay at chance."""

import pytest
import torch

from replicate.backbones import BACKBONES
from replicate.probe import embed, logistic_probe, probe_task
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS
from replicate.tasks.base import Example

from conftest import FIXTURES


def test_logistic_probe_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 8, generator=g)
    x[:, 0] += 3 * (2 * y - 1)  # separable with a margin
    clf = logistic_probe(x.numpy(), y.numpy())
    assert (clf.predict(x.numpy()) == y.numpy()).all()


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_probe_minimises_mean_cross_entropy_plus_l2_times_squared_weights(n_classes):
    """scikit-learn's fit is the optimum of the objective the probe states (mean CE + l2 * ||W||^2
    over one softmax row per class, bias free): that objective's gradient, by autograd at the
    fitted softmax rows, is ~0. Binary: scikit-learn's one row w is the rows -w/2 and w/2."""
    g = torch.Generator().manual_seed(n_classes)
    y = torch.arange(48) % n_classes
    x = torch.nn.functional.normalize(torch.randn(48, 8, generator=g) + 0.5 * torch.eye(8)[y], dim=-1).double()
    l2 = 1e-2
    clf = logistic_probe(x.numpy(), y.numpy(), l2=l2)
    coef, bias = torch.tensor(clf.coef_), torch.tensor(clf.intercept_)
    if n_classes == 2:
        coef, bias = torch.cat([-coef / 2, coef / 2]), torch.cat([-bias / 2, bias / 2])
    weight, bias = coef.clone().requires_grad_(), bias.clone().requires_grad_()
    loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
    loss.backward()
    assert weight.grad.abs().max() < 1e-4 and bias.grad.abs().max() < 1e-4
    assert coef.abs().max() > 0.1  # a fit that says something (not shrunk to zero)


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


SENTENCES = ["the market fell sharply today", "a striker scored twice in the final", "parliament passed the budget",
             "the new phone has a larger screen", "rain is expected over the weekend", "the film won three awards"]


def test_embed_mean_pools_the_real_tokens_alone():
    """A text's embedding is the same alone and in a batch padded to a longer text: the padding
    is masked out of the mean; each row has unit norm."""
    backbone, tok = BACKBONES.get("tiny-bert").load()
    alone = embed(backbone, tok, SENTENCES[:1])
    padded = embed(backbone, tok, [SENTENCES[0], " ".join(SENTENCES)])
    assert len(tok(SENTENCES[0])["input_ids"]) < len(tok(" ".join(SENTENCES))["input_ids"])  # there is padding
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded.norm(dim=-1), torch.ones(2))


def test_cosine_probe_says_yes_above_the_threshold_that_best_fits():
    """Pairs of one sentence twice (or less a word, in dev) are "yes" (label 0, cosine ~0.99 to 1
    on the tiny BERT), pairs of two sentences "no" (~0.95): the threshold that separates them
    on train + dev reads the test pairs right, with a margin either side."""
    backbone, tok = BACKBONES.get("tiny-bert").load()
    others = [Example(f"no{i}", s, t, 1) for i, (s, t) in enumerate(zip(SENTENCES[:3], SENTENCES[3:]))]
    same = [Example(f"yes{i}", s, s, 0) for i, s in enumerate(SENTENCES[:3])]
    shortened = [Example("dev0", SENTENCES[0], SENTENCES[0].replace(" today", ""), 0),
                 Example("dev1", SENTENCES[1], SENTENCES[1].replace(" twice", ""), 0)]
    parts = {"train": same + others, "dev": shortened + others[:2], "test": same + others}
    out = probe_task(TASKS.get("bbc-same-topic"), parts, backbone, tok, max_length=32)
    assert (out["probe"], out["acc"], out["majority"], out["n_fit"], out["n_test"]) == (
        "cosine-threshold", 100.0, 50.0, 10, 6)
