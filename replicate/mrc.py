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
from typing import List, Optional, Sequence, Tuple

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
    """An extractive example that does not fit (MPMP drops those; see splits.drop_long)."""


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
        ids, offsets = self._truncate(ids, offsets, fields, budget)
        start = len(head) + len(ids)
        body = head + ids + block
        return Encoded(input_ids=body, token_type_ids=[self.token_type] * len(body),
                       option_starts=[start + a for a, _ in spans], option_ends=[start + b for _, b in spans],
                       label=ex.label, text=text)

    def decode_span(self, enc: Encoded, start: int, end: int) -> str:
        """Text covered by tokens [start, end] (absolute indices); "" for an empty or
        special-token-only span (MPMP decodes whatever tokens lie between the two argmaxes)."""
        covered = [enc.char_offsets[i] for i in range(start, end + 1)
                   if 0 <= i < len(enc.char_offsets) and enc.char_offsets[i] is not None]
        if not covered:
            return ""
        return enc.text[covered[0][0]:covered[-1][1]]
