"""Black-box tuning: BBT, BBTv2 and MP2's black-box two-stage tuning on a tiny backbone."""

import math

import pytest
import torch

from replicate.backbones import BACKBONES
from replicate.blackbox import BlackBoxTuner, library_seed
from replicate.errors import ConfigError
from replicate.methods import METHODS
from replicate.methods.blackbox import clipped_std
from replicate.params import count
from replicate.splits import Protocol, draw_split, resolve
from replicate.tasks import TASKS
from replicate.train import SeedData

from test_mp2 import tiny_checkpoint

SEEDS = [8, 13]
SMALL = {"max_length": 40, "prompt_length": 3, "intrinsic_dim": 8, "popsize": 4}
MP2_SMALL = {**SMALL, "n_prompts": 4, "router_budget": 6, "init_points": 3, "router_eval_every": 2}


def seed_data(task, tokenizer, cfg, method, spec, seeds):
    """Each seed's encoded 8-shot split, encoded as the method encodes (its formulation)."""
    pools = task.load_pools("")
    enc = method.encoder(tokenizer, task, cfg, spec)
    out = []
    for s in seeds:
        parts = resolve(draw_split(task, pools, 8, s, Protocol(test_cap=16)), pools)
        out.append(SeedData(s, *(list(map(enc.encode, parts[k])) for k in ("train", "dev", "test"))))
    return out, enc


def tune(name, seeds, spy=None, keep_hooks=False, task="bbc-topic", **overrides):
    """Tune ``seeds`` together with a black-box method; ``spy(tuner)`` may wrap the tuner;
    ``keep_hooks``: leave the prompt hooks on the backbone (to evaluate more afterwards)."""
    spec = BACKBONES.get("tiny-bert")
    method = METHODS.get(name)
    base = MP2_SMALL if name.startswith("mp2") else SMALL
    cfg = method.make_config({"budget": 16, "eval_every": 4, **base, **overrides})
    backbone, tok = spec.load()
    task = TASKS.get(task)
    data, enc = seed_data(task, tok, cfg, method, spec, seeds)
    pretrained = tiny_checkpoint(spec, backbone, cfg.depth) if cfg.pretraining else None
    model = method.build(backbone, spec, tok, cfg, seeds, None, pretrained)
    tuner = BlackBoxTuner(model, method, cfg, task, enc, data, tok.pad_token_id, log=lambda m: None)
    if spy is not None:
        spy(tuner)
    outcomes = tuner.fit()
    for hook in model._hooks if not keep_hooks else ():
        hook.remove()
    return tuner, outcomes


def count_rows(tuner):
    """Record the number of rows of every training evaluation."""
    sizes = []
    original = tuner.evaluator.losses

    def losses(prompts, row_seed):
        sizes.append(len(row_seed))
        return original(prompts, row_seed)

    tuner.evaluator.losses = losses
    tuner.row_sizes = sizes


@pytest.mark.parametrize("name", ["bbt", "bbtv2", "mp2-shallow-black-box", "mp2-deep-black-box"])
def test_budget_counts_forward_calls_and_a_population_is_one_batch(name):
    tuner, outcomes = tune(name, SEEDS, spy=count_rows)
    depth = 1 if name in ("bbt", "mp2-shallow-black-box") else BACKBONES.get("tiny-bert").n_layers
    router = 6 if name.startswith("mp2") else 0
    cma_calls = (16 - router) // (4 * depth) * 4 * depth
    for o in outcomes:
        assert o.status == "ok", o.error
        assert sum(st["forward_calls"] for st in o.stages) == router + cma_calls
        assert "acc" in o.test_metrics and o.best_dev >= 0
    # every seed's candidates in one evaluation: 2 seeds x popsize rows, 2 x 1 for a BO step
    assert tuner.row_sizes == [2] * router + [2 * 4] * (cma_calls // 4)
    assert tuner.evaluator.calls == 2 * (router + cma_calls)


def test_batched_population_equals_one_member_at_a_time():
    tuner, _ = tune("bbt", [8, 13], keep_hooks=True, budget=8)
    space = tuner.spaces
    x = torch.randn(3, 1, 8, generator=torch.Generator().manual_seed(0)) * 100  # prompts of the scale of the states
    prompts = torch.cat([space[0].prompts(x), space[1].prompts(x)])
    together = tuner.evaluator.losses(prompts, [0, 0, 0, 1, 1, 1])
    alone = [tuner.evaluator.losses(prompts[i:i + 1], [s])[0] for i, s in enumerate([0, 0, 0, 1, 1, 1])]
    assert together == pytest.approx(alone, rel=1e-4)
    assert len(set(round(v, 6) for v in together)) == 6  # the rows really differ


@pytest.mark.parametrize("name", ["bbt", "mp2-deep-black-box"])
def test_a_seed_tunes_the_same_alone_or_in_a_group(name):
    _, both = tune(name, SEEDS)
    for i, seed in enumerate(SEEDS):
        _, alone = tune(name, [seed])
        assert [c for c, _ in alone[0].dev_curve] == [c for c, _ in both[i].dev_curve]
        assert [d for _, d in alone[0].dev_curve] == pytest.approx([d for _, d in both[i].dev_curve], abs=1e-9)
        assert alone[0].test_metrics == pytest.approx(both[i].test_metrics, abs=1e-9)


def test_optimisers_are_seeded_from_the_cell_seed():
    (_, a), (_, b), (_, c) = tune("mp2-shallow-black-box", [8]), tune("mp2-shallow-black-box", [8]), \
        tune("mp2-shallow-black-box", [13])
    assert a[0].loss_curve == b[0].loss_curve and a[0].dev_curve == b[0].dev_curve
    assert a[0].loss_curve != c[0].loss_curve
    assert library_seed(8, "cma-es/0") != library_seed(13, "cma-es/0") and library_seed(8, "x") > 0


@pytest.mark.parametrize("combine", ["mpmp", "paper"])
def test_mp2_stage_two_starts_from_the_router_chosen_on_dev(combine):
    """Stage II's CMA-ES starts from the z pre-fused by the router that stage I picked on dev,
    weighted in the pre-training's router form: MPMP's sigmoid / sum, or eq 1's binary / K."""
    starts, picked = {}, {}

    def spy(tuner):
        original = tuner.evaluate

        def evaluate(cands, vary_layer=None):
            for s, rows in cands.items():
                if rows[0].router is None and s not in starts:  # the first CMA-ES generation
                    starts[s] = tuner.spaces[s].base.clone()
                    picked[s] = tuner.best[s]  # stage I's pick on dev (no stage II check yet)
            return original(cands, vary_layer)

        tuner.evaluate = evaluate

    _, outcomes = tune("mp2-shallow-black-box", SEEDS, spy=spy, combine=combine, router_budget=8, init_points=4)
    z = tiny_checkpoint(BACKBONES.get("tiny-bert"), BACKBONES.get("tiny-bert").load()[0], "shallow")["z"].float()
    for s, o in enumerate(outcomes):
        stage1 = o.stages[0]
        assert stage1["name"] == "I: router" and stage1["forward_calls"] == 8 and "test_metrics" in stage1
        assert max(d for c, d in o.dev_curve if c <= 8) == stage1["best_dev"]
        router = picked[s].router[0]
        assert not torch.allclose(router, router.mean().expand_as(router))  # a real pick, not a uniform router
        if combine == "mpmp":
            w = torch.sigmoid(router) / torch.sigmoid(router).sum()
        else:
            w = (router > 0).float() / 4
        assert torch.allclose(starts[s][0], w @ z[0], atol=1e-5)
        assert not torch.allclose(starts[s][0], z[0].mean(0), atol=1e-5)  # the uniform router's fusion


def test_bbtv2_projection_scales_follow_the_features():
    tuner, _ = tune("bbtv2", [8])
    space = tuner.spaces[0]
    emb = tuner.model.backbone.get_input_embeddings().weight.double().std().item()
    cfg = tuner.cfg
    # layer 0: alpha * std_hat / (sqrt(d) * sigma), std_hat over the word embeddings (BBT)
    assert space.A[0].std().item() == pytest.approx(cfg.alpha * emb / (math.sqrt(cfg.intrinsic_dim) * cfg.sigma),
                                                    rel=0.05)
    assert not torch.equal(space.A[0], space.A[1])


@pytest.mark.parametrize("formulation", ["mlm", "mrc"])
def test_bbtv2_projections_beyond_layer_0_scale_with_the_hidden_states_entering_each_layer(formulation):
    """A_l (l >= 1) is N(0, alpha * std_l / (sqrt(d) * sigma_l)), std_l the clipped std of the
    hidden states entering layer l over the seed's training inputs (real tokens, no prompt;
    BBTv2 deepbbt.py:424-474): rebuilt here from its generator and the states, one example
    at a time (so no padding can enter), for each seed."""
    from replicate.methods.common import seed_generator

    tuner, _ = tune("bbtv2", SEEDS, formulation=formulation, sigma=1.0, sigma_deep=0.5)
    cfg, backbone = tuner.cfg, tuner.model.backbone
    emb = backbone.get_input_embeddings().weight.double().std().item()
    depth = BACKBONES.get("tiny-bert").n_layers
    for s, d in enumerate(tuner.data):
        states = [[] for _ in range(depth)]
        with torch.no_grad():
            for e in d.train:
                ids = torch.tensor([e.input_ids])
                out = backbone(input_ids=ids, token_type_ids=torch.tensor([e.token_type_ids]),
                               output_hidden_states=True)
                for layer in range(depth):
                    states[layer].append(out.hidden_states[layer][0])
        for layer in range(1, depth):
            std_l = clipped_std(torch.cat(states[layer]))
            assert abs(std_l - emb) > 0.5 * emb  # the two statistics differ: the test can tell them apart
            scale = cfg.alpha * std_l / (math.sqrt(cfg.intrinsic_dim) * cfg.sigmas(depth)[layer])
            want = torch.randn(cfg.intrinsic_dim, cfg.prompt_length * backbone.config.hidden_size,
                               generator=seed_generator(d.seed, f"projection/{layer}")) * scale
            torch.testing.assert_close(tuner.spaces[s].A[layer].cpu(), want, rtol=1e-4, atol=1e-7)


def test_clipped_std_clips_outliers():
    values = torch.cat([torch.zeros(1000), torch.tensor([1e6])])
    assert clipped_std(values) < 1.0 < values.std().item()


def test_params_give_mp2_table3_black_box_counts():
    assert count("mp2", "bbt")["trainable"] == 300
    assert count("mp2", "bbtv2")["trainable"] == 7200
    assert count("mp2", "mp2-shallow-black-box")["trainable"] == 308
    assert count("mp2", "mp2-deep-black-box")["trainable"] == 7392
    spec = BACKBONES.get("cpt-large")
    for name, routers in (("mp2-shallow-black-box", 8), ("mp2-deep-black-box", 192)):
        method = METHODS.get(name)
        assert method.view_parameters("stage1", spec, method.make_config()) == routers


@pytest.mark.parametrize("overrides, field", [({"popsize": 1}, "popsize"), ({"router_budget": 9000}, "router_budget"),
                                              ({"sigma": 0}, "sigma"), ({"pretraining": None}, "pretraining")])
def test_bad_black_box_config_is_one_clear_error(overrides, field):
    with pytest.raises(ConfigError, match=field):
        METHODS.get("mp2-shallow-black-box").make_config(overrides)


def test_optimiser_versions_are_in_provenance():
    from replicate.io import package_versions

    versions = package_versions()
    assert versions["cma"].startswith("4.") and versions["bayesian-optimization"].startswith("3.")


@pytest.mark.parametrize("name", ["mp2-shallow-black-box", "bbt", "bbtv2"])
def test_test_examples_never_steer_the_search(name):
    """Swapping every seed's test set for other examples changes nothing but the test score:
    the fitness reads the training set, selection the dev set, and stage I's test score (the
    Router-only row) is only recorded; in both formulations (MRC; BBT's label words)."""
    def swap_test(tuner):
        for d in tuner.data:
            d.test = list(reversed(d.dev)) + d.train[:3]

    _, plain = tune(name, SEEDS)
    _, swapped = tune(name, SEEDS, spy=swap_test)
    for a, b in zip(plain, swapped):
        assert a.loss_curve == b.loss_curve and a.dev_curve == b.dev_curve and a.best_epoch == b.best_epoch
        assert [st.get("best_call") for st in a.stages] == [st.get("best_call") for st in b.stages]


@pytest.mark.parametrize("name", ["bbt", "bbtv2", "mp2-shallow-black-box"])
def test_only_training_and_dev_examples_reach_the_model_before_testing(name):
    """Every example the formulation batches while the search runs (fitness, projection
    statistics, dev checks) is one of the seed's training or dev examples; test examples are
    batched only by ``BlackBoxTuner.test`` (the final test, and stage I's own for MP2)."""
    seen = {"search": [], "test": []}

    def spy(tuner):
        collate, test = tuner.formulation.collate, tuner.test
        phase = ["search"]

        def recording(items, *args, **kwargs):
            seen[phase[0]].extend(id(e) for e in items)
            return collate(items, *args, **kwargs)

        def testing(cands):
            phase[0] = "test"
            try:
                return test(cands)
            finally:
                phase[0] = "search"

        tuner.formulation.collate, tuner.test = recording, testing
        tuner.tested_ids = {id(e) for d in tuner.data for e in d.test}
        tuner.allowed_ids = {id(e) for d in tuner.data for e in d.train + d.dev}

    tuner, outcomes = tune(name, SEEDS, spy=spy)
    assert all(o.status == "ok" for o in outcomes)
    assert seen["search"] and set(seen["search"]) <= tuner.allowed_ids
    assert not set(seen["search"]) & tuner.tested_ids
    assert set(seen["test"]) == tuner.tested_ids  # and the test examples are all tested


def test_bounds_keep_base_plus_offset_inside_and_allow_a_base_outside():
    seen = []

    def spy(tuner):
        original = tuner.evaluate

        def evaluate(cands, vary_layer=None):
            for s, rows in cands.items():
                if rows[0].router is None:
                    seen.append((torch.stack([c.x for c in rows]), tuner.spaces[s].base.clone()))
            return original(cands, vary_layer)

        tuner.evaluate = evaluate

    bound = 0.05
    tune("mp2-deep-black-box", [8], spy=spy, bound=bound, sigma=1.0, sigma_deep=1.0)
    assert seen
    for x, base in seen:
        low, high = torch.minimum(base, torch.tensor(-bound)), torch.maximum(base, torch.tensor(bound))
        assert (x >= low - 1e-6).all() and (x <= high + 1e-6).all()
        assert (base.abs() > bound).any()  # the pre-trained base does lie outside somewhere


def test_a_seed_whose_losses_are_not_finite_fails_alone():
    def poison(tuner):
        tuner.model.head.weight[1] = float("nan")

    _, outcomes = tune("mp2-shallow-black-box", SEEDS, spy=poison)
    _, alone = tune("mp2-shallow-black-box", [SEEDS[0]])
    assert outcomes[1].status == "failed" and "not finite" in outcomes[1].error
    assert outcomes[0].status == "ok" and outcomes[0].dev_curve == alone[0].dev_curve
    assert outcomes[0].test_metrics == alone[0].test_metrics


def test_a_budget_below_one_round_is_refused_before_any_job(tiny_config):
    from replicate.config import check_config

    tiny_config["grid"]["methods"] = ["bbtv2"]
    tiny_config["methods"] = {"bbtv2": {"prompt_length": 4, "budget": 7, "popsize": 4, "pretraining": None}}
    depth = BACKBONES.get("tiny-bert").n_layers
    with pytest.raises(ConfigError, match=f"methods/bbtv2/budget: CMA-ES gets 7 calls, less than one generation "
                                          f"of 4 for each of the {depth} prompted layers"):
        check_config(tiny_config)


def test_every_seed_without_a_dev_pick_fails():
    """A budget below one generation (refused at config check, reachable by direct use) scores
    nothing on dev: every seed of the group fails, none is left "ok" without a test score."""
    _, outcomes = tune("bbt", [8, 13, 21], budget=2)
    assert [o.status for o in outcomes] == ["failed"] * 3
    assert all("no candidate was scored on dev" in o.error for o in outcomes)


def test_bayesian_optimisation_settings_reach_the_optimiser(monkeypatch):
    """Stage I's UCB kappa, router bound, random initial points and budget, as configured,
    are what each seed's Bayesian optimiser (seeded from the cell seed) gets and does."""
    import bayes_opt

    made = []

    class Recording(bayes_opt.BayesianOptimization):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.kwargs, self.calls, self.registered = kwargs, [], []
            made.append(self)

        def random_sample(self, *args, **kwargs):
            self.calls.append("random")
            return super().random_sample(*args, **kwargs)

        def suggest(self, *args, **kwargs):
            self.calls.append("suggest")
            return super().suggest(*args, **kwargs)

        def register(self, params, target):
            self.registered.append(dict(params))
            return super().register(params=params, target=target)

    monkeypatch.setattr(bayes_opt, "BayesianOptimization", Recording)
    tune("mp2-shallow-black-box", SEEDS, kappa=0.7, router_bound=2.5, init_points=3, router_budget=7)
    assert len(made) == len(SEEDS)
    for bo, seed in zip(made, SEEDS):
        assert bo.kwargs["random_state"] == library_seed(seed, "bayes-opt")
        assert bo.kwargs["acquisition_function"].kappa == 0.7
        assert set(bo.kwargs["pbounds"].values()) == {(-2.5, 2.5)} and len(bo.kwargs["pbounds"]) == 4  # 1 layer x K
        assert bo.calls == ["random"] * 3 + ["suggest"] * 4
        assert len(bo.registered) == 7 and all(-2.5 <= v <= 2.5 for p in bo.registered for v in p.values())
