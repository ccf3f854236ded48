"""The text-to-text formulation (T5): "input text -> target text", a soft prompt in the encoder input.

How a task becomes tensors. An example is written in its task's text-to-text form of one
lineage of code (``TaskSpec.formats[text_format]``: ATTEMPT's, which MPT inherits, or
ComPT's; ``tasks.base.TextFormat``). Its input is tokenized without special tokens, cut to
fit, and laid out with the prompt's L slots and T5's closing ``</s>``:

    prompt_position "prefix":  P_1..P_L  input  </s>     (ATTEMPT, MPT, Lester et al.)
    prompt_position "suffix":  input  P_1..P_L  </s>     (ComPT's code: placeholders after the input)

The slots hold the pad id; the model replaces their embeddings by the prompt
(``model.PromptedSeq2Seq``), so nothing of the slots' own embedding reaches the encoder. The
target is the gold string's tokens and ``</s>``.

How the loss is computed: the target tokens' cross-entropy under teacher forcing, averaged
over the example's target tokens (``</s>`` included), per example; the trainer averages
examples per seed.

How an answer is read, two ways, both recorded on the test set (``Seq2Seq.score``):
- ``rank`` (rank classification): every candidate target of a classification example (its
  verbalizer's strings, each with ``</s>``) is scored by the sum of its tokens'
  log-probabilities; the highest wins, ties to the lowest label index. A multi-token word
  is scored by all its tokens, and ``</s>`` makes "duplicate" and "not_duplicate" compete
  as whole strings rather than as prefixes. Regression and extractive tasks have no
  candidates: their rank reader is the generated string.
- ``generate``: greedy decoding to ``</s>`` or ``max_target_length`` tokens; the string is
  matched exactly (after stripping spaces) against the verbalizer. A string that is none of
  them is *invalid*: it counts as wrong, and the number of invalid outputs is recorded
  (``generate/invalid``), as are the counts of every (gold, generated) pair
  (``details``: ComPT's confusion tables of generated strings).
``reader`` says which of the two the unprefixed metrics (dev selection, the tables) read.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from .errors import ConfigError

READERS = ("rank", "generate")
PROMPT_POSITIONS = ("prefix", "suffix")


@dataclass
class TextEncoded:
    """One example as token ids. ``prompt_start``: index of the first prompt slot (-1: none).
    ``target_ids``: the gold target with ``</s>`` ([] without gold). ``candidates``: the
    target ids of each label's verbalizer string (classification), else []. ``gold``: what
    scoring compares with: a label index, a number, or the gold answer strings."""

    input_ids: List[int]
    prompt_start: int
    target_ids: List[int]
    candidates: List[List[int]]
    label: Optional[int]
    gold: object
    text: str = ""
    group: Optional[str] = None  # MultiRC: the question its answer option belongs to (exact match per question)


class TextEncoder:
    """Encodes a task's examples in one lineage's text-to-text form (module docstring)."""

    def __init__(self, tokenizer, task, text_format: str, max_length: int, prompt_length: int,
                 prompt_position: str = "prefix", max_target_length: int = 16):
        self.tok, self.task = tokenizer, task
        self.fmt = task.formats.get(text_format)
        if self.fmt is None:
            raise ConfigError(f"task {task.name}: no {text_format!r} text-to-text form (it has "
                              f"{', '.join(sorted(task.formats)) or 'none'}); the seq2seq formulation needs one")
        if tokenizer.eos_token_id is None:
            raise ConfigError("the seq2seq formulation needs a tokenizer with an end-of-sequence token (T5's </s>)")
        self.max_length, self.prompt_length = max_length, prompt_length
        self.prompt_position, self.max_target_length = prompt_position, max_target_length
        self.eos = tokenizer.eos_token_id
        self.slot = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if max_length < prompt_length + 2:
            raise ConfigError(f"max_length {max_length} leaves no room for the input beside {prompt_length} "
                              "prompt tokens")
        self.candidates = [self._target(t) for t in self.fmt.targets] if task.kind == "classification" else []

    def _ids(self, text: str) -> List[int]:
        return list(self.tok(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _target(self, text: str) -> List[int]:
        return self._ids(text)[:self.max_target_length - 1] + [self.eos]

    def source_text(self, ex) -> str:
        """The input text of ``ex`` (what init="vocab" counts tokens of)."""
        return self.fmt.source(ex)

    def gold(self, ex) -> object:
        if self.task.kind == "regression":
            return ex.value
        if self.task.kind == "extractive":
            return tuple(ex.answers)
        return ex.label

    def encode(self, ex) -> TextEncoded:
        source = self.fmt.source(ex)
        ids = self._ids(source)[:self.max_length - self.prompt_length - 1]  # the input's end gives way
        slots = [self.slot] * self.prompt_length
        if self.prompt_position == "prefix":
            input_ids, start = slots + ids + [self.eos], 0
        else:
            input_ids, start = ids + slots + [self.eos], len(ids)
        target = self.fmt.target(self.task.kind, ex)
        label = ex.label if self.task.kind == "classification" and ex.label is not None and ex.label >= 0 else None
        group = dict(ex.fields).get("group")
        return TextEncoded(input_ids=input_ids, prompt_start=start if self.prompt_length else -1,
                           target_ids=[] if target is None else self._target(target),
                           candidates=self.candidates, label=label, gold=self.gold(ex), text=source, group=group)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True).strip()


@dataclass
class TextBatch:
    input_ids: torch.Tensor       # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    seed_index: torch.Tensor      # (B,)
    prompt_start: torch.Tensor    # (B,), -1 without a prompt
    target_ids: torch.Tensor      # (B, S), pad where shorter
    target_mask: torch.Tensor     # (B, S) bool
    candidate_ids: torch.Tensor   # (B, K, C)
    candidate_mask: torch.Tensor  # (B, K, C) bool
    option_mask: torch.Tensor     # (B, K) bool
    labels: torch.Tensor          # (B,), -1 if none


def _pad(rows: Sequence[Sequence[int]], width: int, pad: int):
    ids = torch.full((len(rows), max(width, 1)), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), max(width, 1)), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, :len(r)] = True
    return ids, mask


def collate_text(items: Sequence[TextEncoded], seed_index: Sequence[int], pad_id: int, device=None) -> TextBatch:
    n = len(items)
    ids, attn = _pad([e.input_ids for e in items], max(len(e.input_ids) for e in items), pad_id)
    targets, tmask = _pad([e.target_ids for e in items], max(len(e.target_ids) for e in items), pad_id)
    k = max(len(e.candidates) for e in items)
    c = max((len(t) for e in items for t in e.candidates), default=1)
    cand = torch.full((n, max(k, 1), c), pad_id, dtype=torch.long)
    cmask = torch.zeros((n, max(k, 1), c), dtype=torch.bool)
    omask = torch.zeros((n, max(k, 1)), dtype=torch.bool)
    for i, e in enumerate(items):
        for j, t in enumerate(e.candidates):
            cand[i, j, :len(t)] = torch.tensor(t, dtype=torch.long)
            cmask[i, j, :len(t)] = True
            omask[i, j] = True
    batch = TextBatch(ids, attn.long(), torch.tensor(list(seed_index), dtype=torch.long),
                      torch.tensor([e.prompt_start for e in items], dtype=torch.long), targets, tmask, cand, cmask,
                      omask, torch.tensor([-1 if e.label is None else e.label for e in items], dtype=torch.long))
    if device is not None and device.type != "cpu":
        batch = TextBatch(*(t.to(device, non_blocking=True) for t in vars(batch).values()))
    return batch


# --- scoring -----------------------------------------------------------------------------

def _squad_normalise(text: str) -> str:
    """SQuAD's answer normalisation (lower case, no punctuation, no articles, single spaces),
    which the MRQA and SQuAD scores of ATTEMPT's lineage use."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_f1(pred: str, gold: str) -> float:
    from .metrics import token_f1

    return token_f1(_squad_normalise(pred).split(), _squad_normalise(gold).split())


def parse_number(text: str) -> Optional[float]:
    try:
        return float(text.strip())
    except ValueError:
        return None


def text_metrics(task, preds: Sequence, golds: Sequence, groups: Optional[Sequence] = None) -> Dict[str, float]:
    """Every metric the papers print for ``task``'s kind, in percent, scored as ATTEMPT's
    ``metrics/metrics.py`` does (docs/text2text-sources.md): classification accuracy (an
    invalid prediction, -1, is wrong), binary F1 of label 1 (2 labels; an invalid output
    counts as the opposite of the gold, ``f1_score_with_invalid``), macro-F1, Matthews
    correlation (invalid outputs a class of their own), and with ``groups`` (MultiRC's
    questions) exact match = the share of groups whose every option is right; regression
    Pearson and Spearman correlation (an unparsable output counts as -1.0, a correlation
    that is undefined as 0); extractive SQuAD F1 and exact match (max over gold answers)."""
    from scipy import stats

    if not golds:
        raise ValueError("cannot score an empty set")
    if task.kind == "extractive":
        f1 = [max((squad_f1(p, g) for g in gs), default=0.0) for p, gs in zip(preds, golds)]
        em = [float(any(_squad_normalise(p) == _squad_normalise(g) for g in gs)) for p, gs in zip(preds, golds)]
        return {"f1": 100 * sum(f1) / len(f1), "em": 100 * sum(em) / len(em)}
    if task.kind == "regression":
        xs = [-1.0 if p is None else float(p) for p in preds]
        out = {}
        for name, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
            r = fn(xs, list(golds))[0] if len(set(xs)) > 1 and len(set(golds)) > 1 else 0.0
            out[name] = 0.0 if r != r else 100 * float(r)
        return out
    out = class_metrics(list(preds), list(golds), task.num_labels)
    if groups is not None and all(g is not None for g in groups):
        right: Dict[str, bool] = {}
        for p, g, q in zip(preds, golds, groups):
            right[q] = right.get(q, True) and p == g
        out["em"] = 100 * sum(right.values()) / len(right)
    return out


def class_metrics(preds: Sequence[int], golds: Sequence[int], n_labels: int) -> Dict[str, float]:
    n = len(golds)
    out = {"acc": 100 * sum(int(p == g) for p, g in zip(preds, golds)) / n}
    def f1s_of(ps):
        f1s = []
        for lab in range(n_labels):
            tp = sum(p == lab and g == lab for p, g in zip(ps, golds))
            fp = sum(p == lab and g != lab for p, g in zip(ps, golds))
            fn = sum(p != lab and g == lab for p, g in zip(ps, golds))
            f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        return f1s

    out["macro_f1"] = 100 * sum(f1s_of(preds)) / n_labels
    if n_labels == 2:  # an invalid output is the opposite of the gold (ATTEMPT's f1_score_with_invalid)
        out["f1"] = 100 * f1s_of([p if p in (0, 1) else 1 - g for p, g in zip(preds, golds)])[1]
    out["mcc"] = 100 * matthews(preds, golds, n_labels)
    return out


def matthews(preds: Sequence[int], golds: Sequence[int], n_labels: int) -> float:
    """Matthews correlation (the multiclass form, Gorodkin 2004, as scikit-learn computes it);
    an invalid prediction (-1) is a class of its own, never the gold one."""
    import numpy as np

    labels = sorted(set(range(n_labels)) | set(preds))
    index = {lab: i for i, lab in enumerate(labels)}
    c = np.zeros((len(labels), len(labels)))
    for p, g in zip(preds, golds):
        c[index[g], index[p]] += 1
    t, p = c.sum(axis=1), c.sum(axis=0)
    s, correct = c.sum(), np.trace(c)
    cov_yp = correct * s - t @ p
    cov_yy, cov_pp = s * s - t @ t, s * s - p @ p
    if cov_yy * cov_pp == 0:
        return 0.0
    return float(cov_yp / np.sqrt(cov_yy * cov_pp))


# --- the formulation ---------------------------------------------------------------------

def mean_target_loss(token_logp: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """(B,) each example's mean cross entropy over its target tokens (0 without one)."""
    count = target_mask.sum(dim=1)
    return -(token_logp.sum(dim=1) / count.clamp(min=1)) * (count > 0)


class Seq2Seq:
    """The text-to-text formulation (module docstring). Needs a ``model.PromptedSeq2Seq``."""

    name = "seq2seq"

    def __init__(self, task, text_format: str = "attempt", reader: str = "rank", prompt_position: str = "prefix",
                 max_target_length: int = 16):
        if reader not in READERS:
            raise ConfigError(f"reader: must be one of {', '.join(map(repr, READERS))}, not {reader!r}")
        if prompt_position not in PROMPT_POSITIONS:
            raise ConfigError(f"prompt_position: must be one of {', '.join(map(repr, PROMPT_POSITIONS))}, "
                              f"not {prompt_position!r}")
        self.task, self.text_format, self.prompt_position = task, text_format, prompt_position
        self.max_target_length = max_target_length
        # regression and extractive answers can only be read from a generated string
        self.reader = reader if task.kind == "classification" else "generate"
        self.readers = ("rank", "generate") if task.kind == "classification" else ("generate",)

    def encoder(self, tokenizer, max_length: int, prompt_length: int, spec) -> TextEncoder:
        return TextEncoder(tokenizer, self.task, self.text_format, max_length, prompt_length, self.prompt_position,
                           self.max_target_length)

    def collate(self, items, seed_index, pad_id: int, device=None) -> TextBatch:
        return collate_text(items, seed_index, pad_id, device)

    def example_losses(self, model, batch: TextBatch) -> torch.Tensor:
        """Mean cross-entropy of each example's target tokens (0 for an example without one)."""
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        return mean_target_loss(model.token_logprobs(hidden, batch.attention_mask, batch.target_ids, batch.target_mask),
                                batch.target_mask)

    def outputs(self, model, batch: TextBatch):
        """What distillation compares (``distill.Outputs``): the vocabulary distribution at
        each target token under teacher forcing, and the encoder's and the decoder's last
        hidden states (MPT §4.1)."""
        from .distill import Outputs

        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        logits, decoder_hidden = model.decode(hidden, batch.attention_mask, batch.target_ids, batch.target_mask,
                                              with_hidden=True)
        from .model import target_logprobs

        logp = target_logprobs(logits, batch.target_ids, batch.target_mask)
        return Outputs(mean_target_loss(logp, batch.target_mask), logits.float(), batch.target_mask.bool(),
                       [(hidden, batch.attention_mask.bool()), (decoder_hidden, batch.target_mask.bool())])

    def predict(self, model, batch: TextBatch, final: bool = True) -> List[Dict[str, object]]:
        """Per example {"rank": label index, "generate": token ids}; only the reader that
        selects on dev unless ``final`` (the test set: both)."""
        readers = self.readers if final else (self.reader,)
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        out: List[Dict[str, object]] = [{} for _ in range(batch.input_ids.shape[0])]
        if "rank" in readers:
            b, k, c = batch.candidate_ids.shape
            rows = hidden.repeat_interleave(k, dim=0)
            mask = batch.attention_mask.repeat_interleave(k, dim=0)
            logp = model.token_logprobs(rows, mask, batch.candidate_ids.reshape(b * k, c),
                                        batch.candidate_mask.reshape(b * k, c))
            scores = logp.sum(dim=1).view(b, k).masked_fill(~batch.option_mask, float("-inf"))
            for o, choice in zip(out, scores.argmax(dim=1).tolist()):  # argmax: ties to the lowest index
                o["rank"] = choice
        if "generate" in readers:
            for o, ids in zip(out, model.generate(hidden, batch.attention_mask, self.max_target_length)):
                o["generate"] = ids
        return out

    def _read(self, encoder: TextEncoder, reader: str, pred: Dict[str, object]):
        """A prediction in the gold's terms: a label index (-1: invalid), a number (None:
        invalid) or a string."""
        if reader == "rank":
            return pred["rank"]
        text = encoder.decode(pred["generate"])
        if self.task.kind == "classification":
            targets = list(encoder.fmt.targets)
            return targets.index(text) if text in targets else -1
        if self.task.kind == "regression":
            return parse_number(text)
        return text

    def score(self, encoder: TextEncoder, encs: Sequence[TextEncoded], preds: Sequence[Dict]) -> Dict[str, float]:
        """Each reader's metrics prefixed with its name, and the selecting reader's unprefixed,
        with ``average``: the mean of the task's ``average_of`` metrics (ATTEMPT's
        ``average_metrics``, what it selects checkpoints on; the task's metric alone where
        none are listed)."""
        golds = [e.gold for e in encs]
        groups = [e.group for e in encs]
        out: Dict[str, float] = {}
        for reader in self.readers:
            if reader not in preds[0]:
                continue
            read = [self._read(encoder, reader, p) for p in preds]
            metrics = text_metrics(self.task, read, golds, groups)
            names = self.task.extra.get("average_of") or (self.task.metric,)
            metrics["average"] = sum(metrics[n] for n in names) / len(names)
            out.update({f"{reader}/{k}": v for k, v in metrics.items()})
            if reader == "generate" and self.task.kind in ("classification", "regression"):
                out["generate/invalid"] = float(sum(r is None or r == -1 for r in read))
            if reader == self.reader:
                out.update(metrics)
        return out

    def details(self, encoder: TextEncoder, encs: Sequence[TextEncoded], preds: Sequence[Dict]) -> Dict[str, object]:
        """Counts of (gold target, generated string) pairs on the test set: ComPT's confusion
        tables of generated outputs (its Tables 5, 6, A1), invalid strings included."""
        if self.task.kind != "classification" or "generate" not in preds[0]:
            return {}
        table: Dict[str, Counter] = {}
        for e, p in zip(encs, preds):
            gold = encoder.fmt.targets[e.gold] if e.gold is not None else ""
            table.setdefault(gold, Counter())[encoder.decode(p["generate"])] += 1
        return {"generated": {g: dict(sorted(c.items())) for g, c in sorted(table.items())}}
