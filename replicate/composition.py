"""ComPT's prompt (Pouramini & Faili, §2.2-2.3): per task, shared source prompts combined by
a router's weights and composed with the task's private prompt.

    SSUM  P_t = P_u + sum_s w_ts P_s          (eq 5; m tokens)
    MSUM  P_t = P_u * sum_s w_ts P_s          (element-wise; m tokens)
    MCAT  P_t = P_u * cat_s (w_ts P_s)        (M x m tokens; P_u has M x m rows)

The weights are a softmax over the kept sources of the router's scores: in training a
relaxed-Bernoulli sample of the logits at temperature tau (eq 7), at inference the logits
themselves (§2.3.1); "constant" weights are 1 / (kept sources). A masked source drops out
before the softmax, so the others renormalise; a masked private prompt is zero (so an MSUM
or MCAT prompt without it is zero), as the authors' masking evaluation does
(``compt/third_party/models/t5/modeling_t5.py:2070-2076, 1896-1907``); a masked MCAT
source's slots are also taken out of the attention mask (``:2128-2165``).

A row is one (seed, task) pair, row = seed * n_tasks + task; every tensor has the seed axis.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .model import with_seed_axis

COMPOSITIONS = ("ssum", "msum", "mcat")
WEIGHTS = ("learned", "constant")


def router_weights(scores: torch.Tensor, keep: torch.Tensor, top_k: Optional[int] = None) -> torch.Tensor:
    """(R, P) weights over the pool: softmax of ``scores`` over the members ``keep`` holds
    (the others get 0), after keeping only the ``top_k`` highest scores among them (the
    code's ``num_target_prompts``); a row with nothing kept gets zeros."""
    s = scores.masked_fill(~keep, float("-inf"))
    if top_k is not None and top_k < s.shape[-1]:
        kth = s.topk(top_k, dim=-1).values[:, -1:]
        s = s.masked_fill(s < kth, float("-inf"))
    w = torch.softmax(s, dim=-1)
    return torch.nan_to_num(w, nan=0.0)


def compose(sources: torch.Tensor, private: torch.Tensor, weights: torch.Tensor, composition: str,
            private_on: torch.Tensor, private_in_pool: bool = False) -> torch.Tensor:
    """(R, L, d) target prompts from ``sources`` (R, M, m, d), ``private`` (R, m or M m, d),
    ``weights`` (R, M, or M + 1 with the private prompt in the pool) and ``private_on``
    (R,): 1 keeps a row's private prompt, 0 masks it (a zero prompt in its place)."""
    n = sources.shape[1]
    w = weights[:, :n]
    priv = private * private_on[:, None, None]
    if private_in_pool:  # the code's private prompt: a member of the router's pool, scaled by its weight
        priv = priv * weights[:, n, None, None]
    if composition == "mcat":
        mixed = (w[:, :, None, None] * sources).flatten(1, 2)  # (R, M m, d), source s at slots s m .. (s+1) m - 1
    else:
        mixed = torch.einsum("rm,rmld->rld", w, sources)
    if composition == "ssum":
        return priv + mixed
    if composition in ("msum", "mcat"):
        return priv * mixed
    raise ValueError(f"composition must be one of {COMPOSITIONS}, not {composition!r}")


def relaxed_bernoulli(logits: torch.Tensor, uniform: torch.Tensor, temperature: float) -> torch.Tensor:
    """A reparameterised relaxed-Bernoulli sample (eq 7; torch's ``RelaxedBernoulli(T,
    logits).rsample()``, which the code draws): sigmoid((logit + log u - log(1 - u)) / T)."""
    u = uniform.clamp(1e-6, 1 - 1e-6)
    return torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)


def temperature_at(step: int, total_steps: int, start: float, end: float, rate: Optional[float] = None) -> float:
    """The router's temperature at optimizer step ``step`` (0-based) of ``total_steps``:
    linear from ``start`` to ``end`` over the whole run (§3.2: "linearly reduced ... to 1e-3
    during entire training"), or, with ``rate``, start - rate x step floored at ``end`` (the
    released configs' ``anneal_rate`` 0.02 reaches the floor at step 250:
    ``modeling_t5.py:374-385``, ``configs/crosspt/SL_wavg.json:108-113``)."""
    if rate is not None:
        return max(start - rate * step, end)
    if total_steps <= 1:
        return end
    return start + (end - start) * min(step, total_steps - 1) / (total_steps - 1)


class PromptEncoders(nn.Module):
    """N prompts per seed, each through its own prompt encoder (§2.1 eq 3, §3.2): embedding
    rows E (L, d) -> Linear(d, h) -> GELU -> Linear(h, d), per row; with no MLP weights
    (``encoder: none``) the rows are the prompt. ``forward`` is (seeds, N, L, d)."""

    def __init__(self, embedding: torch.Tensor, mlp: Optional[Sequence[torch.Tensor]] = None):
        super().__init__()  # embedding (S, N, L, d); mlp: w1 (S, N, h, d), b1 (S, N, h), w2 (S, N, d, h), b2 (S, N, d)
        self.embedding = with_seed_axis(nn.Parameter(embedding.clone()))
        self.has_mlp = mlp is not None
        if mlp is not None:
            self.w1, self.b1, self.w2, self.b2 = (with_seed_axis(nn.Parameter(t.clone())) for t in mlp)

    def forward(self) -> torch.Tensor:
        if not self.has_mlp:
            return self.embedding
        hidden = F.gelu(torch.einsum("snld,snhd->snlh", self.embedding, self.w1) + self.b1[:, :, None])
        return torch.einsum("snlh,sndh->snld", hidden, self.w2) + self.b2[:, :, None]


class ComposedPrompt(nn.Module):
    """The trained form: source prompts shared by a seed's tasks, a private prompt per (seed,
    task), a router (seeds, tasks, pool) of logits. ``forward`` is (seeds x tasks, 1, L, d).

    While training (grad enabled and ``noise`` set by ``draw``) the router's scores are a
    relaxed-Bernoulli sample at ``temperature``, one draw per row and step from the row's
    seed's generator (a seed's draws do not depend on the other seeds of the job); else the
    logits (inference)."""

    depth = 1

    def __init__(self, sources: PromptEncoders, privates: PromptEncoders, router: torch.Tensor, composition: str,
                 weights: str, top_k: Optional[int], private_in_pool: bool, generators: List[torch.Generator]):
        super().__init__()
        self.sources, self.privates = sources, privates
        self.router = with_seed_axis(nn.Parameter(router.clone()))  # (S, T, pool)
        self.composition, self.weights_mode, self.top_k = composition, weights, top_k
        self.private_in_pool = private_in_pool
        self.generators = generators
        self.temperature = 1.0
        self.noise: Optional[torch.Tensor] = None

    def draw(self, temperature: float) -> None:
        """This step's temperature and relaxed-Bernoulli noise (called once per step)."""
        self.temperature = temperature
        self.noise = torch.stack([torch.rand(self.router.shape[1:], generator=g) for g in self.generators])

    def scores(self) -> torch.Tensor:
        """(S, T, pool) the scores the softmax normalises."""
        if self.weights_mode == "constant":
            return torch.zeros_like(self.router)
        if torch.is_grad_enabled() and self.router.requires_grad and self.noise is not None:
            return relaxed_bernoulli(self.router, self.noise.to(self.router.device), self.temperature)
        return self.router

    def parts(self):
        """(sources (R, M, m, d), privates (R, m', d), scores (R, pool)) of every row."""
        s, t = self.router.shape[:2]
        src = self.sources()  # (S, M, m, d)
        sources = src[:, None].expand(-1, t, -1, -1, -1).flatten(0, 1)
        return sources, self.privates().flatten(0, 1), self.scores().flatten(0, 1)

    def forward(self) -> torch.Tensor:
        sources, private, scores = self.parts()
        keep = torch.ones_like(scores, dtype=torch.bool)
        w = router_weights(scores, keep, self.top_k)
        on = torch.ones(scores.shape[0], device=scores.device)
        return compose(sources, private, w, self.composition, on, self.private_in_pool).unsqueeze(1)


class FrozenComposition(nn.Module):
    """Rows given by their states (``sources``, ``private``, ``router`` logits: what
    ``ComposedPrompt.parts`` holds for one row) and masks: ``keep`` (R, pool) the pool
    members kept, ``private_on`` (R,). Evaluation only: inference weights, no gradients.
    ``slot_keep`` (R, L): the prompt slots an MCAT mask leaves in the attention mask."""

    depth = 1

    def __init__(self, sources: torch.Tensor, private: torch.Tensor, router: torch.Tensor, keep: torch.Tensor,
                 private_on: torch.Tensor, composition: str, weights: str, top_k: Optional[int],
                 private_in_pool: bool):
        super().__init__()
        for name, t in (("sources", sources), ("private", private), ("router", router), ("keep", keep),
                        ("private_on", private_on)):
            self.register_buffer(name, t)
        self.composition, self.weights_mode, self.top_k = composition, weights, top_k
        self.private_in_pool = private_in_pool
        m, n = sources.shape[2], sources.shape[1]
        if composition == "mcat":
            self.register_buffer("slot_keep", keep[:, :n].repeat_interleave(m, dim=1))
        else:
            self.slot_keep = None

    def forward(self) -> torch.Tensor:
        scores = torch.zeros_like(self.router) if self.weights_mode == "constant" else self.router
        w = router_weights(scores, self.keep, self.top_k)
        return compose(self.sources, self.private, w, self.composition, self.private_on,
                       self.private_in_pool).unsqueeze(1)
