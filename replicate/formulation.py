"""Formulations: how a task becomes tensors, how the model's output becomes a loss and an answer.

A formulation bundles the steps a tuner calls, so that one tuner runs any of them:
``encoder`` (examples -> encoded items), ``collate`` (items -> a batch),
``example_losses(model, batch)`` (the loss of each example), ``predict(model, batch,
final)`` (each example's answer; ``final``: the test set, where every reader runs), and
``score`` (predictions -> the task's metrics), with ``details`` (what a result keeps beside
its metrics). The gradient trainer (``train.GroupTrainer``), the pre-training loop and the
black-box evaluator call only these. Formulations whose answer is read off one forward pass
(mrc, mlm) split the first two into ``forward`` (model and batch -> scores), ``losses`` and
``predictions``, which the black-box evaluator calls on shared batches. Three are
implemented, chosen per method by its config (``formulation``):

- ``mrc``: MP2's machine-reading formulation (``mrc.py``: its encoder, ``example_losses``,
  ``predictions``): a span head over the input, options scored by start x end.
- ``mlm``: BBT's masked-LM label-word formulation, as Black-Box-Tuning runs CPT
  (``tasks/cloze.py`` documents the templates): the example is a cloze sentence with one
  [MASK]; the score of a label word is the masked-LM logit of its (first) token at the
  [MASK]; the loss is cross entropy over the label words (``bbt.py:375-396``); the answer is
  the highest-scoring label word (``bbt.py:383``).
- ``seq2seq``: the text-to-text formulation of T5 (``seq2seq.py``): target-token cross
  entropy, answers read by rank classification and by greedy generation.

The masked-LM head. Black-Box-Tuning's ``CPTForMaskedLM`` computes
``lm_head(encoder_last_hidden_state[mask_pos])`` (``models/modeling_cpt.py:1528``;
``models/deep_modeling_cpt.py:1520``), with ``lm_head`` a bias-free ``Linear(d, vocab)``
(:1451) and tied to CPT's shared word embeddings (transformers' default
``tie_word_embeddings``; fastnlp/CPT's checkpoint conversion drops ``lm_head.weight`` and the
zero ``final_logits_bias``, ``pretrain/tools/convert_ckpt.py:18-19``; CPT's pre-training reads
its encoder's MLM logits the same way, ``pretrain/megatron/model/cpt_model.py:93-94``). So on CPT the scores here,
``h_mask . E[w]`` with E the backbone's input word embeddings, ARE that head: nothing of
MP2's pre-training (no span head) enters. On a backbone that ships no MLM head (the embedded
MiniLM, a sentence-embedding BertModel), the same tied-embedding scores are a stand-in for
one: CPT's form of the head, not a head that backbone was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .mrc import PROMPT_SLOT_FIRST_ID, MRCEncoder

FORMULATIONS = ("mrc", "mlm", "seq2seq")


class ScoredFormulation:
    """A formulation whose loss and answer are read off one forward pass's scores."""

    def example_losses(self, model, batch) -> torch.Tensor:
        return self.losses(self.forward(model, batch), batch)

    def predict(self, model, batch, final: bool = True) -> List:
        return self.predictions(self.forward(model, batch), batch)

    def details(self, encoder, encs, preds) -> Dict[str, object]:
        return {}


# --- mlm: encoding -----------------------------------------------------------------------

@dataclass
class ClozeEncoded:
    """One example as a cloze: ``mask_position`` indexes ``input_ids``; ``word_ids`` are the
    token ids of its label words (one per option, in label order); ``label`` indexes them."""

    input_ids: List[int]
    token_type_ids: List[int]
    mask_position: int
    word_ids: List[int]
    label: Optional[int]
    text: str = ""


class ClozeEncoder:
    """Encodes a task's examples as Black-Box-Tuning's CPT loaders do: ``[CLS] P_1..P_L
    <cloze sentence> [SEP]``, the prompt slots holding ids 1000.. (``dataloader_cpt.py:78-80``,
    the ids MPMP uses too). Where the input is longer than ``max_length``, the longest
    inserted text gives way (its end; its beginning with the task's ``truncate: tail``); the
    template's words, the options and the [MASK] stay. (Black-Box-Tuning instead drops inputs
    over 512 tokens, ``dataloader_cpt.py:49``.)"""

    def __init__(self, tokenizer, task, max_length: int, prompt_length: int, use_cls: bool, token_type: int = 0):
        from .tasks.cloze import cloze_for

        self.tok, self.task, self.max_length, self.prompt_length = tokenizer, task, max_length, prompt_length
        self.cloze = cloze_for(task)
        if self.cloze is None:
            raise ConfigError(f"task {task.name}: no cloze template for the mlm formulation ({task.kind} task)")
        if tokenizer.mask_token_id is None:
            raise ConfigError("the mlm formulation needs a tokenizer with a [MASK] token")
        self.use_cls = use_cls and tokenizer.cls_token_id is not None
        self.sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.token_type = token_type
        self.slots = list(range(PROMPT_SLOT_FIRST_ID, PROMPT_SLOT_FIRST_ID + prompt_length))
        self.words = None if self.cloze.words is None else self.word_ids(self.cloze.words)

    def _ids(self, text: str) -> List[int]:
        return list(self.tok(text, add_special_tokens=False, verbose=False)["input_ids"])

    def word_ids(self, words: Sequence[str]) -> List[int]:
        """The first token of each label word (Black-Box-Tuning: ``encode(word)[0]``);
        ConfigError where one has no token or two share their first token."""
        ids = []
        for w in words:
            toks = self._ids(w)
            if not toks:
                raise ConfigError(f"task {self.task.name}: label word {w!r} has no token")
            ids.append(toks[0])
        if len(set(ids)) != len(ids):
            first = [self.tok.convert_ids_to_tokens(i) for i in ids]
            raise ConfigError(f"task {self.task.name}: label words {list(words)} share a first token ({first}); "
                              "the mlm formulation reads each word by its first token")
        return ids

    def encode(self, ex) -> ClozeEncoded:
        from string import Formatter

        from .tasks.cloze import LETTERS, options_text

        options = self.task.options_of(ex)
        values = {"a": ex.text, "b": ex.text_b or "", "options": options_text(options) if options else ""}
        pieces = []  # (field name or None for the template's own words, token ids)
        for literal, name, _, _ in Formatter().parse(self.cloze.text):
            if literal:
                pieces.append((None, self._ids(literal)))
            if name == "mask":
                pieces.append(("mask", [self.tok.mask_token_id]))
            elif name is not None:
                pieces.append((name, self._ids(values[name])))
        head = ([self.tok.cls_token_id] if self.use_cls else []) + self.slots
        budget = self.max_length - len(head) - 1
        over = sum(len(ids) for _, ids in pieces) - budget
        if over > 0:
            cut = max((i for i, (n, _) in enumerate(pieces) if n in ("a", "b")), key=lambda i: len(pieces[i][1]),
                      default=None)
            if cut is None or len(pieces[cut][1]) < over:
                raise ValueError(f"task {self.task.name}: example {ex.id} needs {over} more tokens than max_length "
                                 f"{self.max_length} leaves once the template, options and prompt are in")
            name, ids = pieces[cut]
            pieces[cut] = (name, ids[over:] if self.task.template.truncate == "tail" else ids[:len(ids) - over])
        mask_position = len(head) + sum(len(ids) for _, ids in pieces[:[n for n, _ in pieces].index("mask")])
        input_ids = head + [t for _, ids in pieces for t in ids] + [self.sep]
        words = self.words if self.cloze.words is not None else self.word_ids(LETTERS[:len(options)])
        text = Formatter().vformat(self.cloze.text, (), {**values, "mask": self.tok.mask_token})
        return ClozeEncoded(input_ids=input_ids, token_type_ids=[self.token_type] * len(input_ids),
                            mask_position=mask_position, word_ids=list(words),
                            label=ex.label, text=text)


# --- mlm: scoring ------------------------------------------------------------------------

class TiedWordScores(nn.Module):
    """The masked-LM head of CPT as Black-Box-Tuning runs it: a label word's score at a
    position is the hidden state there dotted with the word's row of the backbone's input
    word embeddings (tied, no bias). Holds the embedding matrix by reference, never a copy:
    nothing here is trained or loaded from elsewhere. Its ``forward`` passes the hidden
    states through (the formulation picks the [MASK] position and the words)."""

    def __init__(self, embeddings: nn.Embedding):
        super().__init__()
        self.embeddings = [embeddings]  # a list: not registered as a submodule (no second copy in state_dict)
        self.row_seed = None  # set by the population evaluator, unused: every row shares the head

    @property
    def weight(self) -> torch.Tensor:
        return self.embeddings[0].weight

    def forward(self, hidden: torch.Tensor, row_index: torch.Tensor) -> torch.Tensor:
        return hidden

    def scores(self, hidden_at_mask: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        """(B, K) scores of K words per example: ``hidden_at_mask`` (B, d), ``word_ids`` (B, K)."""
        w = self.weight[word_ids].to(hidden_at_mask.dtype)
        return torch.einsum("bd,bkd->bk", hidden_at_mask, w)


@dataclass
class ClozeBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    seed_index: torch.Tensor
    mask_positions: torch.Tensor  # (B,)
    word_ids: torch.Tensor        # (B, K), 0 where an example has fewer words
    word_mask: torch.Tensor       # (B, K) bool
    labels: torch.Tensor          # (B,); -1 if none


class MaskedLM(ScoredFormulation):
    """BBT's formulation (module docstring). Needs a model whose ``head`` is ``TiedWordScores``."""

    name = "mlm"

    def __init__(self, task):
        self.task = task

    def encoder(self, tokenizer, max_length: int, prompt_length: int, spec) -> ClozeEncoder:
        return ClozeEncoder(tokenizer, self.task, max_length, prompt_length, spec.uses_cls, spec.token_type)

    def collate(self, items: Sequence[ClozeEncoded], seed_index: Sequence[int], pad_id: int, device=None) -> ClozeBatch:
        n, width = len(items), max(len(e.input_ids) for e in items)
        k = max(len(e.word_ids) for e in items)
        ids = torch.full((n, width), pad_id, dtype=torch.long)
        types = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        words = torch.zeros((n, k), dtype=torch.long)
        wmask = torch.zeros((n, k), dtype=torch.bool)
        for i, e in enumerate(items):
            t, m = len(e.input_ids), len(e.word_ids)
            ids[i, :t], types[i, :t], mask[i, :t] = torch.tensor(e.input_ids), torch.tensor(e.token_type_ids), 1
            words[i, :m], wmask[i, :m] = torch.tensor(e.word_ids), True
        batch = ClozeBatch(ids, mask, types, torch.tensor(list(seed_index), dtype=torch.long),
                           torch.tensor([e.mask_position for e in items], dtype=torch.long), words, wmask,
                           torch.tensor([-1 if e.label is None else e.label for e in items], dtype=torch.long))
        if device is not None and device.type != "cpu":
            batch = ClozeBatch(*(t.to(device, non_blocking=True) for t in vars(batch).values()))
        return batch

    def forward(self, model, batch: ClozeBatch) -> torch.Tensor:
        """(B, K) label-word scores at each example's [MASK]; -inf for a missing option."""
        hidden = model(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.seed_index)
        at_mask = hidden[torch.arange(hidden.shape[0], device=hidden.device), batch.mask_positions]
        return model.head.scores(at_mask, batch.word_ids).float().masked_fill(~batch.word_mask, float("-inf"))

    def losses(self, scores: torch.Tensor, batch: ClozeBatch) -> torch.Tensor:
        """Cross entropy over the label words (Black-Box-Tuning ``bbt.py:373-396``, per example)."""
        keep = batch.labels >= 0
        return F.cross_entropy(scores, batch.labels.clamp(min=0), reduction="none") * keep

    def predictions(self, scores: torch.Tensor, batch: ClozeBatch) -> List[int]:
        return scores.argmax(dim=1).tolist()

    def score(self, encoder, encs, preds) -> Dict[str, float]:
        from .metrics import score

        return score(self.task, preds, [e.label for e in encs])


# --- mrc: the harness's MP2 formulation, behind the same interface ------------------------

class MRC(ScoredFormulation):
    """MP2's MRC formulation (``mrc.py``, ``train.py``), unchanged."""

    name = "mrc"

    def __init__(self, task):
        self.task = task
        self.extractive = task.kind == "extractive"

    def encoder(self, tokenizer, max_length: int, prompt_length: int, spec) -> MRCEncoder:
        return MRCEncoder(tokenizer, self.task, max_length, prompt_length, spec.uses_cls, spec.token_type)

    def collate(self, items, seed_index, pad_id: int, device=None):
        from .mrc import collate

        return collate(items, seed_index, pad_id, device)

    def forward(self, model, batch) -> torch.Tensor:
        return model(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.seed_index).float()

    def losses(self, logits, batch) -> torch.Tensor:
        from .mrc import example_losses

        return example_losses(logits, batch, self.extractive)

    def predictions(self, logits, batch) -> List:
        from .mrc import predictions

        return predictions(logits, batch, self.extractive)

    def outputs(self, model, batch):
        """What distillation compares (``distill.Outputs``): the start and the end
        distribution over the input's positions (pads excluded), and the backbone's last
        hidden states over the input's tokens."""
        from .distill import Outputs

        hidden = model.hidden_states(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.seed_index)
        logits = model.head(hidden, batch.seed_index).float()
        valid = batch.attention_mask.bool()
        over_positions = logits.transpose(1, 2).masked_fill(~valid[:, None, :], float("-inf"))  # (B, 2, T)
        return Outputs(self.losses(logits, batch), over_positions,
                       torch.ones(over_positions.shape[:2], dtype=torch.bool, device=logits.device),
                       [(hidden, valid)])

    def score(self, encoder, encs, preds) -> Dict[str, float]:
        from .mrc import score_predictions

        return score_predictions(self.task, encoder, encs, preds)


def formulation(name: str, task, cfg=None):
    """The formulation ``name`` (``FORMULATIONS``) for ``task``; seq2seq reads its settings
    (text_format, reader, prompt_position, max_target_length) from the method's ``cfg``."""
    if name == "mlm":
        return MaskedLM(task)
    if name == "mrc":
        return MRC(task)
    if name == "seq2seq":
        from .seq2seq import Seq2Seq

        return Seq2Seq(task, cfg.text_format, cfg.reader, cfg.prompt_position, cfg.max_target_length)
    raise ConfigError(f"formulation: must be one of {', '.join(map(repr, FORMULATIONS))}, not {name!r}")
