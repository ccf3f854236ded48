"""MRC encoding: (example, task) -> token ids with prompt slots and answer-span targets.

Layout (MP2 §3.1, Appendix C; the authors' code puts the prompt right after [CLS]):

    [CLS] P_1 .. P_L  context (truncated)  [SEP]  query with options  [SEP]

``P_i`` are placeholder positions whose embeddings the prompt replaces; models without a
[CLS] token (T5) start at P_1. Only the context is ever truncated, so every option stays
visible. Classification and multiple-choice targets are the start and end token of the
gold option's span in the query; the head's prediction is restricted to option spans.
Extractive targets are the answer's start and end token inside the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .tasks.base import Example, TaskSpec


@dataclass
class Encoded:
    input_ids: List[int]
    token_type_ids: List[int]
    option_starts: List[int]        # token index of each option's first token (empty: extractive)
    option_ends: List[int]          # token index of each option's last token
    label: Optional[int]            # gold option index; extractive: None
    answer_span: Optional[Tuple[int, int]] = None   # extractive gold tokens (None: truncated away)
    context_range: Tuple[int, int] = (0, 0)         # [start, end) of context tokens (extractive)
    context_offsets: Optional[List[Tuple[int, int]]] = None  # char offsets of context tokens
    context_text: str = ""
    answers: Tuple[str, ...] = ()


def _char_span_to_tokens(offsets: Sequence[Tuple[int, int]], start: int, end: int) -> Optional[Tuple[int, int]]:
    """First and last token overlapping the character span [start, end)."""
    covered = [i for i, (a, b) in enumerate(offsets) if b > start and a < end and b > a]
    return (covered[0], covered[-1]) if covered else None


class MRCEncoder:
    """Encodes examples of one task for one tokenizer, prompt length and maximum length."""

    def __init__(self, tokenizer, task: TaskSpec, max_length: int, prompt_length: int, use_cls: bool,
                 max_answer_tokens: int = 30):
        self.tok = tokenizer
        self.task = task
        self.max_length = max_length
        self.prompt_length = prompt_length
        self.use_cls = use_cls and tokenizer.cls_token_id is not None
        self.sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        # Prompt slots hold a real token id (pad) whose embedding the prompt replaces.
        self.slot_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_answer_tokens = max_answer_tokens

    @property
    def prompt_offset(self) -> int:
        return 1 if self.use_cls else 0

    def _tokens(self, text: str):
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def encode(self, ex: Example) -> Encoded:
        task = self.task
        extractive = task.kind == "extractive"
        if extractive:
            context = ex.text
            query_text = task.template.query + (ex.text_b or "")
            option_char_spans: Tuple[Tuple[int, int], ...] = ()
        else:
            context = task.template.context(ex)
            q = task.template.mrc_query(task.options_of(ex))
            query_text, option_char_spans = q.text, q.option_spans
        q_ids, q_offsets = self._tokens(query_text)
        c_ids, c_offsets = self._tokens(context)

        head = ([self.tok.cls_token_id] if self.use_cls else []) + [self.slot_id] * self.prompt_length
        budget = self.max_length - len(head) - len(q_ids) - 2
        if budget < 1:
            raise ValueError(f"task {task.name}: query of {len(q_ids)} tokens leaves no room within "
                             f"max_length {self.max_length} (prompt {self.prompt_length})")
        keep_tail = task.template.truncate == "tail" and not extractive
        if len(c_ids) > budget:
            sl = slice(len(c_ids) - budget, None) if keep_tail else slice(0, budget)
            c_ids, c_offsets = c_ids[sl], c_offsets[sl]
        c_start = len(head)
        q_start = c_start + len(c_ids) + 1
        ids = head + c_ids + [self.sep] + q_ids + [self.sep]
        types = [0] * q_start + [1] * (len(q_ids) + 1)

        enc = Encoded(input_ids=ids, token_type_ids=types, option_starts=[], option_ends=[], label=ex.label)
        if extractive:
            enc.context_range = (c_start, c_start + len(c_ids))
            enc.context_offsets = c_offsets
            enc.context_text = context
            enc.answers = ex.answers
            if ex.answer_start is not None and ex.answers:
                span = _char_span_to_tokens(c_offsets, ex.answer_start, ex.answer_start + len(ex.answers[0]))
                enc.answer_span = None if span is None else (c_start + span[0], c_start + span[1])
            return enc
        for a, b in option_char_spans:
            span = _char_span_to_tokens(q_offsets, a, b)
            if span is None:
                raise ValueError(f"task {task.name}: an option vanished in tokenisation of {query_text!r}")
            enc.option_starts.append(q_start + span[0])
            enc.option_ends.append(q_start + span[1])
        return enc

    def encode_all(self, examples: Sequence[Example]) -> Dict[str, Encoded]:
        return {ex.id: self.encode(ex) for ex in examples}

    def decode_span(self, enc: Encoded, start: int, end: int) -> str:
        """Context text covered by tokens [start, end] (absolute token indices)."""
        c0 = enc.context_range[0]
        a = enc.context_offsets[start - c0][0]
        b = enc.context_offsets[end - c0][1]
        return enc.context_text[a:b]
