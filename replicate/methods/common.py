"""Initialisers shared by the prompt methods; every draw uses a generator owned by one seed,
so a seed's initial prompt and head are the same whether it trains alone or in a batch."""

from __future__ import annotations

from typing import List

import torch

from ..model import SpanHead


def span_head(d_model: int, seeds: List[int]) -> SpanHead:
    inits = [SpanHead.init_for_seed(d_model, seed) for seed in seeds]
    return SpanHead(torch.stack([w for w, _ in inits]), torch.stack([b for _, b in inits]))


def meta_span_head(d_model: int, n_seeds: int) -> SpanHead:
    return SpanHead(torch.empty(n_seeds, d_model, 2, device="meta"), torch.empty(n_seeds, 2, device="meta"))


def init_prompt(backbone, tokenizer, cfg, seed: int, rows: int) -> torch.Tensor:
    """``rows`` x d_model initial prompt vectors for one seed (see PromptConfig.init)."""
    emb = backbone.get_input_embeddings().weight.detach()
    g = torch.Generator().manual_seed(seed)
    if cfg.init == "uniform":
        return (torch.rand(rows, emb.shape[1], generator=g) * 2 - 1) * cfg.init_range
    special = set(tokenizer.all_special_ids)
    candidates = torch.tensor([i for i in range(emb.shape[0]) if i not in special])
    picks = candidates[torch.randint(len(candidates), (rows,), generator=g)]
    return emb[picks].clone()
