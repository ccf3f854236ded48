"""Task metrics. Classification: accuracy (the papers' column) and macro-F1. Extractive:
SQuAD-style token F1 and exact match over the best-matching gold answer. Prediction and gold
are segmented by one rule (CMRC-2018's mixed segmentation): every CJK character is a token,
and each run of other non-space characters is a token, so "1998" against "1998年" shares
one of two tokens whatever the mix of scripts on either side."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》【】…—·")


def _tokens(text: str):
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    out, run = [], []
    for ch in text:
        if _CJK.match(ch) or ch.isspace():
            if run:
                out.append("".join(run))
                run = []
            if not ch.isspace():
                out.append(ch)
        else:
            run.append(ch)
    if run:
        out.append("".join(run))
    return out


def span_f1(pred: str, gold: str) -> float:
    return token_f1(_tokens(pred), _tokens(gold))


def token_f1(p: Sequence[str], g: Sequence[str]) -> float:
    """SQuAD's F1 of two token lists (1 when both are empty, 0 when one is)."""
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g:
        return float(p == g)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def score(task, predictions: Sequence, golds: Sequence) -> Dict[str, float]:
    """Metrics in percent (as the papers print them)."""
    if not golds:
        raise ValueError("cannot score an empty set")
    if task.kind == "extractive":
        f1 = [max(span_f1(p, g) for g in gs) if gs else 0.0 for p, gs in zip(predictions, golds)]
        em = [float(any(_tokens(p) == _tokens(g) for g in gs)) for p, gs in zip(predictions, golds)]
        return {"f1": 100 * sum(f1) / len(f1), "em": 100 * sum(em) / len(em)}
    acc = sum(int(p == g) for p, g in zip(predictions, golds)) / len(golds)
    out = {"acc": 100 * acc}
    if task.kind == "classification":
        f1s = []
        for lab in range(task.num_labels):
            tp = sum(p == lab and g == lab for p, g in zip(predictions, golds))
            fp = sum(p == lab and g != lab for p, g in zip(predictions, golds))
            fn = sum(p != lab and g == lab for p, g in zip(predictions, golds))
            f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        out["macro_f1"] = 100 * sum(f1s) / len(f1s)
    return out


def above_constant(scores: Mapping[str, float], constant: Mapping[str, Optional[float]]) -> Tuple[List[str], int]:
    """(the tasks whose score is above their best constant prediction's, in ``constant``'s
    order; how many tasks have one: extractive tasks, None, have none)."""
    above = [t for t, c in constant.items() if c is not None and scores[t] > c]
    return above, sum(c is not None for c in constant.values())


def majority_accuracy(task, golds: Sequence[int]) -> float:
    """Accuracy of the best constant prediction on these labels (the chance reference)."""
    counts = Counter(golds)
    return 100 * max(counts.values()) / len(golds)
