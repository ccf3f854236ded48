"""ComPT: its compositions against hand computations, the router's weights and temperature,
the masks of its masking evaluation, task-set jobs (config, batching, leakage) on a tiny
BERT in the embedded MRC formulation, and its parameter counts."""

import copy
import csv

import pytest
import torch

from replicate import jobs
from replicate.composition import (ComposedPrompt, FrozenComposition, PromptEncoders, compose, relaxed_bernoulli,
                                   router_weights, temperature_at)
from replicate.config import (Cell, TaskSetGroup, cell_settings, check_config, groups, result_path, split_path,
                              split_settings, state_path, task_set_groups, task_set_settings)
from replicate.errors import ConfigError
from replicate.masking import Mask, masking_job, masks_of
from replicate.methods import METHODS
from replicate.params import count


# --- the composition, by hand -------------------------------------------------------------

def _parts():
    """Two sources of 2 tokens x 3 dims and a private prompt, with easy numbers."""
    sources = torch.tensor([[[[1., 2., 3.], [4., 5., 6.]], [[10., 20., 30.], [40., 50., 60.]]]])  # (1, 2, 2, 3)
    private = torch.tensor([[[1., 1., 2.], [0., 3., 1.]]])  # (1, 2, 3)
    return sources, private, torch.tensor([[0.25, 0.75]])


def test_ssum_adds_the_private_prompt_to_the_weighted_sum_of_the_sources():
    sources, private, w = _parts()
    got = compose(sources, private, w, "ssum", torch.ones(1))
    mixed = [[0.25 * 1 + 0.75 * 10, 0.25 * 2 + 0.75 * 20, 0.25 * 3 + 0.75 * 30],
             [0.25 * 4 + 0.75 * 40, 0.25 * 5 + 0.75 * 50, 0.25 * 6 + 0.75 * 60]]
    want = torch.tensor(mixed) + private[0]
    assert torch.allclose(got[0], want)


def test_msum_multiplies_the_private_prompt_into_the_weighted_sum():
    sources, private, w = _parts()
    got = compose(sources, private, w, "msum", torch.ones(1))
    assert torch.allclose(got[0], torch.tensor([[7.75, 15.5, 46.5], [0.0, 116.25, 46.5]]))


def test_mcat_multiplies_the_private_prompt_into_the_concatenated_weighted_sources():
    sources, _, w = _parts()
    private = torch.arange(12, dtype=torch.float).view(1, 4, 3)  # M x m = 4 tokens
    got = compose(sources, private, w, "mcat", torch.ones(1))
    concatenated = torch.cat([0.25 * sources[0, 0], 0.75 * sources[0, 1]])  # source 0's tokens, then source 1's
    assert got.shape == (1, 4, 3) and torch.allclose(got[0], private[0] * concatenated)


def test_a_masked_private_prompt_is_zero_so_msum_and_mcat_prompts_vanish():
    sources, private, w = _parts()
    off = torch.zeros(1)
    assert torch.allclose(compose(sources, private, w, "ssum", off), compose(sources, 0 * private, w, "ssum", off))
    assert compose(sources, private, w, "msum", off).abs().sum() == 0


def test_a_masked_source_gets_no_weight_and_the_kept_ones_renormalise():
    scores = torch.tensor([[0.5, 2.0, -1.0]])
    keep = torch.tensor([[True, False, True]])
    w = router_weights(scores, keep)
    assert w[0, 1] == 0
    want = torch.softmax(torch.tensor([0.5, -1.0]), 0)
    assert torch.allclose(w[0, [0, 2]], want) and torch.isclose(w.sum(), torch.tensor(1.0))
    assert torch.equal(router_weights(scores, torch.zeros_like(keep)), torch.zeros(1, 3))  # nothing kept


def test_top_k_normalises_only_the_k_highest_kept_scores():
    w = router_weights(torch.tensor([[0.1, 3.0, 2.0, 1.0]]), torch.tensor([[True, False, True, True]]), top_k=2)
    assert w[0, 0] == 0 and w[0, 1] == 0
    assert torch.allclose(w[0, 2:], torch.softmax(torch.tensor([2.0, 1.0]), 0))


def test_the_relaxed_bernoulli_sample_is_torchs():
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    torch.manual_seed(0)
    want = torch.distributions.RelaxedBernoulli(torch.tensor(0.7), logits=logits).rsample()
    torch.manual_seed(0)
    got = relaxed_bernoulli(logits, torch.rand(logits.shape), 0.7)
    assert torch.allclose(got, want, atol=1e-6)


def test_the_temperature_is_annealed_linearly_from_5_to_1e_3_over_the_run():
    assert temperature_at(0, 400, 5.0, 1e-3) == 5.0
    assert temperature_at(399, 400, 5.0, 1e-3) == pytest.approx(1e-3)
    assert temperature_at(200, 401, 5.0, 1e-3) == pytest.approx((5.0 + 1e-3) / 2)
    # the released configs' rate: 0.02 a step from 5, at the floor from step 250 on
    assert temperature_at(249, 400, 5.0, 1e-3, rate=0.02) == pytest.approx(0.02)
    assert temperature_at(250, 400, 5.0, 1e-3, rate=0.02) == 1e-3 == temperature_at(399, 400, 5.0, 1e-3, rate=0.02)


def _prompt(n_seeds=1, n_tasks=2, weights="learned"):
    g = torch.Generator().manual_seed(0)
    sources = PromptEncoders(torch.randn(n_seeds, 2, 3, 4, generator=g))
    privates = PromptEncoders(torch.randn(n_seeds, n_tasks, 3, 4, generator=g))
    router = torch.randn(n_seeds, n_tasks, 2, generator=g)
    return ComposedPrompt(sources, privates, router, "ssum", weights, None, False,
                          [torch.Generator().manual_seed(s) for s in range(n_seeds)])


def test_training_samples_the_router_and_inference_reads_its_logits():
    prompt = _prompt()
    prompt.draw(temperature=0.5)
    sampled = prompt.scores()
    assert torch.allclose(sampled, relaxed_bernoulli(prompt.router, prompt.noise, 0.5))
    with torch.no_grad():
        assert torch.equal(prompt.scores(), prompt.router)
    constant = _prompt(weights="constant")
    with torch.no_grad():
        sources, _, scores = constant.parts()
        w = router_weights(scores, torch.ones_like(scores, dtype=torch.bool))
    assert torch.allclose(w, torch.full_like(w, 0.5))  # 1 / M


def test_the_frozen_form_of_a_row_is_its_trained_prompt_at_inference():
    prompt = _prompt()
    with torch.no_grad():
        want = prompt()[:, 0]
        sources, private, scores = prompt.parts()
    frozen = FrozenComposition(sources, private, scores, torch.ones(2, 2, dtype=torch.bool), torch.ones(2), "ssum",
                               "learned", None, False)
    assert torch.allclose(frozen()[:, 0], want)
    keep_first = FrozenComposition(sources, private, scores, torch.tensor([[True, False]] * 2), torch.zeros(2),
                                   "ssum", "learned", None, False)
    assert torch.allclose(keep_first()[:, 0], sources[:, 0])  # one source kept, alone: weight 1, no private


def test_each_part_of_the_prompt_trains_at_its_own_learning_rate():
    """§3.2: sources at lr, private prompts at private_lr, the router at router_lr."""
    from types import SimpleNamespace

    method = METHODS.get("compt-ssum")
    cfg = method.make_config({"lr": 0.3, "private_lr": 0.02, "router_lr": 0.1})
    prompt = _prompt()
    groups = method.param_groups(SimpleNamespace(prompt=prompt, head=None), cfg)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert {lr_of[id(p)] for p in prompt.sources.parameters()} == {0.3}
    assert {lr_of[id(p)] for p in prompt.privates.parameters()} == {0.02}
    assert lr_of[id(prompt.router)] == 0.1


def test_every_training_step_draws_new_router_noise_at_the_annealed_temperature():
    from types import SimpleNamespace

    method = METHODS.get("compt-ssum")
    prompt = _prompt()
    model = SimpleNamespace(prompt=prompt)
    method.on_step(model, method.make_config({}), 0, 101)  # the paper's 5 -> 1e-3 over the run
    assert prompt.temperature == 5.0 and prompt.noise is not None
    first = prompt.noise.clone()
    method.on_step(model, method.make_config({}), 50, 101)
    assert prompt.temperature == pytest.approx((5.0 + 1e-3) / 2) and not torch.equal(prompt.noise, first)
    method.on_step(model, method.make_config({"anneal_rate": 0.02}), 100, 400)
    assert prompt.temperature == pytest.approx(3.0)


def test_an_mcat_mask_takes_a_masked_sources_slots_out_of_the_attention_mask():
    from types import SimpleNamespace

    from replicate.multitask import mask_slots
    from replicate.seq2seq import TextBatch

    sources, private = torch.randn(1, 2, 2, 3), torch.randn(1, 4, 3)
    frozen = FrozenComposition(sources, private, torch.zeros(1, 2), torch.tensor([[False, True]]), torch.ones(1),
                               "mcat", "learned", None, False)
    model = SimpleNamespace(prompt=frozen)
    n = 7
    batch = TextBatch(torch.zeros(1, n, dtype=torch.long), torch.ones(1, n, dtype=torch.long),
                      torch.tensor([0]), torch.tensor([2]), *[torch.zeros(1, 1)] * 6)
    masked = mask_slots(model, batch)
    assert masked.attention_mask.tolist() == [[1, 1, 0, 0, 1, 1, 1]]  # slots 2-3 (source 0) out, 4-5 (source 1) in


def test_each_variants_masks_follow_the_papers_heatmap_columns():
    assert [(m.name, m.sources, m.private) for m in masks_of("ssum", 2)] == [
        ("src0", (0,), False), ("src1", (1,), False), ("all_src", (0, 1), False), ("private", (), True),
        ("total", (0, 1), True)]
    assert [(m.name, m.private) for m in masks_of("msum", 2)][:2] == [("src0", True), ("src1", True)]
    assert Mask("src1", (1,), True).keep_tensor(2, private_in_pool=True).tolist() == [False, True, True]


# --- task sets: config, jobs, batching, leakage --------------------------------------------

@pytest.fixture
def compt_config(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["grid"]["methods"] = ["pt", "compt-ssum"]
    cfg["methods"]["compt-ssum"] = {"epochs": 2, "max_length": 48, "prompt_length": 4, "n_sources": 2,
                                    "batch_size": 4, "prompt_encoder_hidden": 8}
    return cfg


def test_a_task_set_job_is_one_group_per_shot_with_one_config_for_every_task(compt_config):
    cfg = check_config(compt_config)
    assert task_set_groups(cfg) == [TaskSetGroup("compt-ssum", "tiny-bert", 8, ("bbc-topic", "fine-foods"))]
    by_task = {g.task: cell_settings(cfg, g) for g in groups(cfg) if g.method == "compt-ssum"}
    assert set(by_task) == {"bbc-topic", "fine-foods"} and by_task["bbc-topic"] == by_task["fine-foods"]
    assert by_task["bbc-topic"]["tasks"] == ["bbc-topic", "fine-foods"]


def test_task_set_mistakes_are_one_line_at_config_time(compt_config):
    cfg = copy.deepcopy(compt_config)
    cfg["task_sets"] = {"pair": ["bbc-topic", "sentence-polarity"]}
    with pytest.raises(ConfigError, match="task_sets/pair: task 'sentence-polarity' is not in grid/tasks"):
        check_config(cfg)
    cfg = copy.deepcopy(compt_config)
    cfg["methods"]["compt-ssum"]["task_set"] = "glue"
    with pytest.raises(ConfigError, match="compt-ssum/task_set: no task set 'glue'"):
        check_config(cfg)
    cfg = copy.deepcopy(compt_config)
    cfg["methods"]["compt-ssum"]["by_task"] = {"bbc-topic": {"epochs": 3}}
    with pytest.raises(ConfigError, match="compt-ssum/by_task: .* one job"):
        check_config(cfg)
    cfg = copy.deepcopy(compt_config)
    cfg["task_sets"] = {"one": ["fine-foods"]}
    cfg["methods"]["compt-ssum"]["task_set"] = "one"
    assert {g.task for g in groups(check_config(cfg)) if g.method == "compt-ssum"} == {"fine-foods"}


def _run(cfg, seeds, results_dir):
    """Split and train the config's task set for ``seeds`` into ``results_dir``."""
    cfg = dict(cfg, results_dir=str(results_dir))
    group = task_set_groups(cfg)[0]
    for task in group.tasks:
        jobs.make_splits(split_settings(cfg, task, group.shot), seeds, cfg["data_dir"],
                         [split_path(cfg, task, group.shot, s) for s in seeds])
    settings = task_set_settings(cfg, group)
    splits = {t: [split_path(cfg, t, group.shot, s) for s in seeds] for t in group.tasks}
    outs = {t: [result_path(cfg, Cell(group.method, group.backbone, t, group.shot, s)) for s in seeds]
            for t in group.tasks}
    states = [state_path(cfg, group.method, group.backbone, group.shot, s) for s in seeds]
    results = jobs.train_task_set(settings, seeds, splits, outs, states, cfg["data_dir"], device="cpu")
    return settings, splits, states, {(r["task"], r["seed"]): r for r in results}


def test_seeds_batched_in_one_job_equal_each_seed_trained_alone(compt_config, tmp_path):
    cfg = check_config(compt_config)
    _, _, states_both, both = _run(cfg, [8, 13], tmp_path / "both")
    _, _, states_alone, alone = _run(cfg, [13], tmp_path / "alone")
    for task in ("bbc-topic", "fine-foods"):
        a, b = both[(task, 13)], alone[(task, 13)]
        assert a["status"] == b["status"] == "ok"
        assert a["dev"]["curve"] == b["dev"]["curve"] and a["metrics"] == b["metrics"]
        assert a["train_loss_curve"] == pytest.approx(b["train_loss_curve"], abs=1e-4)
    s_both = torch.load(states_both[1], weights_only=False)["states"]["fine-foods"]
    s_alone = torch.load(states_alone[0], weights_only=False)["states"]["fine-foods"]
    for key in ("sources", "private", "router", "head"):
        assert torch.allclose(s_both[key], s_alone[key], atol=1e-5), key


def test_tasks_batched_in_one_forward_pass_equal_each_task_passed_alone(compt_config):
    """A step's batch mixes the tasks of a set: each example's loss is its task's row's."""
    from replicate.backbones import BACKBONES
    from replicate.formulation import formulation
    from replicate.splits import Protocol, draw_split, resolve
    from replicate.tasks import resolve_task

    cfg = check_config(compt_config)
    method = METHODS.get("compt-ssum")
    mcfg = method.make_config(cfg["methods"]["compt-ssum"])
    spec = BACKBONES.get("tiny-bert")
    backbone, tok = spec.load()
    model = method.build_set(backbone, spec, tok, mcfg, [8, 13], ["bbc-topic", "fine-foods"]).eval()
    items, rows = [], []
    for t, name in enumerate(("bbc-topic", "fine-foods")):
        task = resolve_task(name)
        pools = task.load_pools(cfg["data_dir"])
        encoder = method.encoder(tok, task, mcfg, spec)
        for ex in resolve(draw_split(task, pools, 8, 8, Protocol(**cfg["protocol"])), pools)["train"][:3]:
            items.append(encoder.encode(ex))
            rows.append(2 + t)  # seed 13's rows
    f = formulation("mrc", resolve_task("bbc-topic"))
    with torch.no_grad():
        mixed = f.example_losses(model, f.collate(items, rows, 0))
        alone = torch.cat([f.example_losses(model, f.collate(items[i:i + 3], rows[i:i + 3], 0)) for i in (0, 3)])
    assert torch.allclose(mixed, alone, atol=1e-5)


def test_no_test_example_of_any_task_reaches_training_or_dev_selection(compt_config, tmp_path, monkeypatch):
    from replicate import multitask
    from replicate.formulation import MRC

    seen = {"train": [], "dev": [], "test": []}
    phase = {"now": "train"}
    collate, predict = MRC.collate, multitask.TaskSetTrainer._predict

    def spy_collate(self, items, rows, pad_id, device=None):
        seen[phase["now"]].extend(e.text for e in items)
        return collate(self, items, rows, pad_id, device)

    def spy_predict(self, keys, states, split):
        phase["now"] = split
        try:
            return predict(self, keys, states, split)
        finally:
            phase["now"] = "train"

    monkeypatch.setattr(MRC, "collate", spy_collate)
    monkeypatch.setattr(multitask.TaskSetTrainer, "_predict", spy_predict)
    cfg = check_config(compt_config)
    _, _, _, results = _run(cfg, [8, 13], tmp_path)
    assert all(r["status"] == "ok" for r in results.values())
    assert seen["train"] and seen["dev"] and seen["test"]
    test_texts = set(seen["test"])
    assert not test_texts & set(seen["train"]) and not test_texts & set(seen["dev"])


def test_with_select_on_dev_each_row_is_tested_on_its_best_dev_state_not_its_last(compt_config, tmp_path,
                                                                                  monkeypatch):
    """Dev is rigged to peak at epoch 1: every (seed, task) row is tested on, and saves, its
    epoch-1 state, though epoch 2 moved it."""
    from replicate import multitask

    states_of, score, predict = (multitask.TaskSetTrainer._states, multitask.TaskSetTrainer._score,
                                 multitask.TaskSetTrainer._predict)
    snapshots, calls, tested = [], {}, {}

    def spy_states(self, keys):
        out = states_of(self, keys)
        snapshots.append(dict(zip(keys, out)))
        return out

    def falling_dev(self, t, s, split, preds):
        metrics = score(self, t, s, split, preds)
        if split != "dev":
            return metrics
        calls[(s, t)] = calls.get((s, t), 0) + 1
        return {k: 1.0 / calls[(s, t)] for k in metrics}

    def spy_predict(self, keys, states, split):
        if split == "test":
            tested.update(zip(keys, states))
        return predict(self, keys, states, split)

    monkeypatch.setattr(multitask.TaskSetTrainer, "_states", spy_states)
    monkeypatch.setattr(multitask.TaskSetTrainer, "_score", falling_dev)
    monkeypatch.setattr(multitask.TaskSetTrainer, "_predict", spy_predict)
    cfg = check_config(compt_config)  # 2 epochs, dev after each, select_on_dev
    _, _, states, results = _run(cfg, [8], tmp_path)
    assert len(snapshots) == 3  # dev after epochs 1 and 2, then the last states
    epoch1, last = snapshots[0], snapshots[-1]
    saved = torch.load(states[0], weights_only=False)["states"]
    for t, task in enumerate(("bbc-topic", "fine-foods")):
        assert results[(task, 8)]["dev"]["best_epoch"] == 1
        assert not torch.equal(epoch1[(0, t)]["private"], last[(0, t)]["private"])
        for key, value in epoch1[(0, t)].items():
            assert torch.equal(tested[(0, t)][key], value) and torch.equal(saved[task][key], value), key


def test_the_masking_evaluation_scores_every_mask_and_its_total_is_the_tested_score(compt_config, tmp_path):
    cfg = check_config(compt_config)
    settings, splits, states, results = _run(cfg, [8, 13], tmp_path)
    prefix = str(tmp_path / "masking")
    masking_job(settings, [8, 13], splits, states, prefix, cfg["data_dir"], device="cpu")
    rows = list(csv.DictReader(open(f"{prefix}.csv")))
    masks = [r["mask"] for r in rows if r["evaluation"] == "mask" and r["task"] == "fine-foods" and r["seed"] == "8"]
    assert masks == ["src0", "src1", "all_src", "private", "total"]
    for (task, seed), r in results.items():
        total = [x for x in rows if (x["evaluation"], x["task"], x["seed"], x["mask"]) == ("mask", task, str(seed),
                                                                                           "total")]
        assert len(total) == 1 and float(total[0]["score"]) == pytest.approx(r["score"], abs=1e-3)
    assert {r["evaluation"] for r in rows} == {"mask"}
    masking_job(settings, [8, 13], splits, states, prefix + "-cross", cfg["data_dir"], device="cpu",
                evaluation="cross-task")
    cross = list(csv.DictReader(open(f"{prefix}-cross.csv")))
    assert {(r["prompt_task"], r["task"], r["seed"]) for r in cross} == {
        (a, b, s) for a, b in (("bbc-topic", "fine-foods"), ("fine-foods", "bbc-topic")) for s in ("8", "13")}
    confusion = list(csv.DictReader(open(f"{prefix}.confusion.csv")))
    n = sum(int(r["count"]) for r in confusion if (r["task"], r["seed"], r["mask"], r["evaluation"]) ==
            ("fine-foods", "8", "total", "mask"))
    assert n == results[("fine-foods", 8)]["split"]["sizes"]["test"]
    router = list(csv.DictReader(open(f"{prefix}.router.csv")))
    assert {r["source"] for r in router} == {"src0", "src1"}


# --- counts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, sources, length", [("compt-ssum", 2, 20), ("compt-msum", 3, 20),
                                                     ("compt-mcat", 2, 10)])
def test_parameter_counts_are_the_encoders_and_the_router_over_glues_eight_tasks(method, sources, length):
    """Each prompt: its rows and its own MLP encoder, n x 768 + 2 (768^2 + 768) on T5-base; a
    private prompt per task (MCAT's: M x m rows); the 8 x M router."""
    encoder = lambda n: n * 768 + 2 * (768 * 768 + 768)  # noqa: E731
    private = sources * length if method == "compt-mcat" else length
    out = count("compt", method)
    assert out["parts"] == {"sources": sources * encoder(length), "private": 8 * encoder(private),
                            "router": 8 * sources}
    assert out["trainable"] == sum(out["parts"].values())


# --- variants and sweeps -------------------------------------------------------------------

def test_a_config_declared_variant_trains_under_its_own_name_at_its_own_shots(compt_config):
    from replicate.methods.base import method_of, method_variant

    cfg = copy.deepcopy(compt_config)
    cfg["grid"]["shots"] = [8, 16]
    cfg["grid"]["methods"].append("compt-ssum-one-source")
    cfg["methods"]["compt-ssum-one-source"] = {**cfg["methods"]["compt-ssum"], "variant_of": "compt-ssum",
                                               "n_sources": 1, "shots": [16], "sweeps": ["compt_fig2"]}
    cfg = check_config(cfg)
    variant = METHODS.get("compt-ssum-one-source")
    assert variant.variant_of == "compt-ssum" and variant.multi_task and variant.rows == ()
    assert [(g.method, g.shot) for g in task_set_groups(cfg)] == [("compt-ssum", 8), ("compt-ssum", 16),
                                                                  ("compt-ssum-one-source", 16)]
    settings = task_set_settings(cfg, task_set_groups(cfg)[-1])
    assert settings["variant_of"] == "compt-ssum" and settings["method_config"]["n_sources"] == 1
    assert "variant_of" not in task_set_settings(cfg, task_set_groups(cfg)[0])  # other hashes stay as they were
    assert method_of(settings) is variant
    with pytest.raises(ConfigError, match="'compt-msum' is already a method"):
        method_variant("compt-msum", "compt-ssum")
    with pytest.raises(ConfigError, match="is itself a variant"):
        method_variant("compt-ssum-two-steps-away", "compt-ssum-one-source")


def test_a_sweep_figure_averages_each_runs_tasks_per_seed_then_the_seeds(tmp_path):
    from replicate.figures import compt_sweep
    from replicate.results import write_result

    paths = []
    for n, scores in ((1, {0: (50, 70), 1: (60, 80)}), (2, {0: (40, 40), 1: (50, 50)})):
        for seed, per_task in scores.items():
            for task, score in zip(("a", "b"), per_task):
                path = tmp_path / f"{n}-{seed}-{task}.json"
                settings = {"method_config": {"composition": "ssum", "task_set": "glue", "n_sources": n}}
                write_result(str(path), {"status": "ok", "method": f"compt-ssum-nsp{n}", "task": task, "seed": seed,
                                         "shot": 8, "score": score, "metric": "accuracy",
                                         "metrics": {"accuracy": score}, "provenance": {"settings": settings}})
                paths.append(str(path))
    compt_sweep(paths, str(tmp_path / "fig"), "n_sources")
    points = {int(r["x"]): r for r in csv.DictReader(open(tmp_path / "fig.csv"))}
    assert float(points[1]["mean"]) == 65.0 and float(points[1]["std"]) == pytest.approx(7.071, abs=1e-3)
    assert float(points[2]["mean"]) == 45.0 and points[2]["seeds"] == "2"


def test_the_sweeps_config_is_the_one_its_script_writes():
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("make_compt_sweeps", REPO / "config" / "make_compt_sweeps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (REPO / "config" / "paper-compt-sweeps.yaml").read_text() == module.sweeps_yaml()
    cfg = check_config(module.yaml.safe_load(module.sweeps_yaml()), check_data=False)
    fig2 = [g for g in task_set_groups(cfg) if "compt_fig2" in cfg["methods"][g.method]["sweeps"] and g.shot == 8]
    assert len(fig2) == 3 * 2 * 5  # 3 compositions x GLUE, SET2 x 5 numbers of sources
    assert {(g.tasks[0], cfg["methods"][g.method]["n_sources"]) for g in fig2 if "ssum" in g.method} == {
        (first, n) for first in ("cola", "imdb") for n in (1, 2, 3, 5, 10)}


def test_the_8_shot_config_is_the_embedded_default_at_another_shot():
    import yaml

    from conftest import REPO

    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    eight = yaml.safe_load((REPO / "config" / "compt-8shot.yaml").read_text())
    assert eight["protocol"] == default["protocol"] and eight["grid"]["shots"] == [8]
    assert {k: v for k, v in eight["grid"].items() if k not in ("shots", "methods")} == {
        k: v for k, v in default["grid"].items() if k not in ("shots", "methods")}
    for name in eight["grid"]["methods"]:
        assert eight["methods"][name] == default["methods"][name], name
