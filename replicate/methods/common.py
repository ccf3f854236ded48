"""Initialisers shared by the prompt methods.

Every draw uses a generator owned by one (seed, purpose) pair: a seed's head, its input
prompt and its deep prompts each have their own stream, derived from a hash of both, so
no two purposes (and no two seeds) share random numbers, and a seed's initial parameters
are the same whether it trains alone or in a batch.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, List, Optional, Sequence, Tuple

import torch

from ..io import seed_digest
from ..model import SpanHead

HEAD_INIT_STD = 0.02  # CPT/BART init_std: MPMP's qa_outputs starts from it (modeling_cpt.py _init_weights)


def seed_generator(seed: int, purpose: str) -> torch.Generator:
    """A generator keyed by (seed, purpose) alone."""
    digest = seed_digest(seed, purpose)
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") & (2**63 - 1))


def span_head(d_model: int, seeds: List[int]) -> SpanHead:
    return SpanHead(torch.stack([torch.randn(d_model, 2, generator=seed_generator(s, "head")) * HEAD_INIT_STD
                                 for s in seeds]))


def pretrained_span_head(weight: torch.Tensor, n_seeds: int) -> SpanHead:
    """Every seed's copy of a pre-trained head's (d, 2) weight."""
    return SpanHead(weight.float().unsqueeze(0).repeat(n_seeds, 1, 1))


def meta_span_head(d_model: int, n_seeds: int) -> SpanHead:
    return SpanHead(torch.empty(n_seeds, d_model, 2, device="meta"))


def linear_init(seed: int, purpose: str, out_features: int, in_features: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """One seed's (weight (out, in), bias (out,)) of a Linear layer in the form of
    ``torch.nn.Linear.reset_parameters``: kaiming_uniform_(a=sqrt(5)) on the weight, which is
    U(-1/sqrt(in), 1/sqrt(in)), and the bias from the same range; drawn (weight, then bias)
    from the (seed, purpose) generator instead of the global one. ComPT builds its prompt
    MLP's Linear layers with torch's default init and touches them no more
    (``compt/encoders/encoders.py:254-262``)."""
    g = seed_generator(seed, purpose)
    bound = 1 / math.sqrt(in_features)
    weight = (torch.rand(out_features, in_features, generator=g) * 2 - 1) * bound
    bias = (torch.rand(out_features, generator=g) * 2 - 1) * bound
    return weight, bias


def frequent_tokens(tokenizer, texts: Iterable[str], k: int) -> List[int]:
    """The ``k`` most frequent token ids in ``texts`` (ties broken by id), special tokens and
    [unusedN] placeholders excluded: Lester et al.'s "5,000 most common tokens" for a
    vocabulary that, unlike T5's SentencePiece, is not ordered by frequency."""
    special = set(tokenizer.all_special_ids)
    unused = {i for t, i in tokenizer.get_vocab().items() if t.startswith("[unused")}
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    ranked = sorted((i for i in counts if i not in special and i not in unused), key=lambda i: (-counts[i], i))
    return ranked[:k]


def init_prompt(backbone, cfg, seed: int, rows: int, purpose: str,
                init_tokens: Optional[Sequence[int]] = None) -> torch.Tensor:
    """``rows`` x d_model initial prompt vectors for one seed (see PromptConfig.init).
    ``init_tokens``: the token ids init="vocab" samples from (``frequent_tokens``)."""
    emb = backbone.get_input_embeddings().weight.detach()
    g = seed_generator(seed, purpose)
    if cfg.init == "uniform":
        return (torch.rand(rows, emb.shape[1], generator=g) * 2 - 1) * cfg.init_range
    if cfg.init == "ordinal":  # ComPT: row i from input-embedding row i (PromptConfig.init)
        if rows > emb.shape[0]:
            raise ValueError(f"init='ordinal' needs {rows} embedding rows; the vocabulary has {emb.shape[0]}")
        return emb[:rows].float().clone()
    if not init_tokens:
        raise ValueError("init='vocab' needs the candidate tokens (frequent_tokens of the training pool)")
    candidates = torch.tensor(list(init_tokens))
    picks = candidates[torch.randint(len(candidates), (rows,), generator=g)]
    return emb[picks].float().clone()
