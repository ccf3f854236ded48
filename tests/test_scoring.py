"""Loss, predictions and metrics as MP2's code computes them, on hand-made logits."""

import math

import pytest
import torch
import torch.nn.functional as F

from replicate.metrics import score, span_f1
from replicate.mrc import Encoded
from replicate.tasks import TASKS, resolve_task
from replicate.mrc import collate, example_losses, predictions


def encoded(n_tokens, starts=(), ends=(), label=None, answer=None):
    return Encoded(input_ids=list(range(1, n_tokens + 1)), token_type_ids=[0] * n_tokens, option_starts=list(starts),
                   option_ends=list(ends), label=label, answer_span=answer)


def test_loss_is_mean_of_start_and_end_cross_entropy_over_the_real_tokens():
    items = [encoded(5, (1, 3), (2, 4), label=1), encoded(3, (1,), (2,), label=0)]
    batch = collate(items, [0, 0], pad_id=0)
    logits = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0))
    losses = example_losses(logits, batch, extractive=False)
    first = (F.cross_entropy(logits[0, :, 0], torch.tensor(3)) + F.cross_entropy(logits[0, :, 1], torch.tensor(4))) / 2
    # the second example has 3 real tokens: its two padding positions are not candidates
    second = (F.cross_entropy(logits[1, :3, 0], torch.tensor(1)) + F.cross_entropy(logits[1, :3, 1], torch.tensor(2))) / 2
    torch.testing.assert_close(losses, torch.stack([first, second]))


def test_extractive_loss_targets_the_answer_tokens():
    batch = collate([encoded(6, answer=(2, 3)), encoded(6, answer=None)], [0, 0], pad_id=0)
    logits = torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(1))
    losses = example_losses(logits, batch, extractive=True)
    expected = (F.cross_entropy(logits[0, :, 0], torch.tensor(2)) + F.cross_entropy(logits[0, :, 1], torch.tensor(3))) / 2
    torch.testing.assert_close(losses[0], expected)
    assert losses[1] == 0  # no answer in the input: no loss


def test_options_score_by_the_product_of_start_and_end_logits():
    batch = collate([encoded(6, (1, 3), (2, 4), label=0)], [0], pad_id=0)
    logits = torch.zeros(1, 6, 2)
    # option 0: start 3, end 3 -> sum 6, product 9; option 1: start 10, end -1 -> sum 9, product -10
    logits[0, 1, 0], logits[0, 2, 1] = 3.0, 3.0
    logits[0, 3, 0], logits[0, 4, 1] = 10.0, -1.0
    assert predictions(logits, batch, extractive=False) == [0]  # a sum would pick option 1
    # two negative logits multiply to a large score, as in MPMP's torch.mul
    logits[0, 1, 0], logits[0, 2, 1] = -4.0, -4.0
    assert predictions(logits, batch, extractive=False) == [0]


def test_padding_options_never_win():
    batch = collate([encoded(6, (1,), (2,), label=0), encoded(6, (1, 3), (2, 4), label=1)], [0, 0], pad_id=0)
    logits = -torch.ones(2, 6, 2)
    # the first example's padding option points at position 0, whose product (-50 x -50)
    # would beat its real option's (-1 x -1) if it were not masked
    logits[:, 0] = -50.0
    assert predictions(logits, batch, extractive=False)[0] == 0


def test_extractive_span_is_two_independent_argmaxes():
    batch = collate([encoded(6), encoded(6)], [0, 0], pad_id=0)
    logits = torch.zeros(2, 6, 2)
    logits[0, 2, 0], logits[0, 4, 1] = 5.0, 5.0
    logits[1, 4, 0], logits[1, 1, 1] = 5.0, 5.0  # end before start: an empty answer
    assert predictions(logits, batch, extractive=True) == [(2, 4), (4, 1)]


@pytest.mark.parametrize("pred, gold, f1", [
    ("1998", "1998年", 2 * 1 * 0.5 / 1.5),     # one of the gold's two tokens
    ("北京", "北京市", 2 * 1 * (2 / 3) / (1 + 2 / 3)),
    ("the cat", "the cat sat", 0.8),
    ("北京 2008", "2008年北京", 2 * 0.75 * 1 / 1.75),
    ("", "北京", 0.0),
])
def test_span_f1_segments_prediction_and_gold_by_one_rule(pred, gold, f1):
    assert span_f1(pred, gold) == pytest.approx(f1)


def test_extractive_score_takes_the_best_gold_and_counts_exact_matches():
    task = resolve_task("cmrc-2018")
    out = score(task, ["1998年", "北京"], [("1998年", "1998"), ("上海",)])
    assert out == {"f1": pytest.approx(50.0), "em": pytest.approx(50.0)}


def test_classification_accuracy_and_macro_f1():
    task = TASKS.get("sentence-polarity")
    out = score(task, [0, 0, 1, 1], [0, 1, 1, 1])
    assert out["acc"] == 75.0
    f1_neg, f1_pos = 2 * 1 / (2 * 1 + 1), 2 * 2 / (2 * 2 + 1)
    assert out["macro_f1"] == pytest.approx(100 * (f1_neg + f1_pos) / 2)
    assert math.isclose(score(TASKS.get("bbc-topic"), [1], [1])["acc"], 100.0)
