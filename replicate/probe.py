"""Frozen-feature probes: is a task's answer readable from the frozen backbone at all?

When a prompt method stays at chance on a task, this separates "the frozen backbone does not
encode it" from "32 examples through the MRC head do not find it". On the same few-shot
split (train + dev), with the same backbone, frozen, mean-pooled sentence embeddings:

- single-text tasks: logistic regression (scikit-learn's, L2, LBFGS; multinomial over more than
  two classes), fit on train + dev;
- sentence-pair tasks: cosine similarity of the two sentences, thresholded at the value
  that best separates "yes" from "no" on train + dev.

Reported on the task's test set next to the majority-class accuracy. These are diagnostics
of the backbone, not methods, and never appear in a regenerated paper table.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import majority_accuracy


def embed(backbone, tokenizer, texts: Sequence[str], max_length: int = 128, batch: int = 64) -> torch.Tensor:
    backbone.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tokenizer(list(texts[i:i + batch]), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            hidden = backbone(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out)


def logistic_probe(x, y, l2: float = 1e-2):
    """scikit-learn's logistic regression of labels ``y`` on features ``x`` (arrays), fitted.
    ``l2`` weighs the squared weights against the mean cross-entropy, bias unpenalised:
    mean CE + l2 * ||W||^2 over one weight row per class (the objective the probe had when it
    was a torch softmax layer). scikit-learn minimises C * sum CE + ||w||^2 / 2, over one row per
    class with more than two classes (C = 1 / (2 * l2 * n)) and over one row w for two, where the
    softmax's rows at its optimum are -w/2 and w/2 (so l2 * ||w||^2 / 2: C = 1 / (l2 * n)). The
    same optimum, so the probe's predictions stay the softmax layer's."""
    from sklearn.linear_model import LogisticRegression

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    n_classes = len(np.unique(y))
    c = 1 / (l2 * len(y)) if n_classes == 2 else 1 / (2 * l2 * len(y))
    return LogisticRegression(C=c, max_iter=1000).fit(x, y)


def probe_task(task, parts: Dict[str, List], backbone, tokenizer, max_length: int = 128) -> Dict[str, float]:
    """Test accuracy of the frozen-feature probe trained on ``parts['train'] + parts['dev']``."""
    fit = parts["train"] + parts["dev"]
    test = parts["test"]
    y_fit = torch.tensor([ex.label for ex in fit])
    y_test = torch.tensor([ex.label for ex in test])
    if all(ex.text_b is not None for ex in fit + test):
        def cosine(examples):
            a = embed(backbone, tokenizer, [ex.text for ex in examples], max_length)
            b = embed(backbone, tokenizer, [ex.text_b for ex in examples], max_length)
            return (a * b).sum(-1)

        s_fit, s_test = cosine(fit), cosine(test)
        # label 0 means "yes" (same source): predict it above the threshold
        candidates = sorted(set(s_fit.tolist()))
        threshold = max(candidates, key=lambda t: ((s_fit >= t) == (y_fit == 0)).float().mean().item())
        pred = torch.where(s_test >= threshold, 0, 1)
        kind = "cosine-threshold"
    else:
        x_fit = embed(backbone, tokenizer, [ex.text for ex in fit], max_length)
        x_test = embed(backbone, tokenizer, [ex.text for ex in test], max_length)
        pred = torch.from_numpy(logistic_probe(x_fit.numpy(), y_fit.numpy()).predict(x_test.numpy()))
        kind = "logistic-regression"
    return {"probe": kind, "acc": 100 * (pred == y_test).float().mean().item(),
            "majority": majority_accuracy(task, y_test.tolist()), "n_fit": len(fit), "n_test": len(test)}
