"""A backbone with per-seed prompts and per-seed MRC span heads, batched over seeds.

Many seeds share ONE backbone: every trainable tensor carries a leading seed axis, and each
example in a batch names its seed (``seed_index``), so one forward pass trains all seeds'
prompts. Nothing couples seeds: losses are summed, each seed's gradient lands only in its
own slice, and Adam's update is elementwise (see ``train.clip_per_seed`` for clipping).

Prompts live outside the backbone. A *prompt source* returns the prompts of all seeds as
one tensor ``(seeds, depth, length, d_model)``; ``depth`` is 1 for a prompt at the input
(Lester et al.) or the backbone's ``n_layers`` for a prompt at every layer (P-tuning v2 as
MP2 implements it). Either way the prompt is added to the hidden states entering each
prompted layer at the prompt slots, never replacing them (MPMP's formulation). Later methods (MP2's router over modular
prompts, SPoT/PPT initialisations) are new prompt sources; the injection stays the same.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn


def transformer_layers(model, arch: str) -> nn.ModuleList:
    if arch == "t5":
        return model.encoder.block
    return model.encoder.layer


class InputPrompt(nn.Module):
    """``length`` soft tokens per seed at the input layer (PT, Lester et al. 2021), added to
    the embedding output at the prompt slots (MPMP ``Shallow/modeling_bert.py:588-604``)."""

    def __init__(self, init: torch.Tensor):  # init: (seeds, length, d)
        super().__init__()
        self.weight = nn.Parameter(init.clone())

    depth = 1

    def forward(self) -> torch.Tensor:
        return self.weight.unsqueeze(1)


class DeepPrompt(nn.Module):
    """A prompt at every layer (P-tuning v2 as in MP2's code): layer k's prompt is ADDED to
    the hidden states entering layer k at the prompt slots, for every k from 0 (the embedding
    output, after its LayerNorm) to depth-1 (MPMP ``Deep/modeling_bert.py:597-607``)."""

    def __init__(self, init: torch.Tensor):  # init: (seeds, depth, length, d)
        super().__init__()
        self.weight = nn.Parameter(init.clone())

    @property
    def depth(self) -> int:
        return self.weight.shape[1]

    def forward(self) -> torch.Tensor:
        return self.weight


class SpanHead(nn.Module):
    """Per-seed Linear(d, 2): start and end logits for every token (MP2's MRC head).

    The bias is zero and not trained, as in MPMP (its optimiser holds ``qa_outputs.weight``
    only, ``Deep/downstream_run.py:102-110``; a bias shared by all positions changes neither
    the loss over positions nor which position wins)."""

    def __init__(self, weight: torch.Tensor):  # (seeds, d, 2)
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, hidden: torch.Tensor, seed_index: torch.Tensor) -> torch.Tensor:
        w = self.weight[seed_index]  # (B, d, 2)
        return torch.einsum("btd,bdk->btk", hidden, w)


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
        if prompt is not None:
            layers = transformer_layers(backbone, self.arch)
            if prompt.depth > len(layers):
                raise ValueError(f"deep prompt of depth {prompt.depth} on a {len(layers)}-layer backbone")
            for k in range(prompt.depth):
                self._hooks.append(layers[k].register_forward_pre_hook(self._make_hook(k)))

    def _make_hook(self, k: int):
        def add_prompt(module, args):
            if self._layer_prompts is None:
                return None
            hidden = args[0]
            a, b = self.prompt_offset, self.prompt_offset + self._layer_prompts.shape[2]
            added = hidden[:, a:b] + self._layer_prompts[:, k].to(hidden.dtype)
            hidden = torch.cat([hidden[:, :a], added, hidden[:, b:]], dim=1)
            return (hidden,) + tuple(args[1:])
        return add_prompt

    def forward(self, input_ids, attention_mask, token_type_ids, seed_index) -> torch.Tensor:
        if self.prompt is not None:
            self._layer_prompts = self.prompt()[seed_index]  # (B, depth, L, d)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.arch != "t5":
            kwargs["token_type_ids"] = token_type_ids
        try:
            hidden = self.backbone(**kwargs).last_hidden_state
        finally:
            self._layer_prompts = None
        return self.head(hidden, seed_index)  # (B, T, 2)
