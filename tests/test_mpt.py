"""MPT (Wang et al. 2023): the distillation losses against hand computations, the
decomposed prompt, stochastic task sampling, source training (MRC and seq2seq) with its
gradients, teachers and resume, target adaptation from a checkpoint, the config checks,
and that nothing of a downstream test pool reaches MPT's source training or few-shot draws."""

from __future__ import annotations

import copy
import math
import random
from collections import Counter

import pytest
import torch

from conftest import FIXTURES, TINY_CONFIG
from replicate import pretrain
from replicate.distill import Outputs, hidden_mse, logits_kl, prompt_distance
from replicate.errors import ConfigError
from replicate.model import DecomposedPrompt
from replicate.pretrain import TaskSampler, check_upstream_tasks, make_pretrain_config, run_pretraining
from test_pretrain import TOY_TASKS, tiny_bert, toy_run  # noqa: F401  (tiny_bert: a fixture)

LN = math.log
INF = float("-inf")


# ---------------------------------------------------------------------------------------
# 1. the distillation losses, by hand


def outputs(logits, rows, hidden=(), losses=None):
    logits = torch.tensor(logits, dtype=torch.float)
    return Outputs(torch.zeros(logits.shape[0]) if losses is None else losses, logits,
                   torch.tensor(rows, dtype=torch.bool), list(hidden))


def test_logits_kl_is_kl_teacher_to_student_at_temperature_t_by_hand():
    """2 examples x 2 distributions x 3 classes at T = 2: logits are 2 ln q, so the
    tempered distributions are q. Class 2 of example 0 and class 1 of example 1 do not exist
    (-inf in both); example 1's second distribution does not count (its KL would be large)."""
    T = 2.0
    lg = lambda *q: [2 * LN(x) if x > 0 else INF for x in q]  # noqa: E731
    teacher = outputs([[lg(1 / 4, 3 / 4, 0), lg(1 / 3, 1 / 3, 1 / 3)],
                       [lg(1 / 2, 0, 1 / 2), lg(1 / 3, 1 / 3, 1 / 3)]], [[1, 1], [1, 0]])
    student = outputs([[lg(1 / 2, 1 / 2, 0), lg(1 / 2, 1 / 4, 1 / 4)],
                       [lg(1 / 4, 0, 3 / 4), lg(0.98, 0.01, 0.01)]], [[1, 1], [1, 0]])
    ex0 = ((1 / 4 * LN((1 / 4) / (1 / 2)) + 3 / 4 * LN((3 / 4) / (1 / 2)))  # KL(t || s), the -inf class adds 0
           + (1 / 3 * LN((1 / 3) / (1 / 2)) + 2 / 3 * LN((1 / 3) / (1 / 4)))) / 2
    ex1 = 1 / 2 * LN((1 / 2) / (1 / 4)) + 1 / 2 * LN((1 / 2) / (3 / 4))  # one counted distribution: / 1
    got = logits_kl(student, teacher, T)
    assert got.shape == (2,)
    torch.testing.assert_close(got, torch.tensor([ex0, ex1]), rtol=1e-5, atol=1e-6)
    # not symmetric: the teacher's distribution weighs the log ratio (the other way gives other numbers)
    assert not torch.allclose(logits_kl(teacher, student, T), got, atol=1e-3)
    # the gradient through the -inf classes is finite (0 * log 0 taken as 0, no nan)
    student.logits.requires_grad_(True)
    logits_kl(student, teacher, T).sum().backward()
    assert torch.isfinite(student.logits.grad).all()
    assert student.logits.grad[1, 1].abs().sum() == 0  # an uncounted distribution gets no gradient


def test_kl_of_identical_outputs_is_zero_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 5, generator=g)
    logits[:, :, 4] = INF
    logits[2, :, 3] = INF
    rows = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    same = Outputs(torch.zeros(3), logits, rows, [])
    for T in (0.5, 1.0, 3.0):
        assert torch.equal(logits_kl(same, Outputs(torch.zeros(3), logits.clone(), rows, []), T), torch.zeros(3))
    other = Outputs(torch.zeros(3), logits + torch.randn(3, 4, 5, generator=g), rows, [])
    kl = logits_kl(other, same, 1.0)
    assert (kl[:2] > 0).all() and kl[2] == 0  # an example without a counted distribution: 0, not nan


def test_hidden_mse_by_hand_over_counted_positions_summed_over_groups():
    """Two groups (encoder: 3 positions, decoder: 2), d = 2; a masked position carries a
    difference of 100 that must not count."""
    g = torch.Generator().manual_seed(1)
    enc_t, dec_t = torch.randn(2, 3, 2, generator=g), torch.randn(2, 2, 2, generator=g)
    enc_diff = torch.tensor([[[1., 1.], [2., 0.], [100., 100.]], [[0., 0.], [1., 0.], [3., 1.]]])
    dec_diff = torch.tensor([[[2., 2.], [100., -100.]], [[1., 1.], [0., 2.]]])
    enc_mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    dec_mask = torch.tensor([[1, 0], [1, 1]], dtype=torch.bool)
    teacher = Outputs(torch.zeros(2), torch.zeros(2, 1, 1), torch.ones(2, 1, dtype=torch.bool),
                      [(enc_t, enc_mask), (dec_t, dec_mask)])
    student = Outputs(torch.zeros(2), torch.zeros(2, 1, 1), torch.ones(2, 1, dtype=torch.bool),
                      [(enc_t + enc_diff, enc_mask), (dec_t + dec_diff, dec_mask)])
    # example 0: encoder (1 + 2) / 2 positions, decoder 4 / 1; example 1: (0 + 0.5 + 5) / 3, (1 + 2) / 2
    want = torch.tensor([(1 + 2) / 2 + 4, (0 + 0.5 + 5) / 3 + (1 + 2) / 2])
    torch.testing.assert_close(hidden_mse(student, teacher), want)
    torch.testing.assert_close(hidden_mse(teacher, student), want)
    assert torch.equal(hidden_mse(teacher, teacher), torch.zeros(2))


def test_prompt_distance_is_the_mean_squared_difference():
    teacher = torch.randn(2, 2)
    student = teacher + torch.tensor([[1., 2.], [3., 0.]])
    assert prompt_distance(student, teacher).item() == pytest.approx((1 + 4 + 9 + 0) / 4)
    assert prompt_distance(teacher, teacher).item() == 0


# ---------------------------------------------------------------------------------------
# 2. the decomposed prompt


@pytest.mark.parametrize("shared_rows", [1, 3])
def test_decomposed_prompt_is_shared_times_the_outer_product_of_u_and_v(shared_rows):
    g = torch.Generator().manual_seed(2)
    rows, L, d = 3, 4, 5
    shared, u, v = torch.randn(shared_rows, L, d, generator=g), torch.randn(rows, L, generator=g), \
        torch.randn(rows, d, generator=g)
    prompt = DecomposedPrompt(shared, u, v, seed_axis=shared_rows > 1)
    got = prompt()
    assert got.shape == (rows, 1, L, d)
    for k in range(rows):
        for i in range(L):
            for j in range(d):
                want = shared[k if shared_rows > 1 else 0, i, j] * u[k, i] * v[k, j]
                assert got[k, 0, i, j].item() == pytest.approx(want.item(), rel=1e-6, abs=1e-7)
    # the module holds copies: its parameters, not the caller's tensors
    assert prompt.shared.data_ptr() != shared.data_ptr()
    assert all(getattr(p, "seed_axis", False) == (shared_rows > 1) for p in prompt.parameters())


# ---------------------------------------------------------------------------------------
# 3. task sampling

SIZES = [5, 20, 60, 150, 400]


def test_stochastic_sampling_draws_2_to_kappa_distinct_tasks_splitting_the_batch():
    steps = 4000
    sampler = TaskSampler(5, 42, "stochastic", SIZES, batch_size=8, max_tasks=4)
    plans = [sampler.next() for _ in range(steps)]
    ks = Counter(len(p) for p in plans)
    assert set(ks) == {2, 3, 4}, ks  # K uniform in [2, κ]: never 1, never above κ
    assert all(abs(c - steps / 3) < 4 * math.sqrt(steps / 3) for c in ks.values()), ks
    for plan in plans:
        rows = [r for r, _ in plan]
        counts = [c for _, c in plan]
        assert len(set(rows)) == len(rows)  # no task twice in a step
        assert sum(counts) == 8 and max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)
    # every task is drawn, more often the more examples it has (examples-proportional)
    seen = Counter(r for p in plans for r, _ in p)
    assert [seen[r] for r in range(5)] == sorted(seen[r] for r in range(5)) and seen[0] > 0, seen
    # the first task of a step is drawn from all five with probability size / total
    first = Counter(p[0][0] for p in plans)
    for r, size in enumerate(SIZES):
        expected = steps * size / sum(SIZES)
        assert abs(first[r] - expected) < 4 * math.sqrt(expected) + 2, (r, first[r], expected)
    again = TaskSampler(5, 42, "stochastic", SIZES, batch_size=8, max_tasks=4)
    assert [again.next() for _ in range(100)] == plans[:100]  # seeded
    other = TaskSampler(5, 43, "stochastic", SIZES, batch_size=8, max_tasks=4)
    assert [other.next() for _ in range(100)] != plans[:100]


def test_stochastic_sampling_is_capped_by_the_tasks_and_the_batch():
    """κ null: every task may be drawn, K <= n; and K <= the batch size (each task >= 1 example)."""
    ks = Counter(len(TaskSampler(5, s, "stochastic", SIZES, batch_size=32).next()) for s in range(400))
    assert set(ks) == {2, 3, 4, 5}, ks
    small = TaskSampler(5, 1, "stochastic", SIZES, batch_size=3, max_tasks=5)
    for _ in range(300):
        plan = small.next()
        assert len(plan) in (2, 3) and sorted(c for _, c in plan) in ([1, 2], [1, 1, 1]), plan


def test_proportional_sampling_fills_the_batch_in_proportion_to_the_tasks_sizes():
    sampler = TaskSampler(5, 7, "proportional", SIZES, batch_size=8)
    examples = Counter()
    for _ in range(2000):
        plan = sampler.next()
        rows = [r for r, _ in plan]
        assert sum(c for _, c in plan) == 8 and len(set(rows)) == len(rows) and all(c > 0 for _, c in plan)
        for r, c in plan:
            examples[r] += c
    for r, size in enumerate(SIZES):
        expected = 16000 * size / sum(SIZES)
        assert abs(examples[r] - expected) < 4 * math.sqrt(expected) + 2, (r, examples[r], expected)


def test_one_proportional_draws_one_task_per_step_in_proportion_to_its_size():
    sampler = TaskSampler(5, 3, "one-proportional", SIZES, batch_size=8, max_tasks=3)
    plans = [sampler.next() for _ in range(4000)]
    assert all(len(p) == 1 and p[0][1] == 8 for p in plans)
    seen = Counter(p[0][0] for p in plans)
    for r, size in enumerate(SIZES):
        expected = 4000 * size / sum(SIZES)
        assert abs(seen[r] - expected) < 4 * math.sqrt(expected) + 2, (r, seen[r], expected)


def test_one_task_per_step_draws_the_rows_mp2s_sampler_drew():
    """``how="one"`` (the default): [(row, batch_size)], the row sequence of the sampler
    before MPT (``random.Random("pretrain-tasks|<seed>").randrange(n)``), so MP2's runs
    are unchanged."""
    old = random.Random("pretrain-tasks|42")
    sampler = TaskSampler(5, 42, "one", SIZES, batch_size=8, max_tasks=3)
    assert [sampler.next() for _ in range(200)] == [[(old.randrange(5), 8)] for _ in range(200)]
    plain = TaskSampler(5, 42)
    assert plain.next() == [(random.Random("pretrain-tasks|42").randrange(5), 1)]


# ---------------------------------------------------------------------------------------
# 4-5. source training on MRC (tiny BERT): teachers, distillation, gradients, resume


def toy_data(tasks):
    data = {}
    for task in tasks:
        pool = sorted(task.load_pools(str(FIXTURES)).train, key=lambda ex: ex.id)
        data[task.name] = (pool[:10], pool[10:14])
    return data


@pytest.fixture(scope="module")
def teachers(tiny_bert):
    """A per-task run (MPT's teachers): one trained prompt per toy task and their head, in
    the checkpoint's form, rows in another order than the student's tasks and one extra row
    (the student must find each task's own teacher by name)."""
    _, out = toy_run(tiny_bert, prompt="per-task", steps=6, eval_every=6, prompt_lr=0.05, head_lr=0.05,
                     init_vocab_size=50)
    prompts = out["state"]["prompt_tensor"]
    order = [2, 0, 1]
    extra = torch.randn(1, *prompts.shape[1:], generator=torch.Generator().manual_seed(3))
    return {"tasks": [TOY_TASKS[i] for i in order] + ["not-a-student-task"],
            "prompts": torch.cat([prompts[order], extra]), "head": out["state"]["head"]}


def student_run(tiny_bert, taught_by=None, resume_path=None, stop_after=None, **values):
    """A ``prompt: mpt`` run on the toy tasks (10 train / 4 dev examples each), distilled
    from ``taught_by`` (logits-hidden unless ``distill`` says otherwise)."""
    spec, backbone, tokenizer = tiny_bert
    values = {"prompt": "mpt", "tasks": TOY_TASKS, "prompt_length": 3, "steps": 1, "batch_size": 6,
              "prompt_lr": 0.01, "eval_every": 1, "save_every": 2, "max_length": 64, "init_vocab_size": 50,
              "task_sampling": "stochastic", **values}
    if taught_by is not None:
        values = {"teachers": "toy-teachers", "distill": "logits-hidden", **values}
    cfg = make_pretrain_config("toy-mpt", values)
    tasks = check_upstream_tasks("toy-mpt", cfg)
    out = run_pretraining(cfg, spec, backbone, tokenizer, tasks, toy_data(tasks), resume_path, "toy-mpt-hash",
                          log=lambda *a: None, stop_after=stop_after, teachers=taught_by)
    return cfg, out


class Recorder:
    """Watches a run: the student and the teacher it builds (and their tensors as built),
    and every ``outputs`` / ``example_losses`` call of ``formulation_cls`` with the model,
    whether its backbone was in train mode, the batch and the result."""

    def __init__(self, monkeypatch, formulation_cls):
        self.student = self.teacher = None
        self.calls = []
        build_model, build_teacher = pretrain.build_model, pretrain.build_teacher

        def student(*args, **kwargs):
            self.student = build_model(*args, **kwargs)
            self.initial = {n: p.detach().clone() for n, p in self.student.named_parameters()}
            return self.student

        def teacher(*args, **kwargs):
            self.teacher = build_teacher(*args, **kwargs)
            return self.teacher

        monkeypatch.setattr(pretrain, "build_model", student)
        monkeypatch.setattr(pretrain, "build_teacher", teacher)
        for name in ("outputs", "example_losses"):
            real = getattr(formulation_cls, name)

            def watched(f, model, batch, real=real, name=name):
                result = real(f, model, batch)
                who = "teacher" if model is self.teacher else "student"
                self.calls.append((name, who, model.backbone.training, batch, result))
                return result

            monkeypatch.setattr(formulation_cls, name, watched)

    def training_calls(self, name="outputs"):
        """The calls of the training steps (evaluation calls ``predict``, not these)."""
        return [c for c in self.calls if c[0] == name]


def test_distillation_trains_p_star_u_v_and_the_head_and_nothing_else(tiny_bert, teachers, monkeypatch):
    """One step of MPT eq 5 (logits-hidden) on MRC: the loss is the batch mean of each
    example's task loss + λ (KL + hidden MSE) against its own task's teacher, run without
    dropout; gradients reach P*, u, v and the head; the backbone and the teachers stay as
    they were."""
    from replicate.formulation import MRC

    spec, backbone, _ = tiny_bert
    frozen = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    rec = Recorder(monkeypatch, MRC)
    cfg, out = student_run(tiny_bert, teachers)
    student, teacher = rec.student, rec.teacher
    # the student: P* (1, L, d), u (tasks, L), v (tasks, d), the head from the teachers'
    assert student.prompt.shared.shape == (1, 3, spec.d_model) and student.prompt.u.shape == (3, 3)
    assert torch.equal(rec.initial["prompt.u"], torch.ones(3, 3)) and torch.equal(rec.initial["prompt.v"],
                                                                                   torch.ones(3, spec.d_model))
    assert torch.equal(rec.initial["head.weight"], teachers["head"])
    for name in ("prompt.shared", "prompt.u", "prompt.v", "head.weight"):
        grad = dict(student.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
        key = {"prompt.shared": "shared", "prompt.u": "u", "prompt.v": "v", "head.weight": "head"}[name]
        assert not torch.equal(out["state"][key], rec.initial[name]), name
    for n, p in backbone.named_parameters():
        assert not p.requires_grad and p.grad is None and torch.equal(p, frozen[n]), n
    for p in teacher.parameters():
        assert not p.requires_grad and p.grad is None
    assert not any(layer._forward_pre_hooks for layer in backbone.encoder.layer)  # the backbone is left bare
    assert torch.equal(teacher.prompt.weight, teachers["prompts"]) and torch.equal(teacher.head.weight,
                                                                                     teachers["head"])
    # each batch (one per kind of task, its examples of K tasks): the teachers (eval mode, each
    # example its task's teacher), then the student (train mode, each example its task's row)
    calls = rec.training_calls()
    assert len(calls) >= 2 and len(calls) % 2 == 0
    total, count, padded, mixed = 0.0, 0, False, False
    for (_, who_t, mode_t, batch_t, taught), (_, who_s, mode_s, batch_s, out_s) in zip(calls[::2], calls[1::2]):
        assert (who_t, mode_t, who_s, mode_s) == ("teacher", False, "student", True)
        assert torch.equal(batch_t.input_ids, batch_s.input_ids)
        want = [teachers["tasks"].index(TOY_TASKS[r]) for r in batch_s.seed_index.tolist()]
        assert batch_t.seed_index.tolist() == want
        mixed = mixed or len(set(want)) > 1
        # start and end over the input's positions, -inf at the pads; the hidden states of its tokens
        valid = batch_s.attention_mask.bool()
        assert len(out_s.hidden) == 1 and out_s.logits.shape == (len(valid), 2, valid.shape[1])
        assert torch.equal(torch.isfinite(out_s.logits), valid[:, None, :].expand_as(out_s.logits))
        assert torch.equal(out_s.hidden[0][1], valid) and out_s.rows.all()
        padded = padded or not valid.all()
        per_example = out_s.losses + cfg.distill_lambda * (logits_kl(out_s, taught, cfg.distill_temperature)
                                                           + hidden_mse(out_s, taught))
        total, count = total + per_example.sum().item(), count + len(per_example)
    assert count == cfg.batch_size and padded and mixed  # (pads to leave out, tasks sharing a batch)
    assert out["loss_curve"][0][1] == pytest.approx(total / count, abs=2e-5)


def test_logits_only_distillation_leaves_the_hidden_states_out(tiny_bert, teachers, monkeypatch):
    from replicate.formulation import MRC

    rec = Recorder(monkeypatch, MRC)
    cfg, out = student_run(tiny_bert, teachers, distill="logits", distill_lambda=0.5, distill_temperature=2.0)
    calls = rec.training_calls()
    pairs = list(zip(calls[::2], calls[1::2]))  # (teacher, student) of each sub-batch
    total = sum((s.losses + 0.5 * logits_kl(s, t, 2.0)).sum().item() for (*_, t), (*_, s) in pairs)
    with_hidden = sum(hidden_mse(s, t).sum().item() for (*_, t), (*_, s) in pairs)
    assert with_hidden > 1e-3  # so a loss that added it would be another number
    assert out["loss_curve"][0][1] == pytest.approx(total / cfg.batch_size, abs=2e-5)
    for name in ("shared", "u", "v"):
        assert getattr(rec.student.prompt, name).grad.abs().sum() > 0, name


def test_prompt_distance_pulls_each_tasks_prompt_towards_its_teachers(tiny_bert, teachers, monkeypatch):
    """MPT §4.3's ablation: L_PLM + λ mean((P* ∘ u_k v_kᵀ - teacher_k)²); the teachers run no
    forward pass; gradients reach P*, u and v (and the head, through the task loss)."""
    from replicate.formulation import MRC

    rec = Recorder(monkeypatch, MRC)
    cfg, out = student_run(tiny_bert, teachers, distill="prompt-distance")
    assert not rec.training_calls("outputs")
    calls = rec.training_calls("example_losses")
    assert all(who == "student" for _, who, *_ in calls)
    start = (rec.initial["prompt.shared"] * rec.initial["prompt.u"][:, :, None] * rec.initial["prompt.v"][:, None, :])
    total = 0.0
    for _, _, _, batch, losses in calls:
        for row, loss in zip(batch.seed_index.tolist(), losses.tolist()):  # each example its task's distance
            teacher = teachers["prompts"][teachers["tasks"].index(TOY_TASKS[row])]
            total += loss + cfg.distill_lambda * ((start[row] - teacher) ** 2).mean().item()
    assert out["loss_curve"][0][1] == pytest.approx(total / cfg.batch_size, abs=2e-5)
    for name in ("shared", "u", "v"):
        assert getattr(rec.student.prompt, name).grad.abs().sum() > 0, name
    assert rec.student.head.weight.grad.abs().sum() > 0


def test_the_loop_draws_its_tasks_from_the_stochastic_sampler(tiny_bert, teachers):
    cfg, out = student_run(tiny_bert, teachers, steps=5, eval_every=5, distill="logits")
    sampler = TaskSampler(3, cfg.seed, "stochastic", [10, 10, 10], cfg.batch_size)
    expected = Counter(r for _ in range(5) for r, _ in sampler.next())
    assert out["task_steps"] == [expected[r] for r in range(3)] and sum(out["task_steps"]) > 5


def test_a_killed_distillation_resumes_to_the_same_checkpoint(tiny_bert, teachers, tmp_path, monkeypatch):
    """Killed after step 3 (the resume file of step 2 survives, between two loss-curve
    points): the rerun ends with the tensors, curves and task counts of an uninterrupted
    run; dropout on, stochastic sampling, u and v drawn (uv_init normal)."""
    from replicate.formulation import MRC

    run = dict(steps=4, eval_every=3, save_every=2, uv_init="normal", uv_init_std=0.5)
    _, whole = student_run(tiny_bert, teachers, **run)
    resume = str(tmp_path / "resume.pt")
    with monkeypatch.context() as m:
        rec = Recorder(m, MRC)
        _, killed = student_run(tiny_bert, teachers, resume, stop_after=3, **run)
    assert killed["steps_run"] == 3
    saved = torch.load(resume, weights_only=False)
    assert saved["progress"]["step"] == 2 and set(saved["params"]) == {"shared", "u", "v", "head"}
    for key, name in (("shared", "prompt.shared"), ("u", "prompt.u"), ("v", "prompt.v"), ("head", "head.weight")):
        # every tensor moved by step 2, so a resume that did not restore one would show
        assert (saved["params"][key] - rec.initial[name]).abs().max() > 1e-4, key
    _, resumed = student_run(tiny_bert, teachers, resume, **run)
    assert resumed["steps_run"] == 4
    for key in ("loss_curve", "dev_curve", "best_step", "task_steps"):
        assert resumed[key] == whole[key], key
    assert set(whole["state"]) == {"shared", "u", "v", "head"}
    for key, value in whole["state"].items():
        assert torch.equal(resumed["state"][key], value), key


# ---------------------------------------------------------------------------------------
# 6. source training on seq2seq (tiny T5)

from test_seq2seq import EXAMPLES, SPEC as T5_SPEC, TOY as T5_TOY, t5_dir  # noqa: E402,F401  (t5_dir: a fixture)


def seq2seq_run(t5_dir, monkeypatch=None, teacher_rows=None, **values):
    """A ``prompt: mpt`` seq2seq run on two toy text-to-text tasks, distilled from teachers
    listed in reverse task order plus an extra row; ``teacher_rows(student) -> (tasks, L,
    d)`` gives their prompts (in the student's task order), once the student is built."""
    import dataclasses

    backbone, tok = T5_SPEC.load(local_dir=t5_dir, seq2seq=True)
    tasks = [T5_TOY, dataclasses.replace(T5_TOY, name="toy-b")]
    data = {t.name: (EXAMPLES[:10], EXAMPLES[10:14]) for t in tasks}
    cfg = make_pretrain_config("s2s", {
        "prompt": "mpt", "formulation": "seq2seq", "tasks": [t.name for t in tasks], "prompt_length": 3,
        "steps": 1, "batch_size": 4, "prompt_lr": 0.01, "eval_every": 1, "max_length": 32, "init_vocab_size": 20,
        "teachers": "s2s-teachers", "distill": "logits-hidden", "task_sampling": "stochastic",
        "text_format": "compt", **values})  # targets of one and two words: "negative", "not negative"
    g = torch.Generator().manual_seed(5)
    teachers = {"tasks": ["toy-b", "extra", "toy"], "prompts": torch.randn(3, 3, T5_SPEC.d_model, generator=g),
                "head": None}
    if teacher_rows is not None:
        build_teacher = pretrain.build_teacher

        def teacher(backbone, spec, cfg, given):
            rows = teacher_rows()
            prompts = given["prompts"].clone()
            prompts[0], prompts[2] = rows[1], rows[0]
            return build_teacher(backbone, spec, cfg, {**given, "prompts": prompts})

        monkeypatch.setattr(pretrain, "build_teacher", teacher)
    return cfg, run_pretraining(cfg, T5_SPEC, backbone, tok, tasks, data, None, "s2s-hash", log=lambda *a: None,
                                teachers=teachers)


def test_seq2seq_distillation_compares_encoder_and_decoder_states(t5_dir, monkeypatch):
    """MPT §4.1 on T5: the hidden loss sums the encoder's and the decoder's last states (two
    groups: the input's tokens, the target's tokens), the KL is over the vocabulary at every
    target token; a step trains P*, u and v (T5 has no head)."""
    from replicate.seq2seq import Seq2Seq

    rec = Recorder(monkeypatch, Seq2Seq)
    cfg, out = seq2seq_run(t5_dir)
    calls = rec.training_calls()
    assert len(calls) >= 2 and [c[1] for c in calls] == ["teacher", "student"] * (len(calls) // 2)
    total, padded = 0.0, False
    for (*_, batch_t, taught), (*_, batch, s) in zip(calls[::2], calls[1::2]):
        assert len(s.hidden) == 2 and len(taught.hidden) == 2
        (enc, enc_mask), (dec, dec_mask) = s.hidden
        assert enc.shape[:2] == batch.input_ids.shape and torch.equal(enc_mask, batch.attention_mask.bool())
        assert dec.shape == (*batch.target_ids.shape, T5_SPEC.d_model) and torch.equal(dec_mask, batch.target_mask)
        assert s.logits.shape[:2] == batch.target_ids.shape and torch.equal(s.rows, batch.target_mask)
        padded = padded or not batch.target_mask.all()
        # the teacher of the batch's task: toy is row 2 of the teachers, toy-b row 0
        assert (batch_t.seed_index == 2 - 2 * batch.seed_index).all()
        # each group differs from the teacher's: the loss has both parts
        for k in range(2):
            assert hidden_mse(Outputs(s.losses, s.logits, s.rows, [s.hidden[k]]),
                              Outputs(taught.losses, taught.logits, taught.rows, [taught.hidden[k]])).min() > 0
        total += (s.losses + cfg.distill_lambda * (logits_kl(s, taught, 1.0) + hidden_mse(s, taught))).sum().item()
    assert padded  # a sub-batch mixed targets of two lengths: its pads are no distribution
    assert out["loss_curve"][0][1] == pytest.approx(total / cfg.batch_size, abs=2e-5)
    for name in ("shared", "u", "v"):
        grad = getattr(rec.student.prompt, name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert all(not p.requires_grad for p in rec.student.backbone.parameters())


def test_seq2seq_student_equal_to_its_teachers_has_no_distillation_loss(t5_dir, monkeypatch):
    """Teachers whose prompts are the student's own task prompts (P* ∘ u_k v_kᵀ at the
    start): KL and hidden MSE are 0, and the step's loss is the task loss alone."""
    from replicate.seq2seq import Seq2Seq

    rec = Recorder(monkeypatch, Seq2Seq)
    cfg, out = seq2seq_run(t5_dir, monkeypatch, teacher_rows=lambda: rec.student.prompt()[:, 0].detach().clone(),
                           uv_init="normal", uv_init_std=1.0)
    calls = rec.training_calls()
    assert calls
    for (*_, taught), (*_, s) in zip(calls[::2], calls[1::2]):
        assert logits_kl(s, taught, 1.0).abs().max() < 1e-6
        assert hidden_mse(s, taught).abs().max() < 1e-10
    task_loss = sum(s.losses.sum().item() for *_, s in calls[1::2])
    assert out["loss_curve"][0][1] == pytest.approx(task_loss / cfg.batch_size, abs=2e-5)


def assert_same_gradient(prompt, a, b):
    """The gradients of sum(a) and sum(b) reach P*, u and v alike."""
    grads = [torch.autograd.grad(x.sum(), [prompt.shared, prompt.u, prompt.v]) for x in (a, b)]
    for ga, gb in zip(*grads):
        assert ga.abs().sum() > 0
        torch.testing.assert_close(ga, gb)


def test_outputs_task_losses_are_the_formulations_example_losses(tiny_bert, t5_dir):
    """Distillation trains the task loss from ``outputs``: it must be ``example_losses``,
    on MRC (tiny BERT, a decomposed prompt) and on seq2seq (tiny T5, targets of 1 and 2
    words), and its logits the model's own."""
    from replicate.formulation import MRC
    from replicate.model import PromptedMRC, PromptedSeq2Seq, SharedSpanHead
    from replicate.seq2seq import Seq2Seq, TextEncoder, collate_text
    from replicate.tasks import resolve_task

    g = torch.Generator().manual_seed(4)
    spec, backbone, tokenizer = tiny_bert
    prompt = DecomposedPrompt(torch.randn(1, 3, 32, generator=g), torch.randn(2, 3, generator=g),
                              torch.randn(2, 32, generator=g), seed_axis=False)
    model = PromptedMRC(backbone, spec, SharedSpanHead(torch.randn(32, 2, generator=g)), prompt).eval()
    task = resolve_task("bbc-topic")
    f = MRC(task)
    encoder = f.encoder(tokenizer, 64, 3, spec)
    items = [encoder.encode(ex) for ex in sorted(task.load_pools(str(FIXTURES)).train, key=lambda ex: ex.id)[:3]]
    batch = f.collate(items, [0, 1, 1], tokenizer.pad_token_id)
    out, losses = f.outputs(model, batch), f.example_losses(model, batch)
    torch.testing.assert_close(out.losses, losses)
    assert_same_gradient(prompt, out.losses, losses)
    with torch.no_grad():
        logits = f.forward(model, batch)
    valid = batch.attention_mask.bool()
    assert torch.equal(out.logits.transpose(1, 2)[valid], logits[valid])
    for hook in model._hooks:
        hook.remove()

    backbone, tok = T5_SPEC.load(local_dir=t5_dir, seq2seq=True)
    model = PromptedSeq2Seq(backbone, DecomposedPrompt(torch.randn(1, 3, 32, generator=g), torch.ones(2, 3),
                                                       torch.ones(2, 32), seed_axis=False)).eval()
    f = Seq2Seq(T5_TOY, "compt")
    encoder = TextEncoder(tok, T5_TOY, "compt", 32, 3)
    batch = collate_text([encoder.encode(e) for e in EXAMPLES[:4]], [0, 1, 0, 1], 0)
    assert not batch.target_mask.all()
    out, losses = f.outputs(model, batch), f.example_losses(model, batch)
    torch.testing.assert_close(out.losses, losses)
    assert_same_gradient(model.prompt, out.losses, losses)
    with torch.no_grad():
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        logits = model.decode(hidden, batch.attention_mask, batch.target_ids, batch.target_mask)
    torch.testing.assert_close(out.losses, losses)
    torch.testing.assert_close(out.logits, logits.float())
    torch.testing.assert_close(out.hidden[0][0], hidden)


# ---------------------------------------------------------------------------------------
# 7. target adaptation from a source training's checkpoint

ADAPT_SEEDS = [8, 13]


def fake_checkpoint(d, L=3, n_tasks=3):
    """What ``checkpoint_tensors`` gives for a ``prompt: mpt`` run: P* (L, d), u (tasks, L),
    v (tasks, d) (random, u and v far from their mean), the head (d, 2), the tasks."""
    g = torch.Generator().manual_seed(11)
    return {"shared": torch.randn(L, d, generator=g), "u": torch.randn(n_tasks, L, generator=g) * 2,
            "v": torch.randn(n_tasks, d, generator=g) * 2, "head": torch.randn(d, 2, generator=g),
            "tasks": TOY_TASKS[:n_tasks], "layout": "options"}


def adapt(tiny_bert, checkpoint, **overrides):
    """MPT built for two seeds from ``checkpoint``, and one training step of the group
    trainer on bbc-topic (4 examples per seed, one batch); the tensors before and after."""
    from replicate.methods import METHODS
    from replicate.tasks import resolve_task
    from replicate.train import GroupTrainer, SeedData

    spec, backbone, tokenizer = tiny_bert
    method = METHODS.get("mpt")
    cfg = method.make_config({"prompt_length": 3, "epochs": 1, "batch_size": 4, "lr": 0.03, "task_lr": 0.04,
                              "head_lr": 0.01, "max_length": 64, "eval_every": 1, **overrides})
    model = method.build(backbone, spec, tokenizer, cfg, ADAPT_SEEDS, pretrained=checkpoint)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    before["prompt()"] = model.prompt().detach().clone()  # (seeds, 1, L, d): what the encoder gets
    task = resolve_task("bbc-topic")
    pools = task.load_pools(str(FIXTURES))
    encoder = method.encoder(tokenizer, task, cfg, spec)
    enc = [encoder.encode(ex) for ex in sorted(pools.train, key=lambda ex: ex.id)[:8]]
    data = [SeedData(s, enc[:4], enc[4:6], enc[6:8]) for s in ADAPT_SEEDS]
    groups = method.param_groups(model, cfg)
    GroupTrainer(model, method, cfg, task, encoder, data, tokenizer.pad_token_id, log=lambda m: None).fit()
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    after["prompt()"] = model.prompt().detach().clone()
    for hook in model._hooks:
        hook.remove()
    return method, cfg, model, groups, before, after


def moved(before, after):
    return {n for n in before if not torch.equal(before[n], after[n])}


def test_every_seed_starts_from_p_star_and_the_mean_source_vectors(tiny_bert):
    spec = tiny_bert[0]
    ckpt = fake_checkpoint(spec.d_model)
    method, cfg, model, groups, before, after = adapt(tiny_bert, ckpt)
    u_mean = ckpt["u"].sum(0) / 3
    v_mean = ckpt["v"].sum(0) / 3
    want = torch.stack([ckpt["shared"][i] * u_mean[i] * v_mean for i in range(3)])  # P* ∘ (ū ⊗ v̄), by rows
    assert before["prompt()"].shape == (2, 1, 3, spec.d_model)
    for k in range(2):
        torch.testing.assert_close(before["prompt()"][k, 0], want)
    for k in range(2):  # each seed its own copy of P*, mean u, mean v, the head
        torch.testing.assert_close(before["prompt.shared"][k], ckpt["shared"])
        torch.testing.assert_close(before["prompt.u"][k], u_mean)
        torch.testing.assert_close(before["prompt.v"][k], v_mean)
        assert torch.equal(before["head.weight"][k], ckpt["head"])
    # P* at lr, u and v at task_lr (MPT App. A's two speeds), the head at head_lr
    assert [([id(p) for p in g["params"]], g["lr"]) for g in groups] == [
        ([id(model.prompt.shared)], 0.03), ([id(model.prompt.u), id(model.prompt.v)], 0.04),
        ([id(model.head.weight)], 0.01)]
    assert moved(before, after) == {"prompt.shared", "prompt.u", "prompt.v", "head.weight", "prompt()"}
    # without task_lr, u and v learn at lr
    assert [g["lr"] for g in method.param_groups(model, method.make_config({"lr": 0.03, "head_lr": 0.01}))] == [
        0.03, 0.03, 0.01]


def test_only_shared_adapts_p_star_alone_and_only_task_freezes_it(tiny_bert):
    """MPT §4.3: "shared": the prompt is P* itself (no u, v), P* trains; "task": P* frozen,
    u and v train. Either way the head trains and the backbone does not."""
    spec = tiny_bert[0]
    ckpt = fake_checkpoint(spec.d_model)
    _, _, model, groups, before, after = adapt(tiny_bert, ckpt, adapt="shared")
    assert torch.equal(before["prompt()"][:, 0], torch.stack([ckpt["shared"]] * 2))
    assert not model.prompt.u.requires_grad and not model.prompt.v.requires_grad
    assert [([id(p) for p in g["params"]], g["lr"]) for g in groups] == [
        ([id(model.prompt.shared)], 0.03), ([id(model.head.weight)], 0.01)]
    assert moved(before, after) == {"prompt.shared", "head.weight", "prompt()"}

    _, _, model, groups, before, after = adapt(tiny_bert, ckpt, adapt="task")
    assert not model.prompt.shared.requires_grad
    assert [([id(p) for p in g["params"]], g["lr"]) for g in groups] == [
        ([id(model.prompt.u), id(model.prompt.v)], 0.04), ([id(model.head.weight)], 0.01)]
    assert moved(before, after) == {"prompt.u", "prompt.v", "head.weight", "prompt()"}


def test_transfer_head_off_draws_a_fresh_head_and_a_wrong_shape_is_one_line(tiny_bert):
    from replicate.methods import METHODS
    from replicate.methods.common import span_head

    spec, backbone, tokenizer = tiny_bert
    ckpt = fake_checkpoint(spec.d_model)
    method = METHODS.get("mpt")
    cfg = method.make_config({"prompt_length": 3, "transfer_head": False})
    model = method.build(backbone, spec, tokenizer, cfg, ADAPT_SEEDS, pretrained=ckpt)
    assert torch.equal(model.head.weight, span_head(spec.d_model, ADAPT_SEEDS).weight)
    for hook in model._hooks:
        hook.remove()
    cfg = method.make_config({"prompt_length": 4})
    with pytest.raises(ConfigError, match=r"^mpt: the source training's shared prompt is \(3, 32\); .*\(4, 32\)"):
        method.build(backbone, spec, tokenizer, cfg, ADAPT_SEEDS, pretrained=ckpt)


def test_batched_seeds_adapt_as_they_do_alone(tiny_bert):
    """Every seed owns its P*, u, v and head (all with the seed axis): two seeds on their own
    examples, trained together with per-seed gradient clipping, end where each ends alone."""
    from replicate.methods import METHODS
    from replicate.model import has_seed_axis
    from replicate.tasks import resolve_task
    from replicate.train import GroupTrainer, SeedData

    spec, backbone, tokenizer = tiny_bert
    ckpt = fake_checkpoint(spec.d_model)
    method = METHODS.get("mpt")
    cfg = method.make_config({"prompt_length": 3, "epochs": 3, "batch_size": 2, "lr": 0.03, "task_lr": 0.04,
                              "head_lr": 0.01, "max_length": 64, "grad_clip": 0.05, "select_on_dev": False})
    task = resolve_task("bbc-topic")
    encoder = method.encoder(tokenizer, task, cfg, spec)
    enc = [encoder.encode(ex) for ex in sorted(task.load_pools(str(FIXTURES)).train, key=lambda ex: ex.id)[:12]]
    data = {8: SeedData(8, enc[:4], enc[8:10], enc[8:10]), 13: SeedData(13, enc[4:8], enc[10:12], enc[10:12])}

    def fit(seeds):
        model = method.build(backbone, spec, tokenizer, cfg, seeds, pretrained=ckpt)
        assert all(has_seed_axis(p) for p in model.prompt.parameters()) and has_seed_axis(model.head.weight)
        GroupTrainer(model, method, cfg, task, encoder, [data[s] for s in seeds], tokenizer.pad_token_id,
                     log=lambda m: None).fit()
        for hook in model._hooks:
            hook.remove()
        return {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("backbone.")}

    together = fit([8, 13])
    for k, seed in enumerate([8, 13]):
        alone = fit([seed])
        for name, value in alone.items():
            torch.testing.assert_close(value[0], together[name][k], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together["prompt.u"][0], together["prompt.u"][1])  # the seeds did differ


def test_a_source_trainings_checkpoint_starts_the_target_adaptation(tiny_bert, teachers):
    """What ``pretrain_job`` writes for a ``prompt: mpt`` run, read back by
    ``checkpoint_tensors``: P* (L, d) without its row axis, every task's u and v, the head;
    MPT builds from it."""
    from replicate.methods import METHODS
    from replicate.pretrain import checkpoint_tensors

    spec, backbone, tokenizer = tiny_bert
    _, out = student_run(tiny_bert, teachers, steps=2, eval_every=2, uv_init="normal", uv_init_std=0.5)
    state = out["state"]
    raw = {**state, "tasks": TOY_TASKS, "prompt": "mpt", "layout": "options", "prompt_length": 3,
           "d_model": spec.d_model, "formulation": "mrc"}
    tensors = checkpoint_tensors(raw)
    assert torch.equal(tensors["shared"], state["shared"][0]) and tensors["shared"].shape == (3, spec.d_model)
    assert torch.equal(tensors["u"], state["u"]) and torch.equal(tensors["v"], state["v"])
    assert torch.equal(tensors["head"], state["head"]) and tensors["tasks"] == TOY_TASKS
    method = METHODS.get("mpt")
    model = method.build(backbone, spec, tokenizer, method.make_config({"prompt_length": 3}), ADAPT_SEEDS,
                         pretrained=tensors)
    for hook in model._hooks:
        hook.remove()
    want = state["shared"][0] * state["u"].mean(0)[:, None] * state["v"].mean(0)[None, :]
    torch.testing.assert_close(model.prompt()[1, 0].detach(), want)


def test_load_teachers_checks_the_checkpoint_or_the_files_it_reads(tmp_path):
    """``jobs.load_teachers``: a per-task checkpoint of the settings hash the student's
    settings name, or each released file of the sha256 they hold; one line otherwise."""
    from replicate.io import sha256_file
    from replicate.jobs import load_teachers

    g = torch.Generator().manual_seed(9)
    prompts, head = torch.randn(2, 3, 4, generator=g), torch.randn(4, 2, generator=g)
    path = str(tmp_path / "teachers.pt")
    torch.save({"settings_hash": "h1", "prompt": "per-task", "tasks": ["a", "b"], "prompt_tensor": prompts,
                "head": head}, path)
    cfg = make_pretrain_config("s", {"prompt": "mpt", "tasks": ["b", "a"], "teachers": "t", "distill": "logits"})
    settings = {"pretraining": "s", "teachers": {"pretraining": "t", "settings_hash": "h1"}}
    got, provenance = load_teachers(settings, cfg, path)
    assert got["tasks"] == ["a", "b"] and torch.equal(got["prompts"], prompts) and torch.equal(got["head"], head)
    assert provenance["sha256"] == sha256_file(path) and provenance["settings_hash"] == "h1"
    with pytest.raises(ConfigError, match=r"^teachers .*: not the checkpoint of pre-training 't' with settings h2"):
        load_teachers({**settings, "teachers": {"pretraining": "t", "settings_hash": "h2"}}, cfg, path)
    with pytest.raises(ConfigError, match="pass its checkpoint"):
        load_teachers(settings, cfg, None)
    torch.save({"settings_hash": "h1", "prompt": "single", "tasks": ["a", "b"], "prompt_tensor": prompts[:1]}, path)
    with pytest.raises(ConfigError, match="not the checkpoint of pre-training 't'"):
        load_teachers(settings, cfg, path)
    assert load_teachers(settings, make_pretrain_config("s", {"prompt": "mpt", "tasks": ["a"]}), path) == (None, None)

    files = {"a": str(tmp_path / "a.pt"), "b": str(tmp_path / "b.pt")}
    torch.save(prompts[0], files["a"])
    torch.save(prompts[1], files["b"])
    cfg = make_pretrain_config("s", {"prompt": "mpt", "tasks": ["b", "a"], "teacher_files": files,
                                     "distill": "logits", "formulation": "seq2seq"})
    settings = {"pretraining": "s", "teachers": {"files": {t: {"path": f, "sha256": sha256_file(f)}
                                                           for t, f in files.items()}}}
    got, provenance = load_teachers(settings, cfg, None)
    assert got["tasks"] == ["b", "a"] and torch.equal(got["prompts"], prompts[[1, 0]]) and got["head"] is None
    torch.save(prompts[1] + 1, files["b"])  # changed since the settings were made
    with pytest.raises(ConfigError, match=r"^teacher file .*b\.pt: its sha256 is not the one the settings hold"):
        load_teachers(settings, cfg, None)
    for bad, message in ((prompts[1][:2], "their prompts differ in shape"), (prompts[:1], "not one prompt tensor")):
        torch.save(bad, files["b"])
        settings["teachers"]["files"]["b"]["sha256"] = sha256_file(files["b"])
        with pytest.raises(ConfigError, match=message):
            load_teachers(settings, cfg, None)


def test_the_students_settings_name_its_teachers_settings():
    """A change to the teachers' run changes the student's settings hash (the DAG reruns
    it); runs without teachers keep settings without the key (their hashes unchanged)."""
    from replicate.config import config_hash, pretrain_settings, teachers_checkpoint

    cfg = mpt_config()
    student = pretrain_settings(cfg, "mpt", "tiny-bert")
    assert student["teachers"] == {"pretraining": "teachers",
                                   "settings_hash": config_hash(pretrain_settings(cfg, "teachers", "tiny-bert"))}
    assert "teachers" not in pretrain_settings(cfg, "teachers", "tiny-bert")
    assert "teachers" not in pretrain_settings(cfg, "spot", "tiny-bert")
    want = f"{cfg['results_dir']}/pretrain/teachers/tiny-bert/checkpoint.pt"
    assert teachers_checkpoint(cfg, "mpt", "tiny-bert") == want
    other = pretrain_settings(mpt_config(teachers={"prompt_lr": 0.5}), "mpt", "tiny-bert")
    assert config_hash(other) != config_hash(student)
    assert teachers_checkpoint(cfg, "spot", "tiny-bert") is None


# ---------------------------------------------------------------------------------------
# 8. config checks: one line each


def mpt_config(**changes):
    """A valid config: per-task teachers, a single-prompt run, MPT's source training and the
    mpt method; ``changes``: {"<pretraining or methods/mpt>": {field: value or None (drop)}}."""
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["protocol"]["downstream_reserve"] = 0.2
    cfg["grid"]["methods"] = ["mpt"]
    cfg["grid"]["tasks"] = ["bbc-topic"]
    base = {"tasks": ["bbc-title-topic", "tweet-source"], "prompt_length": 3, "steps": 2, "batch_size": 2,
            "max_length": 96}
    cfg["pretraining"] = {"teachers": {**base, "prompt": "per-task"}, "spot": {**base, "prompt": "single"},
                          "mpt": {**base, "prompt": "mpt", "teachers": "teachers", "distill": "logits-hidden",
                                  "task_sampling": "stochastic"}}
    cfg["methods"] = {"mpt": {"epochs": 1, "max_length": 64, "prompt_length": 3, "pretraining": "mpt"}}
    for where, values in changes.items():
        entry = cfg["methods"]["mpt"] if where == "methods/mpt" else cfg["pretraining"][where]
        for key, value in values.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
    return cfg


def test_the_valid_config_passes():
    from replicate.config import check_config

    check_config(mpt_config())


@pytest.mark.parametrize("changes, message", [
    ({"mpt": {"teachers": None}},
     r"^config pretraining/mpt/distill: 'logits-hidden' needs teachers \(a per-task pre-training\) or teacher_files$"),
    ({"mpt": {"teachers": "spot"}},
     r"^config pretraining/mpt/teachers: 'spot' is a 'single' pre-training; teachers are one prompt per task"),
    ({"mpt": {"teachers": "nobody"}}, r"^config pretraining/mpt/teachers: no pre-training named 'nobody'$"),
    ({"teachers": {"tasks": ["bbc-title-topic"]}},
     r"^config pretraining/mpt/teachers: 'teachers' has no teacher for tweet-source$"),
    ({"teachers": {"prompt_length": 4}},
     r"^config pretraining/mpt/teachers: 'teachers' has prompt_length 4; this run has 3 \(student and teachers"),
    ({"teachers": {"layout": "mcc"}}, r"^config pretraining/mpt/teachers: 'teachers' has layout 'mcc'; this run has"),
    ({"mpt": {"teachers": None, "teacher_files": {"bbc-title-topic": "a.pt", "tweet-source": "b.pt"}}},
     r"^config pretraining/mpt/teacher_files: released prompt files carry no MRC head"),
    ({"mpt": {"max_tasks_per_batch": 1}},
     r"^config pretraining/mpt/max_tasks_per_batch: κ must be >= 2 \(MPT draws K from \[2, κ\]\), not 1$"),
    ({"mpt": {"distill": "none"}}, r"^config pretraining/mpt/distill: teachers are set, but distill is 'none'"),
    ({"mpt": {"task_sampling": "round-robin"}}, r"^config pretraining/mpt/task_sampling: "),
    ({"methods/mpt": {"pretraining": "spot"}},
     r"^config methods/mpt: pre-training 'spot' has prompt 'single', .*; the method needs prompt 'mpt'"),
    ({"methods/mpt": {"pretraining": "teachers"}},
     r"^config methods/mpt: pre-training 'teachers' has prompt 'per-task'"),
    ({"methods/mpt": {"prompt_length": 4}}, r"^config methods/mpt: pre-training 'mpt' has prompt 'mpt', "
                                            r"prompt_length 3.*; the method needs prompt 'mpt', prompt_length 4"),
])
def test_bad_mpt_settings_are_one_clear_line(changes, message):
    from replicate.config import check_config

    with pytest.raises(ConfigError, match=message) as info:
        check_config(mpt_config(**changes))
    assert "\n" not in str(info.value)


def test_teachers_of_another_formulation_are_refused():
    """check_teachers directly: a seq2seq per-task run cannot teach an MRC student (nor on
    seq2seq one of another text format), whatever else the config holds."""
    from replicate.pretrain import check_teachers

    student = make_pretrain_config("mpt", {"prompt": "mpt", "tasks": ["a", "b"], "prompt_length": 3,
                                           "teachers": "t", "distill": "logits"})
    for teacher, message in (({"formulation": "seq2seq"}, "has formulation 'seq2seq'; this run has 'mrc'"),
                             ({"prompt": "single"}, "is a 'single' pre-training")):
        tcfg = make_pretrain_config("t", {"prompt": "per-task", "tasks": ["a", "b"], "prompt_length": 3, **teacher})
        with pytest.raises(ConfigError, match=message):
            check_teachers("mpt", student, "t", tcfg)
    s2s = make_pretrain_config("mpt", {"prompt": "mpt", "tasks": ["a"], "prompt_length": 3, "teachers": "t",
                                       "distill": "logits", "formulation": "seq2seq"})
    tcfg = make_pretrain_config("t", {"prompt": "per-task", "tasks": ["a"], "prompt_length": 3,
                                      "formulation": "seq2seq", "text_format": "compt"})
    with pytest.raises(ConfigError, match="has text_format 'compt'; this run has 'attempt'"):
        check_teachers("mpt", s2s, "t", tcfg)


def test_a_run_without_its_teachers_or_missing_one_is_refused(tiny_bert, teachers):
    """One line each, and the refused run leaves no prompt hook on the shared backbone."""
    backbone = tiny_bert[1]
    with pytest.raises(ConfigError, match="needs its teachers' prompts"):
        student_run(tiny_bert, None, teachers="toy-teachers", distill="logits")
    partial = {**teachers, "tasks": ["x", *teachers["tasks"][1:]]}
    with pytest.raises(ConfigError, match=f"^the teachers have no prompt for {TOY_TASKS[2]}$"):
        student_run(tiny_bert, partial)
    assert not any(layer._forward_pre_hooks for layer in backbone.encoder.layer)
    with pytest.raises(ConfigError, match=r"the teachers' prompts are \(3, 32\) \(length, d\); this run needs "
                                          r"\(4, 32\)"):
        student_run(tiny_bert, teachers, prompt_length=4)
    assert not any(layer._forward_pre_hooks for layer in backbone.encoder.layer)


# ---------------------------------------------------------------------------------------
# 9. leakage: the embedded default's MPT source training and few-shot draws


@pytest.fixture(scope="module")
def embedded_mpt():
    """The embedded default's ``mpt`` pre-training data, built as its data job builds it
    (``build_data`` on its settings) from the test fixtures, and what must never reach it:
    every embedded downstream task's test pool and every UNSEEN DATA task's few-shot
    reserve. pos-first-noun is left out: the fixture corpora carry no part-of-speech tags."""
    from conftest import REPO
    from replicate.config import load_config, pretrain_settings
    from replicate.pretrain import build_data
    from replicate.splits import Protocol, few_shot_pool
    from replicate.tasks import TASKS

    cfg = load_config(str(REPO / "config" / "config.yaml"))
    settings = {name: pretrain_settings(cfg, name, cfg["grid"]["backbone"]) for name in ("mpt", "spot-sources")}
    built = copy.deepcopy(settings["mpt"])
    built["config"]["tasks"] = [t for t in built["config"]["tasks"] if t != "pos-first-noun"]
    data, _ = build_data(built, str(FIXTURES), log=lambda *a: None)
    protocol = Protocol(**cfg["protocol"])
    test_texts, reserve_texts = set(), set()
    for name in TASKS:
        task = TASKS.get(name)
        if task.suite != "embedded" or task.track == "upstream":
            continue
        pools = task.load_pools(str(FIXTURES))
        test_texts |= {t for ex in pools.test for t in (ex.text, ex.text_b, *(ex.options or ())) if t}
        if task.track == "unseen-data":
            reserve_texts |= {t for ex in few_shot_pool(task, pools, protocol)
                              for t in (ex.text, ex.text_b, *(ex.options or ())) if t}
    return cfg, settings, data, protocol, test_texts, reserve_texts


def test_mpt_and_its_teachers_pretrain_on_the_same_data(embedded_mpt):
    """MPT distils from spot-sources' prompts, so both runs' data must be clean: their data
    settings differ in the run's name alone (the data is a function of them: ``data_settings_of``),
    so the data checked below is both runs'."""
    from replicate.pretrain import data_settings_of

    cfg, settings, data, *_ = embedded_mpt
    assert settings["mpt"]["teachers"]["pretraining"] == "spot-sources"
    assert make_pretrain_config("mpt", settings["mpt"]["config"]).prompt == "mpt"
    mpt, spot = (data_settings_of(settings[n]) for n in ("mpt", "spot-sources"))
    assert {**mpt, "pretraining": None} == {**spot, "pretraining": None}
    assert len(data) == len(settings["mpt"]["config"]["tasks"]) - 1 >= 12


def test_no_downstream_test_text_reaches_mpts_source_training(embedded_mpt):
    _, _, data, _, test_texts, reserve_texts = embedded_mpt
    forbidden = test_texts | reserve_texts
    joined = "\x00".join(sorted(forbidden))
    # every 20-character window of the forbidden texts: a text of 20+ characters inside one of
    # them has its first 20 among these (a fast filter before the exact search)
    windows = {hash(joined[i:i + 20]) for i in range(len(joined) - 19)}
    checked = 0
    for name, (train, dev) in data.items():
        assert train and dev, name
        for ex in train + dev:
            for text in (ex.text, ex.text_b, *(ex.options or ())):
                if text is None:
                    continue
                assert text not in forbidden, (name, text)
                if len(text) >= 20 and hash(text[:20]) in windows:  # nor a piece of one
                    assert text not in joined, (name, text)
                checked += 1
    assert checked > 3000


def draw_any(task, pools, shot, seed, protocol):
    """The cell's few-shot draw, or (the fixture pools are small) the largest that fits."""
    from replicate.errors import DataError
    from replicate.splits import draw_split

    for k in (shot, 16, 8, 4, 2):
        try:
            return draw_split(task, pools, k, seed, protocol)
        except DataError:
            continue
    raise AssertionError(f"{task.name}: no draw fits the fixture pools")


def test_the_mpt_cells_few_shot_draws_hold_no_test_example_and_no_source_data(embedded_mpt):
    """Every mpt cell of the grid: its train and dev examples are none of its task's test
    examples (by id and by text); an UNSEEN DATA task's come from its reserve and none of
    them (nor their texts) is in MPT's source-training data."""
    from replicate.config import cells
    from replicate.splits import few_shot_pool
    from replicate.tasks import TASKS

    cfg, _, data, protocol, _, _ = embedded_mpt
    pre_ids = {(name, ex.id) for name, (train, dev) in data.items() for ex in train + dev}
    pre_texts = {t for train, dev in data.values() for ex in train + dev
                 for t in (ex.text, ex.text_b, *(ex.options or ())) if t}
    mpt_cells = [c for c in cells(cfg) if c.method == "mpt"]
    assert {c.task for c in mpt_cells} == set(cfg["grid"]["tasks"]) and len(mpt_cells) == 18
    for cell in mpt_cells:
        task = TASKS.get(cell.task)
        pools = task.load_pools(str(FIXTURES))
        split = draw_any(task, pools, cell.shot, cell.seed, protocol)
        by_id = {ex.id: ex for ex in pools.train}
        drawn = [by_id[i] for i in split["train"] + split["dev"]]
        assert not set(split["train"] + split["dev"]) & set(split["test"])
        # its own test pool (the synthetic fixtures share some texts between the two polarity
        # tasks' pools; the real corpora do not)
        assert not {ex.text for ex in drawn} & {ex.text for ex in pools.test}, cell
        if task.track == "unseen-data":
            assert {ex.id for ex in drawn} <= {ex.id for ex in few_shot_pool(task, pools, protocol)}
            assert not {(cell.task, ex.id) for ex in drawn} & pre_ids, cell
            assert not {ex.text for ex in drawn} & pre_texts, cell


def test_the_reserve_is_left_out_even_where_no_text_is_held_out():
    """Two defences keep an UNSEEN DATA task's few-shot reserve out of source training: its
    ids (``in_downstream_reserve``) and its texts (``HeldOut``). The first alone suffices."""
    from types import SimpleNamespace

    from replicate.pretrain import HeldOut, upstream_data
    from replicate.splits import in_downstream_reserve
    from replicate.tasks.base import Example

    from replicate.splits import Protocol

    protocol = Protocol(downstream_reserve=0.2)
    task = SimpleNamespace(name="toy", track="unseen-data")
    pools = SimpleNamespace(train=[Example(id=f"e{i:03d}", text=f"text number {i}", label=0, options=("a", "b"))
                                   for i in range(200)])
    pcfg = make_pretrain_config("toy", {"tasks": ["toy"]})
    train, dev = upstream_data(task, pools, protocol, HeldOut(set(), substrings=False), pcfg)
    reserve = {ex.id for ex in pools.train if in_downstream_reserve(ex.id, 0.2)}
    assert 20 < len(reserve) < 60
    assert not {ex.id for ex in train + dev} & reserve
    assert {ex.id for ex in train + dev} | reserve == {ex.id for ex in pools.train}
