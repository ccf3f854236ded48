"""Prompt distillation (MPT, Wang et al. 2023 §3.2 eqs 3-5): the losses that pull a student
prompt's outputs towards a teacher prompt's on the same examples.

A formulation's ``outputs(model, batch)`` (``Outputs``) gives what the losses compare:
each example's task loss, its output distributions (MRC: the start and the end
distribution over the input's positions; seq2seq: the vocabulary distribution at every
target token under teacher forcing) and its hidden states (MRC: the encoder's last layer;
seq2seq: the encoder's and the decoder's last layers, MPT §4.1 "hidden states from both the
encoder and decoder of T5"). Every loss here is per example, so a step that mixes tasks
(each task's sub-batch through its own formulation) weights them by their examples.

- ``logits_kl``: KL(p_teacher || p_student) with both distributions at temperature T (MPT
  eq 3: ``p_j = exp(z_j / T) / Z``), averaged over an example's distributions. The paper
  gives no T and no T² factor; neither is applied beyond T itself (``PretrainConfig.
  distill_temperature``).
- ``hidden_mse``: the squared difference of student and teacher hidden states (MPT eq 4),
  averaged over an example's positions and the model dimension, summed over the groups of
  states (encoder, decoder). The paper writes a sum over positions; the mean keeps λ = 0.9
  meaning the same at every input length.
- ``prompt_distance``: the squared difference of the student's prompt for a task and the
  teacher's (MPT §4.3's "prompt distance" ablation), averaged over its entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch


@dataclass
class Outputs:
    """What distillation compares, for a batch of B examples.

    losses: (B,) the task loss of each example (the formulation's ``example_losses``).
    logits: (B, N, C) N output distributions of C classes per example; -inf where a class
        does not exist (an MRC position past the input).
    rows: (B, N) bool: which of the N distributions count (seq2seq: the target tokens).
    hidden: [(states (B, T, d), mask (B, T) bool), ...] one pair per group of hidden states.
    """

    losses: torch.Tensor
    logits: torch.Tensor
    rows: torch.Tensor
    hidden: List[Tuple[torch.Tensor, torch.Tensor]]


def logits_kl(student: Outputs, teacher: Outputs, temperature: float) -> torch.Tensor:
    """(B,) mean over each example's counted distributions of KL(teacher || student) at T."""
    log_s = torch.log_softmax(student.logits.float() / temperature, dim=-1)
    log_t = torch.log_softmax(teacher.logits.float() / temperature, dim=-1)
    p_t = log_t.exp()
    # classes the teacher gives no mass (-inf logits) add nothing: 0 * log 0 is taken as 0
    terms = torch.where(p_t > 0, p_t * (log_t - log_s), torch.zeros_like(p_t))
    per_row = terms.sum(dim=-1) * student.rows
    return per_row.sum(dim=1) / student.rows.sum(dim=1).clamp(min=1)


def hidden_mse(student: Outputs, teacher: Outputs) -> torch.Tensor:
    """(B,) per group of hidden states, the mean squared difference over each example's
    counted positions and the model dimension; summed over the groups."""
    total = torch.zeros(student.losses.shape[0], device=student.losses.device)
    for (s, mask), (t, _) in zip(student.hidden, teacher.hidden):
        sq = ((s.float() - t.float()) ** 2).mean(dim=-1) * mask
        total = total + sq.sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return total


def prompt_distance(student_prompt: torch.Tensor, teacher_prompt: torch.Tensor) -> torch.Tensor:
    """The mean squared difference of two prompts (L, d): a scalar."""
    return ((student_prompt.float() - teacher_prompt.float()) ** 2).mean()
