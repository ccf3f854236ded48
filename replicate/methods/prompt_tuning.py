"""Prompt tuning (PT; Lester et al. 2021): a soft prompt at the input of a frozen backbone.

In MP2's MRC formulation (``formulation: mrc``) the trainables are the prompt
(prompt_length x d), added to the embedding output at the prompt slots (see model.py), and
the MRC span head's weight (d x 2). MP2 Table 3's "50K" for PT on CPT-large is the prompt
alone (50 x 1024 = 51,200); the head is reported separately by ``params``.
In the text-to-text formulation (``formulation: seq2seq``, T5; MPT's and ComPT's PT rows)
the prompt replaces its slots' embeddings in the encoder input and is the only trainable
tensor: 100 x 768 = 76,800 on T5-base (``params --paper mpt --method pt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch

from ..model import InputPrompt
from .base import PromptConfig, PromptMethod, register_method
from .common import init_prompt, meta_span_head


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
    paper_label = "Prompt Tuning"

    def make_prompt(self, backbone, spec, cfg, seeds: List[int], init_tokens=None) -> InputPrompt:
        return InputPrompt(torch.stack([init_prompt(backbone, cfg, s, cfg.prompt_length, "prompt", init_tokens)
                                        for s in seeds]))

    def prompt_modules(self, spec, cfg, n_seeds=1):
        modules = {"prompt": InputPrompt(torch.empty(n_seeds, cfg.prompt_length, spec.d_model, device="meta"))}
        if not self.seq2seq(cfg):
            modules["head"] = meta_span_head(spec.d_model, n_seeds)
        return modules


register_method(PromptTuning())
