"""Fewer padded positions, the same numbers: how a set of encoded examples is cut into
forward passes.

A batch is padded to its longest input, so a batch mixing short and long sentences computes
positions for nothing (26-32% of them on the embedded sentence tasks: bench/job_time_split.py).
Two remedies that change no result beyond round-off (a batch's shape changes the order of a
matmul's sums, nothing else):

- evaluation reads examples in length order, ``batch_size`` at a time, and puts the answers
  back in the examples' order (``in_length_order``);
- a training step keeps its examples (the composition of a step is the sampler's, never
  this module's) but may run them as several forward passes of similar length whose losses
  are summed before one backward (``padding_chunks``): the gradient is that of the one batch.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Sequence

# A forward (and backward) call costs about as much as 64 more positions on MiniLM-L6 (10.6M
# layer weights) on one CPU thread: it ran 24 x 64 positions in 0.45 s and 2 x 32 in 0.031 s
# (282 vs 482 us a position), measured 2026-12-07. A position's cost grows with the layer
# weights and a call's fixed cost much less, so the overhead in positions is taken as inversely
# proportional to them: about 2 on a 24-layer large model, thousands on a test's tiny one
# (which then never cuts). Cutting a batch pays only where it saves more padding than this.
CALL_OVERHEAD_WEIGHT_POSITIONS = 64 * 10_600_000


def call_overhead_positions(model) -> Optional[int]:
    """The positions one more forward call is worth on ``model``'s backbone (its layer weights:
    every parameter but the embeddings); None off the CPU, where it was not measured and a
    call's fixed cost is far larger beside a position's: there a step stays one pass."""
    backbone = getattr(model, "backbone", model)
    if next(backbone.parameters()).device.type != "cpu":
        return None
    weights = sum(p.numel() for name, p in backbone.named_parameters()
                  if "embed" not in name and not name.startswith("shared"))
    return max(1, round(CALL_OVERHEAD_WEIGHT_POSITIONS / max(weights, 1)))


def example_length(item) -> int:
    """The positions an encoded example costs: its input, plus its target where it has one
    (seq2seq's decoder)."""
    return len(item.input_ids) + len(getattr(item, "target_ids", ()) or ())


def sorted_batches(items: Sequence, batch_size: int) -> Iterator[List[int]]:
    """Indices of ``items`` in length order, ``batch_size`` at a time (ties keep their order)."""
    order = sorted(range(len(items)), key=lambda i: example_length(items[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def in_length_order(items: Sequence, batch_size: int, predict: Callable[[List[int]], Sequence]) -> List:
    """``predict(indices)``'s answers for ``items`` read in length order (``sorted_batches``),
    put back in the items' order."""
    answers: List = [None] * len(items)
    for idx in sorted_batches(items, batch_size):
        for i, answer in zip(idx, predict(idx)):
            answers[i] = answer
    return answers


def padding_chunks(items: Sequence, overhead: Optional[int]) -> List[List[int]]:
    """Indices of ``items`` cut into forward passes of similar length: the cut of the
    length-sorted examples that minimises the positions computed (each pass padded to its
    longest) plus ``overhead`` positions a pass. One pass where cutting saves nothing, and
    where ``overhead`` is None."""
    if overhead is None:
        return [list(range(len(items)))]
    order = sorted(range(len(items)), key=lambda i: example_length(items[i]))
    lengths = [example_length(items[i]) for i in order]
    n = len(order)
    cost = [0.0] + [float("inf")] * n  # cost[j]: the best cut of the first j sorted examples
    start_of = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):  # the last pass holds sorted examples i..j-1, padded to lengths[j-1]
            c = cost[i] + (j - i) * lengths[j - 1] + overhead
            if c < cost[j]:
                cost[j], start_of[j] = c, i
    chunks, j = [], n
    while j > 0:
        chunks.append(order[start_of[j]:j])
        j = start_of[j]
    return chunks[::-1]
