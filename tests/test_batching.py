"""Fewer padded positions, the same numbers (replicate/batching.py): a training step cut into
passes of similar length has the one batch's loss and gradient, evaluation in length order
hands each example its own answer, and a CPU job runs eager attention."""

from types import SimpleNamespace

import pytest
import torch

from replicate.backbones import BACKBONES, attention_for
from replicate.batching import call_overhead_positions, example_length, padding_chunks, sorted_batches
from replicate.methods import METHODS
from replicate.mrc import MRCEncoder
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS
from replicate.train import GroupTrainer, SeedData, predict_rows

SEEDS = [8, 13]


def items_of(lengths):
    return [SimpleNamespace(input_ids=[0] * n) for n in lengths]


def test_padding_chunks_cover_every_example_once_and_cut_only_where_it_pays():
    mixed = items_of([5, 100, 6, 98, 7, 99, 8, 97])
    chunks = padding_chunks(mixed, 64)
    assert sorted(i for c in chunks for i in c) == list(range(len(mixed)))
    assert [sorted(example_length(mixed[i]) for i in c) for c in chunks] == [[5, 6, 7, 8], [97, 98, 99, 100]]
    assert padding_chunks(items_of([128] * 24), 64) == [list(range(24))]  # equal lengths: one pass
    # two short examples beside a long one: a pass of its own would cost more than their padding
    assert len(padding_chunks(items_of([30, 31, 40]), 64)) == 1
    assert len(padding_chunks(mixed, 10_000)) == 1  # a tiny model's calls cost more than any padding


def test_a_calls_overhead_in_positions_falls_as_the_backbone_grows():
    small, _ = BACKBONES.get("tiny-bert").load()
    layers = sum(p.numel() for name, p in small.named_parameters() if "embed" not in name)
    assert call_overhead_positions(small) == round(64 * 10_600_000 / layers)
    # the trainer's model: the wrapper's prompt and head are not the backbone's layer weights
    wrapped = METHODS.get("pt").build(small, BACKBONES.get("tiny-bert"), None,
                                      METHODS.get("pt").make_config({"prompt_length": 3, "init": "uniform"}), SEEDS)
    assert call_overhead_positions(wrapped) == call_overhead_positions(small)
    # off the CPU (a GPU; here the meta device) nothing was measured: a step stays one pass
    assert call_overhead_positions(small.to("meta")) is None
    assert padding_chunks(items_of([5, 100, 6, 98]), None) == [[0, 1, 2, 3]]


def test_sorted_batches_read_in_length_order_and_cover_every_example():
    items = items_of([9, 3, 7, 1, 5])
    batches = list(sorted_batches(items, 2))
    assert batches == [[3, 1], [4, 2], [0]]


def test_seq2seq_targets_count_in_an_examples_length():
    assert example_length(SimpleNamespace(input_ids=[0] * 5, target_ids=[0] * 3)) == 8


class LengthReader:
    """A formulation whose answer to an example is its length: which answer went where shows."""

    def collate(self, items, rows, pad_id, device=None):
        return SimpleNamespace(items=list(items), rows=list(rows))

    def predict(self, model, batch, final=True):
        return [(r, example_length(e)) for r, e in zip(batch.rows, batch.items)]


def test_evaluation_in_length_order_gives_each_example_its_own_answer():
    lengths = [12, 3, 40, 7, 7, 25, 1]
    pairs = [(row, e) for row, e in enumerate(items_of(lengths))]
    preds = predict_rows(LengthReader(), None, pairs, 0, torch.device("cpu"), batch_size=3)
    assert preds == [(row, n) for row, n in enumerate(lengths)]


def encoded(tok, task, cfg, method, max_length):
    pools = task.load_pools("")
    enc = MRCEncoder(tok, task, max_length, method.prompt_length(cfg), True)
    return [[enc.encode(ex) for ex in resolve(draw_split(task, pools, 8, s, Protocol(test_cap=8)), pools)["train"]]
            for s in SEEDS], enc


def one_pass_seed_losses(trainer, items, owners):
    batch = trainer.formulation.collate(items, owners, trainer.pad_id, trainer.device)
    losses = trainer.formulation.example_losses(trainer.model, batch).float()
    per_seed = torch.zeros(trainer.n).index_add(0, batch.seed_index, losses)
    return per_seed / torch.bincount(batch.seed_index, minlength=trainer.n)


@pytest.mark.parametrize("method_name", ["pt", "ptv2"])
def test_a_step_cut_into_passes_has_the_one_batchs_loss_and_gradient(method_name):
    spec, method, task = BACKBONES.get("tiny-bert"), METHODS.get(method_name), TASKS.get("bbc-topic")
    cfg = method.make_config({"max_length": 64, "prompt_length": 3, "init": "uniform"})
    backbone, tok = spec.load()
    model = method.build(backbone, spec, tok, cfg, SEEDS)
    long, enc = encoded(tok, task, cfg, method, 64)
    short, _ = encoded(tok, task, cfg, method, 24)  # BBC articles fill any length: cut them short
    items, owners = [], []
    for s in range(len(SEEDS)):
        for k in range(4):
            items += [long[s][k], short[s][k]]
            owners += [s, s]
    trainer = GroupTrainer(model, method, cfg, task, enc, [SeedData(s, [], [], []) for s in SEEDS],
                           tok.pad_token_id, log=lambda m: None)
    model.eval()
    trainer.call_overhead = 64  # MiniLM-L6's (the tiny model's own would never cut)
    assert len(padding_chunks(items, trainer.call_overhead)) > 1  # the step does run as several passes
    trained = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(fn):
        model.zero_grad()
        seed_loss = fn(trainer, items, owners) if fn else trainer._seed_losses(items, owners)
        seed_loss.sum().backward()
        return seed_loss.detach(), [p.grad.clone() for p in trained]

    cut_loss, cut_grads = loss_and_grads(None)
    one_loss, one_grads = loss_and_grads(one_pass_seed_losses)
    torch.testing.assert_close(cut_loss, one_loss, atol=1e-5, rtol=1e-5)
    for a, b in zip(cut_grads, one_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_with_dropout_on_a_step_is_one_pass():
    """Dropout draws its masks per pass: cutting the step would draw other masks."""
    spec, method, task = BACKBONES.get("tiny-bert"), METHODS.get("pt"), TASKS.get("bbc-topic")
    cfg = method.make_config({"max_length": 64, "prompt_length": 3, "init": "uniform"})
    backbone, tok = spec.load()
    model = method.build(backbone, spec, tok, cfg, SEEDS)
    long, enc = encoded(tok, task, cfg, method, 64)
    short, _ = encoded(tok, task, cfg, method, 24)
    items, owners = long[0][:3] + short[0][:3], [0] * 6
    trainer = GroupTrainer(model, method, cfg, task, enc, [SeedData(s, [], [], []) for s in SEEDS],
                           tok.pad_token_id, log=lambda m: None)
    trainer.call_overhead = 64
    passes = []
    collate = trainer.formulation.collate
    trainer.formulation.collate = lambda batch_items, *a, **k: passes.append(len(batch_items)) or collate(
        batch_items, *a, **k)
    model.train()
    trainer._seed_losses(items, owners)
    assert passes == [6]
    model.eval()
    passes.clear()
    trainer._seed_losses(items, owners)
    assert len(passes) == 2 and sum(passes) == 6


def test_a_cpu_job_runs_eager_attention_and_a_gpu_job_sdpa():
    assert attention_for("cpu") == "eager" and attention_for(torch.device("cpu")) == "eager"
    assert attention_for("cuda:1") == "sdpa" and attention_for("cuda") == "sdpa"
    model, _ = BACKBONES.get("tiny-bert").load(attention="eager")
    assert model.config._attn_implementation == "eager"
    assert BACKBONES.get("tiny-bert").load()[0].config._attn_implementation == "sdpa"
