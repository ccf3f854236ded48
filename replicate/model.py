"""A backbone with per-seed prompts and per-seed MRC span heads, batched over seeds.

Many seeds share ONE backbone: every trainable tensor carries a leading seed axis, and each
example in a batch names its seed (``seed_index``), so one forward pass trains all seeds'
prompts. Nothing couples seeds: losses are summed, each seed's gradient lands only in its
own slice, and Adam's update is elementwise (see ``train.clip_per_seed`` for clipping).

Prompts live outside the backbone. A *prompt source* returns the prompts of all seeds as
one tensor ``(seeds, depth, length, d_model)``; ``depth`` is 1 for a prompt at the input
(Lester et al.) or the backbone's ``n_layers`` for a prompt at every layer (P-tuning v2 as
MP2 implements it, see ``DeepPromptInjector``). Later methods (MP2's router over modular
prompts, SPoT/PPT initialisations) are new prompt sources; the injection stays the same.
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch
from torch import nn


def transformer_layers(model, arch: str) -> nn.ModuleList:
    if arch == "t5":
        return model.encoder.block
    return model.encoder.layer


class InputPrompt(nn.Module):
    """``length`` soft tokens per seed at the input layer (PT, Lester et al. 2021)."""

    def __init__(self, init: torch.Tensor):  # init: (seeds, length, d)
        super().__init__()
        self.weight = nn.Parameter(init.clone())

    depth = 1

    def forward(self) -> torch.Tensor:
        return self.weight.unsqueeze(1)


class DeepPrompt(nn.Module):
    """A prompt at every layer (P-tuning v2 as in MP2's code: layer 0 replaces the input
    embeddings at the prompt slots; layers 1..n-1 are ADDED to the hidden states there)."""

    def __init__(self, init: torch.Tensor):  # init: (seeds, depth, length, d)
        super().__init__()
        self.weight = nn.Parameter(init.clone())

    @property
    def depth(self) -> int:
        return self.weight.shape[1]

    def forward(self) -> torch.Tensor:
        return self.weight


class SpanHead(nn.Module):
    """Per-seed Linear(d, 2): start and end logits for every token (MP2's MRC head)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):  # (seeds, d, 2), (seeds, 2)
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())

    @staticmethod
    def init_for_seed(d_model: int, seed: int):
        """nn.Linear's default initialisation, drawn from a generator owned by the seed."""
        g = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(d_model)
        w = (torch.rand(d_model, 2, generator=g) * 2 - 1) * bound
        b = (torch.rand(2, generator=g) * 2 - 1) * bound
        return w, b

    def forward(self, hidden: torch.Tensor, seed_index: torch.Tensor) -> torch.Tensor:
        w = self.weight[seed_index]  # (B, d, 2)
        return torch.einsum("btd,bdk->btk", hidden, w) + self.bias[seed_index][:, None, :]


class PromptedMRC(nn.Module):
    """Backbone + optional prompt source + span head, with a seed axis on the trainables."""

    def __init__(self, backbone: nn.Module, spec, head: SpanHead, prompt: Optional[nn.Module] = None):
        super().__init__()
        self.backbone = backbone
        self.arch = spec.arch
        self.head = head
        self.prompt = prompt
        self.prompt_offset = 1 if spec.uses_cls else 0  # prompt slots follow [CLS] (MP2's layout)
        self._hooks: List = []
        self._layer_prompts: Optional[torch.Tensor] = None  # (B, depth, L, d) during a forward
        if prompt is not None and getattr(prompt, "depth", 1) > 1:
            layers = transformer_layers(backbone, self.arch)
            if prompt.depth > len(layers):
                raise ValueError(f"deep prompt of depth {prompt.depth} on a {len(layers)}-layer backbone")
            for k in range(1, prompt.depth):
                self._hooks.append(layers[k].register_forward_pre_hook(self._make_hook(k)))

    def _make_hook(self, k: int):
        def add_prompt(module, args):
            if self._layer_prompts is None:
                return None
            hidden = args[0]
            a, b = self.prompt_offset, self.prompt_offset + self._layer_prompts.shape[2]
            hidden = torch.cat([hidden[:, :a], hidden[:, a:b] + self._layer_prompts[:, k], hidden[:, b:]], dim=1)
            return (hidden,) + tuple(args[1:])
        return add_prompt

    def forward(self, input_ids, attention_mask, token_type_ids, seed_index) -> torch.Tensor:
        embeds = self.backbone.get_input_embeddings()(input_ids)
        if self.prompt is not None:
            prompts = self.prompt()[seed_index]  # (B, depth, L, d)
            a, b = self.prompt_offset, self.prompt_offset + prompts.shape[2]
            embeds = torch.cat([embeds[:, :a], prompts[:, 0], embeds[:, b:]], dim=1)
            self._layer_prompts = prompts
        kwargs = {"inputs_embeds": embeds, "attention_mask": attention_mask}
        if self.arch != "t5":
            kwargs["token_type_ids"] = token_type_ids
        try:
            hidden = self.backbone(**kwargs).last_hidden_state
        finally:
            self._layer_prompts = None
        return self.head(hidden, seed_index)  # (B, T, 2)
