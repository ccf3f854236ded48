"""Prompt tuning (PT; Lester et al. 2021): a soft prompt at the input of a frozen backbone.

In MP2's MRC formulation (``formulation: mrc``) the trainables are the prompt
(prompt_length x d), added to the embedding output at the prompt slots (see model.py), and
the MRC span head's weight (d x 2). MP2 Table 3's "50K" for PT on CPT-large is the prompt
alone (50 x 1024 = 51,200); the head is reported separately by ``params``.
In the text-to-text formulation (``formulation: seq2seq``, T5; MPT's and ComPT's PT rows)
the prompt replaces its slots' embeddings in the encoder input and is the only trainable
tensor: 100 x 768 = 76,800 on T5-base (``params --paper mpt --method pt``).

With ``prompt_encoder: mlp`` (seq2seq only; ComPT's PT, ``configs/crosspt/PT.json:67``) each
seed's L rows pass through its own Linear(d, h) -> GELU -> Linear(h, d) (``model.MLPPrompt``)
and every tensor of it trains: on T5-base with ComPT's 50 tokens and h = d = 768 that is
50 x 768 = 38,400 rows plus 2 x (768 x 768 + 768) = 1,181,184 MLP weights, 1,219,584 in all
(``params --paper compt --method pt``). ComPT's paper prints no parameter count for PT (its
Tables 1-2 have no such column); its code unfreezes every tensor of the encoder, embedding
and MLP alike (``compt/run_seq2seq.py:1608-1626``) and gives all of them to the optimiser
(``:1842-1863``), but logs only a count of tensors (``:1627-1630``) and a numel count taken
before the encoders are unfrozen (``utils/utils.py:247-250, 326-329``, via ``:1603``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch

from ..model import InputPrompt, MLPPrompt
from .base import PromptConfig, PromptMethod, register_method
from .common import init_prompt, linear_init, meta_span_head


@dataclass
class PromptTuningConfig(PromptConfig):
    """PT: the shared fields (see TrainConfig, PromptConfig) with PT's embedded defaults."""

    epochs: int = 40
    lr: float = 3e-2
    head_lr: float = 3e-3


class PromptTuning(PromptMethod):
    name = "pt"
    config_cls = PromptTuningConfig
    formulations = ("mrc", "seq2seq")
    prompt_encoders = ("none", "mlp")
    paper_label = "Prompt Tuning"

    def make_prompt(self, backbone, spec, cfg, seeds: List[int], init_tokens=None):
        rows = torch.stack([init_prompt(backbone, cfg, s, cfg.prompt_length, "prompt", init_tokens) for s in seeds])
        if getattr(cfg, "prompt_encoder", "none") == "none":
            return InputPrompt(rows)
        d = rows.shape[-1]
        h = cfg.prompt_encoder_hidden or d
        first = [linear_init(s, "prompt-encoder-1", h, d) for s in seeds]
        second = [linear_init(s, "prompt-encoder-2", d, h) for s in seeds]
        return MLPPrompt(rows, torch.stack([w for w, _ in first]), torch.stack([b for _, b in first]),
                         torch.stack([w for w, _ in second]), torch.stack([b for _, b in second]))

    def prompt_modules(self, spec, cfg, n_seeds=1):
        """The prompt (its encoder's weights included, when it has one) and, on MRC, the head."""
        d, length = spec.d_model, cfg.prompt_length
        if getattr(cfg, "prompt_encoder", "none") == "none":
            prompt = InputPrompt(torch.empty(n_seeds, length, d, device="meta"))
        else:
            h = cfg.prompt_encoder_hidden or d
            meta = lambda *shape: torch.empty(n_seeds, *shape, device="meta")  # noqa: E731
            prompt = MLPPrompt(meta(length, d), meta(h, d), meta(h), meta(d, h), meta(d))
        modules = {"prompt": prompt}
        if not self.seq2seq(cfg):
            modules["head"] = meta_span_head(spec.d_model, n_seeds)
        return modules


register_method(PromptTuning())
