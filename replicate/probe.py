"""Frozen-feature probes: is a task's answer readable from the frozen backbone at all?

When a prompt method stays at chance on a task, this separates "the frozen backbone does not
encode it" from "32 examples through the MRC head do not find it". On the same few-shot
split (train + dev), with the same backbone, frozen, mean-pooled sentence embeddings:

- single-text tasks: multinomial logistic regression (L2, LBFGS), fit on train + dev;
- sentence-pair tasks: cosine similarity of the two sentences, thresholded at the value
  that best separates "yes" from "no" on train + dev.

Reported on the task's test set next to the majority-class accuracy. These are diagnostics
of the backbone, not methods, and never appear in a regenerated paper table.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

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


def logistic_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-2) -> torch.nn.Linear:
    torch.manual_seed(0)
    clf = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.LBFGS(clf.parameters(), max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(clf(x), y) + l2 * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return clf


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
        clf = logistic_probe(x_fit, y_fit, task.num_labels)
        with torch.no_grad():
            pred = clf(x_test).argmax(-1)
        kind = "logistic-regression"
    return {"probe": kind, "acc": 100 * (pred == y_test).float().mean().item(),
            "majority": majority_accuracy(task, y_test.tolist()), "n_fit": len(fit), "n_test": len(test)}
