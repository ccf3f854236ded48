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

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def with_seed_axis(param: nn.Parameter) -> nn.Parameter:
    """Mark ``param`` as holding one slice per seed along its first axis. The trainer slices,
    clips and checkpoints such tensors per seed; every other trainable tensor (a backbone
    weight, a prompt bank shared by tasks) is treated as one whole."""
    param.seed_axis = True
    return param


def has_seed_axis(param: torch.Tensor) -> bool:
    return bool(getattr(param, "seed_axis", False))


def transformer_layers(model, arch: str) -> nn.ModuleList:
    if arch == "t5":
        return model.encoder.block
    return model.encoder.layer


class InputPrompt(nn.Module):
    """``length`` soft tokens per seed at the input layer (PT, Lester et al. 2021), added to
    the embedding output at the prompt slots (MPMP ``Shallow/modeling_bert.py:588-604``)."""

    def __init__(self, init: torch.Tensor):  # init: (seeds, length, d)
        super().__init__()
        self.weight = with_seed_axis(nn.Parameter(init.clone()))

    depth = 1

    def forward(self) -> torch.Tensor:
        return self.weight.unsqueeze(1)


class MLPPrompt(nn.Module):
    """An input prompt run through a prompt encoder, per seed: ComPT's PT (Pouramini & Faili,
    §2 eq 3 and §3.2; code ``compt/encoders/encoders.py:230-268``). Each seed owns L embedding
    rows E (L, d) and a two-layer MLP, Linear(d, h) -> GELU -> Linear(h, d) with biases, applied
    to every row on its own; the prompt that reaches the encoder is MLP(E), not E (ComPT's
    ``forward_step`` returns ``F.embedding(index, mlp(embedding(arange(L))))``, and
    ``T5Stack.forward`` writes it over the placeholder tokens' embeddings,
    ``third_party/models/t5/modeling_t5.py:2016-2024, 2046-2051``).

    All five tensors carry the seed axis (``with_seed_axis``), so the trainer slices, clips and
    checkpoints a seed's embedding and MLP together, and seeds batch as they train alone.
    GELU is the exact (erf) form, ``torch.nn.GELU()``'s default, which ComPT uses (l. 242)."""

    depth = 1

    def __init__(self, embedding: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                 b2: torch.Tensor):  # (seeds, L, d), (seeds, h, d), (seeds, h), (seeds, d, h), (seeds, d)
        super().__init__()
        self.embedding = with_seed_axis(nn.Parameter(embedding.clone()))
        self.w1 = with_seed_axis(nn.Parameter(w1.clone()))  # torch.nn.Linear's (out, in) layout
        self.b1 = with_seed_axis(nn.Parameter(b1.clone()))
        self.w2 = with_seed_axis(nn.Parameter(w2.clone()))
        self.b2 = with_seed_axis(nn.Parameter(b2.clone()))

    def forward(self) -> torch.Tensor:
        hidden = F.gelu(torch.baddbmm(self.b1.unsqueeze(1), self.embedding, self.w1.transpose(1, 2)))
        return torch.baddbmm(self.b2.unsqueeze(1), hidden, self.w2.transpose(1, 2)).unsqueeze(1)


class DecomposedPrompt(nn.Module):
    """MPT's prompt (Wang et al. 2023, §3.1 eq 2): row k's prompt is P* ∘ (u_k v_kᵀ), the
    Hadamard product of a shared prompt P* (L, d) with the rank-one matrix of a task's (or
    seed's) vectors u_k (L) and v_k (d). In source training the rows are the source tasks
    and P* has one row that every task shares; in target adaptation each seed owns its own
    P*, u and v (all three carry the seed axis). ``forward`` is (rows, 1, L, d), an input
    prompt as ``InputPrompt``'s."""

    depth = 1

    def __init__(self, shared: torch.Tensor, u: torch.Tensor, v: torch.Tensor, seed_axis: bool):
        super().__init__()  # shared: (1 or rows, L, d); u: (rows, L); v: (rows, d)
        self.shared = nn.Parameter(shared.clone())
        self.u = nn.Parameter(u.clone())
        self.v = nn.Parameter(v.clone())
        if seed_axis:
            for p in (self.shared, self.u, self.v):
                with_seed_axis(p)

    def forward(self) -> torch.Tensor:
        return (self.shared * (self.u[:, :, None] * self.v[:, None, :])).unsqueeze(1)


class DeepPrompt(nn.Module):
    """A prompt at every layer (P-tuning v2 as in MP2's code): layer k's prompt is ADDED to
    the hidden states entering layer k at the prompt slots, for every k from 0 (the embedding
    output, after its LayerNorm) to depth-1 (MPMP ``Deep/modeling_bert.py:597-607``)."""

    def __init__(self, init: torch.Tensor):  # init: (seeds, depth, length, d)
        super().__init__()
        self.weight = with_seed_axis(nn.Parameter(init.clone()))

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
        self.weight = with_seed_axis(nn.Parameter(weight.clone()))

    def forward(self, hidden: torch.Tensor, seed_index: torch.Tensor) -> torch.Tensor:
        w = self.weight[seed_index]  # (B, d, 2)
        return torch.einsum("btd,bdk->btk", hidden, w)


class RowSpanHead(nn.Module):
    """A span head per (seed, task) row of a multi-task model (``multitask.py``): weight
    (seeds, tasks, d, 2), seed axis first, so each seed's heads clip and stop with its other
    tensors; row r = seed x tasks + task."""

    def __init__(self, weight: torch.Tensor):  # (seeds, tasks, d, 2)
        super().__init__()
        self.weight = with_seed_axis(nn.Parameter(weight.clone()))

    def forward(self, hidden: torch.Tensor, row_index: torch.Tensor) -> torch.Tensor:
        return torch.einsum("btd,bdk->btk", hidden, self.weight.flatten(0, 1)[row_index])


class SharedSpanHead(nn.Module):
    """One Linear(d, 2) weight for every row (multi-task pre-training: one MRC head for all
    upstream tasks, MP2 Appendix A.1)."""

    def __init__(self, weight: torch.Tensor):  # (d, 2)
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, hidden: torch.Tensor, row_index: torch.Tensor) -> torch.Tensor:
        return hidden @ self.weight


ROUTER_COMBINES = ("paper", "mpmp")


def inference_weights(logits: torch.Tensor, combine: str) -> torch.Tensor:
    """A router's weights over its K modular prompts when it is not sampled (inference, a
    frozen router, black-box stage I and II), ``(..., K)`` -> ``(..., K)``:
    combine="paper": MP2 eq 1 with the binary router of §3.2, w_k = 1 if the logit > 0, / K;
    combine="mpmp": sigmoid(w) normalised by its sum (MPMP ``Deep/modeling_bert.py:591-592``,
        ``Shallow/bbt.py:314-315``, ``Deep/deepbbt.py:308-309``).
    Pre-training and every downstream method of one checkpoint must use the same form
    (``methods.base.require_pretraining`` checks ``combine`` at config time)."""
    if combine == "paper":
        return (logits > 0).to(logits.dtype) / logits.shape[-1]
    if combine == "mpmp":
        w = torch.sigmoid(logits)
        return w / (w.sum(dim=-1, keepdim=True) + 1e-12)
    raise ValueError(f"combine must be one of {ROUTER_COMBINES}, not {combine!r}")


class RoutedPrompt(nn.Module):
    """MP2's deep modular prompt (Sun et al. 2022, §3.2): per row (a seed downstream, a task
    in pre-training) and per layer, a router w over K modular prompts, combined into that
    layer's prompt.

    While the router trains (gradients on and the router not frozen) and ``sample`` is set,
    the weights are a relaxed-Bernoulli sample (eqs 2-5, location alpha = e^w); otherwise
    the router's inference form:
    combine="paper": eq 1, p = sum_k w_k p_k / K, with w binarised (w_k = 1 if the
        router's logit > 0) at inference and while the router is frozen (stage II).
    combine="mpmp": the authors' code (``Deep/modeling_bert.py:587-592``): sigmoid(w) at
        inference, and sample or sigmoid divided by its sum (not by K). MPMP's downstream
        trainer calls ``model.eval()`` before every step (``Deep/trainer.py:331-334``), so
        downstream it never samples: ``sample=False`` reproduces it.
    Whether the router trains is read from autograd (``torch.is_grad_enabled()`` and the
    router's ``requires_grad``), not from the module's train/eval mode, which says whether
    the backbone's dropout is on (MPMP ties the two; MP2's stage I samples either way).

    The relaxed-Bernoulli noise of row r comes from ``generators[r]`` (owned by that row's
    seed or task), so a seed's draws do not depend on which other seeds share the batch.
    ``bank()`` returns the modular prompts, (rows or 1, depth, K, length, d).
    """

    def __init__(self, router: torch.Tensor, bank: nn.Module, combine: str, temperature: float, sample: bool,
                 generators: Sequence[torch.Generator], router_has_seed_axis: bool = True):
        super().__init__()
        if combine not in ROUTER_COMBINES:
            raise ValueError(f"combine must be one of {ROUTER_COMBINES}, not {combine!r}")
        self.router = nn.Parameter(router.clone())  # (rows, depth, K) logits
        if router_has_seed_axis:
            with_seed_axis(self.router)
        self.bank = bank
        self.combine, self.temperature, self.sample = combine, temperature, sample
        self.generators = list(generators)

    @property
    def depth(self) -> int:
        return self.router.shape[1]

    def weights(self) -> torch.Tensor:
        """(rows, depth, K) weights of the modular prompts, normalised as ``combine`` says."""
        logits = self.router
        k = logits.shape[-1]
        if self.sample and torch.is_grad_enabled() and logits.requires_grad:
            u = torch.stack([torch.rand(logits.shape[1:], generator=g) for g in self.generators])
            u = u.clamp(1e-6, 1 - 1e-6).to(logits.device)
            w = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / self.temperature)  # eqs 2-5
        else:
            return inference_weights(logits, self.combine)
        if self.combine == "paper":
            return w / k
        return w / (w.sum(dim=-1, keepdim=True) + 1e-12)

    def forward(self) -> torch.Tensor:
        return torch.einsum("rnk,rnkld->rnld", self.weights(), self.bank().expand(self.router.shape[0], -1, -1, -1, -1))


class PromptBank(nn.Module):
    """K modular prompts per layer for each seed, tuned directly (MP2 stage II, gradient
    descent; MPMP materialises z A into one tensor for it, ``Deep/downstream_run.py:96``)."""

    def __init__(self, init: torch.Tensor):  # (seeds, depth, K, length, d)
        super().__init__()
        self.weight = with_seed_axis(nn.Parameter(init.clone()))

    def forward(self) -> torch.Tensor:
        return self.weight


class IntrinsicPromptBank(nn.Module):
    """K modular prompts per layer factored as p_k = A z_k (MP2 §3.2, intrinsic
    reparameterisation): z (depth, K, intrinsic_dim) and A (depth, intrinsic_dim, length * d),
    one A per layer shared by its K prompts. Shared by every task (no row axis)."""

    def __init__(self, z: torch.Tensor, A: torch.Tensor, length: int, d_model: int):
        super().__init__()
        self.z = nn.Parameter(z.clone())
        self.A = nn.Parameter(A.clone())
        self.length, self.d_model = length, d_model

    def prompts(self) -> torch.Tensor:
        depth, k, _ = self.z.shape
        return torch.bmm(self.z, self.A).view(depth, k, self.length, self.d_model)

    def forward(self) -> torch.Tensor:
        return self.prompts().unsqueeze(0)


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

    def hidden_states(self, input_ids, attention_mask, token_type_ids, seed_index) -> torch.Tensor:
        """The backbone's last hidden states (B, T, d), the prompts added at their slots."""
        if self.prompt is not None:
            self._layer_prompts = self.prompt()[seed_index]  # (B, depth, L, d)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.arch != "t5":
            kwargs["token_type_ids"] = token_type_ids
        try:
            return self.backbone(**kwargs).last_hidden_state
        finally:
            self._layer_prompts = None

    def forward(self, input_ids, attention_mask, token_type_ids, seed_index) -> torch.Tensor:
        hidden = self.hidden_states(input_ids, attention_mask, token_type_ids, seed_index)
        return self.head(hidden, seed_index)  # (B, T, 2)


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """(B, S) log-probability of each target token under decoder ``logits`` (B, S, vocab);
    0 where ``target_mask`` is off."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(2, targets[:, :, None])[:, :, 0] * target_mask


class PromptedSeq2Seq(nn.Module):
    """A T5 encoder-decoder with an optional per-seed prompt in the encoder input (the
    text-to-text papers' form: Lester et al., ATTEMPT, MPT, ComPT prompt the encoder only).

    The prompt REPLACES the embeddings of its L slots (``seq2seq.TextEncoder`` lays them
    out: a prefix, or after the input), where ``PromptedMRC`` adds to them (MPMP's form):
    T5 prompt tuning concatenates the prompt to the input embeddings, which is the same as
    replacing placeholder embeddings. ``prompt()`` is (seeds, 1, L, d); each example takes
    its seed's row (``seed_index``), so every seed's prompt trains over one frozen backbone.
    Nothing is prompted in the decoder (peft's seq2seq default prompts it too)."""

    def __init__(self, backbone: nn.Module, prompt: Optional[nn.Module] = None):
        super().__init__()
        self.backbone = backbone
        self.prompt = prompt
        if prompt is not None and prompt.depth != 1:
            raise ValueError("the seq2seq model takes an input prompt (depth 1), not a deep one")
        config = backbone.config
        self.start_id = config.decoder_start_token_id if config.decoder_start_token_id is not None else 0
        self.eos_id = config.eos_token_id
        self.pad_id = config.pad_token_id if config.pad_token_id is not None else 0
        self._hooks: List = []

    def encode(self, input_ids, attention_mask, seed_index, prompt_start) -> torch.Tensor:
        """The encoder's last hidden states (B, T, d), the prompt in its slots."""
        embeds = self.backbone.get_input_embeddings()(input_ids)
        if self.prompt is not None:
            prompts = self.prompt()[seed_index][:, 0].to(embeds.dtype)  # (B, L, d)
            length = prompts.shape[1]
            positions = prompt_start[:, None] + torch.arange(length, device=embeds.device)  # (B, L)
            has = (prompt_start >= 0)[:, None, None]
            index = positions.clamp(min=0)[:, :, None].expand(-1, -1, embeds.shape[-1])
            embeds = embeds.scatter(1, index, torch.where(has, prompts, embeds.gather(1, index)))
        return self.backbone.encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state

    def decode(self, hidden, attention_mask, targets, target_mask, with_hidden: bool = False):
        """Teacher-forced decoder logits (B, S, vocab) of the targets; with ``with_hidden``
        also the decoder's last hidden states (B, S, d), what MPT's hidden-state distillation
        compares on the decoder side."""
        from transformers.modeling_outputs import BaseModelOutput

        start = torch.full_like(targets[:, :1], self.start_id)
        decoder_in = torch.cat([start, targets[:, :-1].masked_fill(~target_mask[:, :-1], self.pad_id)], dim=1)
        out = self.backbone(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=attention_mask,
                            decoder_input_ids=decoder_in, use_cache=False, output_hidden_states=with_hidden)
        return (out.logits, out.decoder_hidden_states[-1]) if with_hidden else out.logits

    def token_logprobs(self, hidden, attention_mask, targets, target_mask) -> torch.Tensor:
        """(B, S) log-probability of each target token under teacher forcing; 0 where masked."""
        return target_logprobs(self.decode(hidden, attention_mask, targets, target_mask), targets, target_mask)

    def generate(self, hidden, attention_mask, max_new_tokens: int) -> List[List[int]]:
        """Greedy decoding from the encoder states (transformers' ``generate``, one beam, no
        sampling, its key-value cache): each row's tokens up to (without) ``</s>``."""
        from transformers.modeling_outputs import BaseModelOutput

        out = self.backbone.generate(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                                     attention_mask=attention_mask, max_new_tokens=max_new_tokens, do_sample=False,
                                     num_beams=1, decoder_start_token_id=self.start_id, eos_token_id=self.eos_id,
                                     pad_token_id=self.pad_id)
        rows = [row[1:] for row in out.tolist()]  # without the decoder's start token
        return [row[:row.index(self.eos_id)] if self.eos_id in row else row for row in rows]
