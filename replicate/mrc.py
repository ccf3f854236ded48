"""MRC encoding: (example, task) -> token ids with prompt slots and answer-span targets.

Layout (MP2 §3.1 and Appendix C; the details are those of the authors' code, Hzfinfdu/MPMP
``Deep/dataloader.py``):

    classification   [CLS] P_1..P_L  filled template  opt_1 ， opt_2 ， ... opt_n ，
    multiple choice  [CLS] P_1..P_L  filled template  opt_1 ， ... opt_n [SEP]
    extractive       [CLS] P_1..P_L  抽取式问答：文本"<context>问题"<question> [SEP]

``P_i`` are placeholder positions holding the token ids 1000..1000+L-1 (MPMP
``dataloader.py:81-88``); the prompt is ADDED to the hidden states there (``model.py``).
Models without a [CLS] token (T5) start at P_1. The filled template is the task's template
with the example's text(s) inside (``Template``). Targets: the start and end token of the
gold option (its first and last token, without the separator) or of the answer in the
context. Token types are the backbone's convention (CPT: all ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .tasks.base import Example, TaskSpec

PROMPT_SLOT_FIRST_ID = 1000  # MPMP dataloader.py:81 (offset = 1000)


@dataclass
class Encoded:
    input_ids: List[int]
    token_type_ids: List[int]
    option_starts: List[int]        # token index of each option's first token (empty: extractive)
    option_ends: List[int]          # token index of each option's last token
    label: Optional[int]            # gold option index; extractive: None
    answer_span: Optional[Tuple[int, int]] = None   # extractive gold tokens
    text: str = ""                                  # the filled template (extractive: spans decode from it)
    char_offsets: Optional[List[Optional[Tuple[int, int]]]] = None  # per token: span in ``text``, or None
    answers: Tuple[str, ...] = ()


def _char_span_to_tokens(offsets: Sequence[Tuple[int, int]], start: int, end: int) -> Optional[Tuple[int, int]]:
    """First and last token overlapping the character span [start, end)."""
    covered = [i for i, (a, b) in enumerate(offsets) if b > start and a < end and b > a]
    return (covered[0], covered[-1]) if covered else None


class TooLong(ValueError):
    """An example that does not fit: an extractive one (MPMP drops those; see
    splits.drop_long), or one whose lettered candidates leave no room for its query
    (pre-training drops those, with a count: ``fitting``)."""


class MRCEncoder:
    """Encodes examples of one task for one tokenizer, prompt length and maximum length."""

    def __init__(self, tokenizer, task: TaskSpec, max_length: int, prompt_length: int, use_cls: bool,
                 token_type: int = 0):
        self.tok = tokenizer
        self.task = task
        self.max_length = max_length
        self.prompt_length = prompt_length
        self.use_cls = use_cls and tokenizer.cls_token_id is not None
        self.sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.token_type = token_type
        self.slots = list(range(PROMPT_SLOT_FIRST_ID, PROMPT_SLOT_FIRST_ID + prompt_length))
        if prompt_length and PROMPT_SLOT_FIRST_ID + prompt_length > len(tokenizer):
            raise ValueError(f"prompt slots {PROMPT_SLOT_FIRST_ID}..{PROMPT_SLOT_FIRST_ID + prompt_length - 1} "
                             f"exceed the vocabulary ({len(tokenizer)} tokens)")

    def _tokens(self, text: str):
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def _option_block(self, options: Sequence[str], multiple_choice: bool):
        """Token ids of the options, each followed by the separator (the last one by [SEP] for
        multiple choice), and each option's (first, last) token within the block."""
        sep_ids, _ = self._tokens(self.task.template.option_separator)
        block, spans = [], []
        for i, option in enumerate(options):
            ids, _ = self._tokens(option)
            if not ids:
                raise ValueError(f"task {self.task.name}: option {option!r} has no tokens")
            spans.append((len(block), len(block) + len(ids) - 1))
            block += ids
            block += [self.sep] if multiple_choice and i == len(options) - 1 else sep_ids
        return block, spans

    def _truncate(self, ids, offsets, fields, budget):
        """Fit the filled template's tokens into ``budget`` (see Template.truncate)."""
        cut = len(ids) - budget
        if cut <= 0:
            return ids, offsets
        mode = self.task.template.truncate
        if mode == "right" or not fields:
            return ids[:budget], offsets[:budget]
        # the longest inserted text gives way; the template's own words stay
        a, b = max(fields.values(), key=lambda span: span[1] - span[0])
        inside = [i for i, (x, y) in enumerate(offsets) if x >= a and y <= b and y > x]
        if len(inside) < cut:
            return ids[:budget], offsets[:budget]
        drop = set(inside[-cut:] if mode == "head" else inside[:cut])
        keep = [i for i in range(len(ids)) if i not in drop]
        return [ids[i] for i in keep], [offsets[i] for i in keep]

    def _fit_listing(self, ex: Example, ids, offsets, fields, budget):
        """Fit a lettered template (query, "A. <c1> B. <c2> ...", suffix) into ``budget``
        tokens without cutting its own words or a candidate's letter: candidates are cut to
        their share of the room when the template has ``limits`` (PPT's pre-training tasks:
        ``formats.candidate_tokens``), then the query's fields give way, the longest first,
        down to one token each. TooLong when that is not enough, or when the cut gold
        candidate reads the same as another."""
        from .formats import candidate_tokens

        template = self.task.template

        def inside(span):
            return [i for i, (x, y) in enumerate(offsets) if x >= span[0] and y <= span[1] and y > x]

        query = [inside(fields[k]) for k in ("a", "b") if k in fields]
        candidates = [inside(fields[f"c{i}"]) for i in range(sum(k.startswith("c") for k in fields))]
        drop = set()
        if template.limits is not None:
            n = len(candidates)
            fixed = len(ids) - sum(map(len, query)) - sum(map(len, candidates))
            per = candidate_tokens(template.limits, n, budget - fixed) if n in template.limits else 0
            if per < 1:
                raise TooLong(f"task {self.task.name}: example {ex.id}: {n} candidates leave no room within "
                              f"max_length {self.max_length} (prompt {self.prompt_length})")
            for c in candidates:
                drop.update(c[per:])
            cut = [tuple(ids[i] for i in c[:per]) for c in candidates]
            if ex.label is not None and cut.count(cut[ex.label]) > 1:
                raise TooLong(f"task {self.task.name}: example {ex.id}: cut to {per} tokens, the answer reads "
                              "as another candidate")
        excess = len(ids) - len(drop) - budget
        spare = sum(max(0, len(f) - 1) for f in query)
        if excess > spare:
            raise TooLong(f"task {self.task.name}: example {ex.id}: its candidates leave no room for the query "
                          f"within max_length {self.max_length} (prompt {self.prompt_length})")
        keep = [len(f) for f in query]
        for _ in range(max(0, excess)):  # the longest field gives one token at a time
            k = max(range(len(keep)), key=lambda j: keep[j])
            keep[k] -= 1
        tail = template.truncate == "tail"
        for f, k in zip(query, keep):
            drop.update(f[:len(f) - k] if tail else f[k:])
        kept = [i for i in range(len(ids)) if i not in drop]
        return [ids[i] for i in kept], [offsets[i] for i in kept]

    def encode(self, ex: Example) -> Encoded:
        task = self.task
        text, fields = task.template.fill(ex)
        ids, offsets = self._tokens(text)
        head = ([self.tok.cls_token_id] if self.use_cls else []) + self.slots
        if task.kind == "extractive":
            body = head + ids + [self.sep]
            if len(body) > self.max_length:
                raise TooLong(f"task {task.name}: example {ex.id} has {len(body)} tokens > max_length "
                              f"{self.max_length} (extractive examples are dropped, not truncated)")
            enc = Encoded(input_ids=body, token_type_ids=[self.token_type] * len(body), option_starts=[],
                          option_ends=[], label=None, text=text, answers=ex.answers,
                          char_offsets=[None] * len(head) + list(offsets) + [None])
            if ex.answer_start is not None and ex.answers:
                a0 = fields["a"][0] + ex.answer_start
                span = _char_span_to_tokens(offsets, a0, a0 + len(ex.answers[0]))
                enc.answer_span = None if span is None else (len(head) + span[0], len(head) + span[1])
            return enc
        block, spans = self._option_block(task.options_of(ex), task.kind == "multiple-choice")
        budget = self.max_length - len(head) - len(block)
        if budget < 1:
            raise ValueError(f"task {task.name}: the options take {len(block)} tokens and leave no room within "
                             f"max_length {self.max_length} (prompt {self.prompt_length})")
        if hasattr(task.template, "letters"):  # formats.LetteredTemplate: the listing is never cut
            ids, offsets = self._fit_listing(ex, ids, offsets, fields, budget)
        else:
            ids, offsets = self._truncate(ids, offsets, fields, budget)
        start = len(head) + len(ids)
        body = head + ids + block
        return Encoded(input_ids=body, token_type_ids=[self.token_type] * len(body),
                       option_starts=[start + a for a, _ in spans], option_ends=[start + b for _, b in spans],
                       label=ex.label, text=text)

    def listing_room(self, n: int) -> Tuple[int, int]:
        """(tokens per candidate, tokens left for the query) of an n-candidate draw of a
        lettered template with ``limits``: what the encoder gives them at this max_length
        (the config check refuses a length where either is below 1)."""
        from .formats import candidate_tokens

        template = self.task.template
        blank = Example(id="", text="", text_b="" if "{b}" in template.text else None, options=("",) * n, label=0)
        fixed = len(self._tokens(template.fill(blank)[0])[0])
        block, _ = self._option_block(self.task.options_of(blank), self.task.kind == "multiple-choice")
        room = self.max_length - (1 if self.use_cls else 0) - self.prompt_length - len(block) - fixed
        per = candidate_tokens(template.limits, n, room) if room > 0 else 0
        return per, room - n * per

    def fitting(self, examples: Sequence[Example]) -> List[Example]:
        """The examples that fit (those whose encoding raises TooLong are left out)."""
        kept = []
        for ex in examples:
            try:
                self.encode(ex)
            except TooLong:
                continue
            kept.append(ex)
        return kept

    def decode_span(self, enc: Encoded, start: int, end: int) -> str:
        """Text covered by tokens [start, end] (absolute indices); "" for an empty or
        special-token-only span (MPMP decodes whatever tokens lie between the two argmaxes)."""
        covered = [enc.char_offsets[i] for i in range(start, end + 1)
                   if 0 <= i < len(enc.char_offsets) and enc.char_offsets[i] is not None]
        if not covered:
            return ""
        return enc.text[covered[0][0]:covered[-1][1]]


# --- tensors, loss and answers of the MRC formulation (formulation.MRC) -------------------

@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    seed_index: torch.Tensor
    option_starts: torch.Tensor  # (B, K); zeros for extractive
    option_ends: torch.Tensor
    option_mask: torch.Tensor    # (B, K) bool
    labels: torch.Tensor         # (B,) option index; -1 if none
    answer_starts: torch.Tensor  # (B,) extractive gold start; -1 if none
    answer_ends: torch.Tensor


def collate(items: Sequence[Encoded], seed_index: Sequence[int], pad_id: int, device=None) -> Batch:
    n = len(items)
    width = max(len(e.input_ids) for e in items)
    k = max(1, max(len(e.option_starts) for e in items))
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    starts = torch.zeros((n, k), dtype=torch.long)
    ends = torch.zeros((n, k), dtype=torch.long)
    omask = torch.zeros((n, k), dtype=torch.bool)
    labels = torch.full((n,), -1, dtype=torch.long)
    a_start = torch.full((n,), -1, dtype=torch.long)
    a_end = torch.full((n,), -1, dtype=torch.long)
    for i, e in enumerate(items):
        t = len(e.input_ids)
        ids[i, :t] = torch.tensor(e.input_ids)
        types[i, :t] = torch.tensor(e.token_type_ids)
        mask[i, :t] = 1
        m = len(e.option_starts)
        if m:
            starts[i, :m] = torch.tensor(e.option_starts)
            ends[i, :m] = torch.tensor(e.option_ends)
            omask[i, :m] = True
        if e.label is not None:
            labels[i] = e.label
        if e.answer_span is not None:
            a_start[i], a_end[i] = e.answer_span
    batch = Batch(ids, mask, types, torch.tensor(list(seed_index), dtype=torch.long), starts, ends, omask, labels,
                  a_start, a_end)
    if device is not None and device.type != "cpu":
        batch = Batch(*(t.to(device, non_blocking=True) for t in vars(batch).values()))
    return batch


def _targets(batch: Batch, extractive: bool):
    """Gold start and end token of each example: the gold option's first and last token, or
    the answer's. -1 where there is none."""
    if extractive:
        return batch.answer_starts, batch.answer_ends
    has = batch.labels >= 0
    idx = batch.labels.clamp(min=0)[:, None]
    start = batch.option_starts.gather(1, idx)[:, 0]
    end = batch.option_ends.gather(1, idx)[:, 0]
    return start.where(has, -1), end.where(has, -1)


def example_losses(logits: torch.Tensor, batch: Batch, extractive: bool) -> torch.Tensor:
    """Per-example loss as in MPMP (``Deep/modeling_cpt.py`` QA loss): cross-entropy of the
    start and of the end position over every token of the input, averaged
    ((start + end) / 2). Padding is masked out (MPMP attends to it and lets the loss pick
    it, an artefact of batch shapes that would make an example's loss depend on its batch)."""
    real = batch.attention_mask.bool()
    start_t, end_t = _targets(batch, extractive)
    keep = start_t >= 0
    start = logits[..., 0].masked_fill(~real, -1e4)
    end = logits[..., 1].masked_fill(~real, -1e4)
    loss = (F.cross_entropy(start, start_t.clamp(min=0), reduction="none")
            + F.cross_entropy(end, end_t.clamp(min=0), reduction="none")) / 2
    return loss * keep


def predictions(logits: torch.Tensor, batch: Batch, extractive: bool) -> List:
    """Option index per example, or (start, end) token span for extractive tasks (MPMP
    ``Deep/model.py:41-77``): an option scores start logit (at its first token) TIMES end
    logit (at its last token); an extractive answer runs from the start argmax to the end
    argmax, taken independently over the input (empty when the end comes first)."""
    if not extractive:
        start = logits[..., 0].gather(1, batch.option_starts)
        end = logits[..., 1].gather(1, batch.option_ends)
        scores = (start * end).masked_fill(~batch.option_mask, float("-inf"))
        return scores.argmax(dim=1).tolist()
    real = batch.attention_mask.bool()
    start = logits[..., 0].masked_fill(~real, float("-inf")).argmax(dim=1)
    end = logits[..., 1].masked_fill(~real, float("-inf")).argmax(dim=1)
    return list(zip(start.tolist(), end.tolist()))


def score_predictions(task, encoder: MRCEncoder, encs: List[Encoded], preds: List) -> Dict[str, float]:
    """The task's metrics of ``preds`` (option indices, or token spans decoded to text)."""
    from .metrics import score

    if task.kind == "extractive":
        texts = [encoder.decode_span(e, a, b) if b >= a else "" for e, (a, b) in zip(encs, preds)]
        return score(task, texts, [e.answers for e in encs])
    return score(task, preds, [e.label for e in encs])


