"""P-tuning v2 (Liu et al. 2021b) as MP2 reimplements it: a prompt at every layer.

MP2's code adds the deep prompt to the hidden states at the prompt positions entering every
layer (layer 0: the embedding output, after its LayerNorm) rather than using key/value
prefixes; one (prompt_length x d) tensor per layer, so CPT-large (24 layers, length 50, d
1024) has 24 x 50 x 1024 = 1,228,800 = MP2 Table 3's "1.2M" (key/value prefixes would be
twice that). The harness follows MP2's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch

from ..model import DeepPrompt
from .base import PromptConfig, PromptMethod, register_method
from .common import init_prompt, meta_span_head, seed_generator


@dataclass
class PTuningV2Config(PromptConfig):
    """P-tuning v2: the shared fields plus

    deep_init_std: std of the normal init of the prompts at layers 1..n-1 (layer 0 is
        initialised like PT, see PromptConfig.init).
    """

    epochs: int = 30
    lr: float = 1e-2
    head_lr: float = 3e-3
    deep_init_std: float = 0.02


class PTuningV2(PromptMethod):
    name = "ptv2"
    config_cls = PTuningV2Config
    paper_label = "P-Tuning v2"

    def make_prompt(self, backbone, spec, cfg, seeds: List[int], init_tokens=None) -> DeepPrompt:
        per_seed = []
        for s in seeds:
            first = init_prompt(backbone, cfg, s, cfg.prompt_length, "prompt", init_tokens)
            g = seed_generator(s, "deep-prompt")
            rest = torch.randn(spec.n_layers - 1, cfg.prompt_length, spec.d_model, generator=g) * cfg.deep_init_std
            per_seed.append(torch.cat([first.unsqueeze(0), rest]))
        return DeepPrompt(torch.stack(per_seed))

    def prompt_modules(self, spec, cfg, n_seeds=1):
        shape = (n_seeds, spec.n_layers, cfg.prompt_length, spec.d_model)
        return {"prompt": DeepPrompt(torch.empty(*shape, device="meta")), "head": meta_span_head(spec.d_model, n_seeds)}


register_method(PTuningV2())
