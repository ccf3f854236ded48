"""MP2's router, modular prompts and two-stage tuning on a tiny backbone (real code paths)."""

import math

import pytest
import torch

from replicate.backbones import BACKBONES
from replicate.errors import ConfigError
from replicate.methods import METHODS
from replicate.methods.common import seed_generator
from replicate.model import PromptBank, RoutedPrompt
from replicate.params import count
from replicate.pretrain import PretrainConfig, build_model, checkpoint_tensors
from replicate.tasks import TASKS
from replicate.train import GroupTrainer

from test_seed_batching import seed_data

SEEDS = [8, 13]


def routed(logits, combine="paper", sample=True, seeds=(8,)):
    bank = PromptBank(torch.arange(len(seeds) * 1 * 3 * 2 * 4, dtype=torch.float).view(len(seeds), 1, 3, 2, 4))
    return RoutedPrompt(torch.tensor(logits, dtype=torch.float).view(len(seeds), 1, 3), bank, combine, 0.5, sample,
                        [seed_generator(s, "router-noise") for s in seeds])


def test_relaxed_bernoulli_sample_is_eqs_2_to_5():
    prompt = routed([0.3, -1.2, 2.0])
    w = prompt.weights()  # the router trains: gradients on, requires_grad
    u = torch.rand((1, 3), generator=seed_generator(8, "router-noise")).clamp(1e-6, 1 - 1e-6)
    alpha = torch.sigmoid(prompt.router[0].detach()) / (1 - torch.sigmoid(prompt.router[0].detach()))  # eq 5
    v = torch.log(alpha) + torch.log(u) - torch.log(1 - u)  # eq 3
    expected = torch.sigmoid(v / 0.5) / 3  # eq 4, then eq 1's 1/K
    assert torch.allclose(w[0], expected, atol=1e-6)
    w.sum().backward()
    assert prompt.router.grad is not None and prompt.router.grad.abs().sum() > 0


def test_inference_forms_paper_binarises_and_mpmp_normalises_the_sigmoid():
    logits = [0.3, -1.2, 2.0]
    with torch.no_grad():
        assert routed(logits).weights()[0, 0].tolist() == pytest.approx([1 / 3, 0.0, 1 / 3])
        mpmp = routed(logits, combine="mpmp").weights()[0, 0]
    sig = torch.sigmoid(torch.tensor(logits))
    assert torch.allclose(mpmp, sig / sig.sum())
    # a frozen router (stage II) takes its inference form even with gradients on
    frozen = routed(logits)
    frozen.router.requires_grad_(False)
    assert frozen.weights()[0, 0].tolist() == pytest.approx([1 / 3, 0.0, 1 / 3])
    # the layer's prompt is the weighted sum of the K prompts: eq 1
    with torch.no_grad():
        p = routed(logits)
        assert torch.allclose(p()[0, 0], (p.bank.weight[0, 0, 0] + p.bank.weight[0, 0, 2]) / 3)


def test_a_seed_draws_the_same_noise_alone_or_in_a_batch():
    both = routed([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], seeds=(8, 13)).weights()
    alone = routed([0.1, 0.2, 0.3], seeds=(13,)).weights()
    assert torch.equal(both[1], alone[0])


def tiny_checkpoint(spec, backbone, prompt="shallow", length=3):
    """An (untrained) pre-training checkpoint with the tiny backbone's shapes."""
    cfg = PretrainConfig(prompt=prompt, tasks=("bbc-topic", "bbc-title-topic"), prompt_length=length, n_prompts=4,
                         intrinsic_dim=8)
    model = build_model(backbone, spec, cfg)
    for hook in model._hooks:
        hook.remove()
    p = model.prompt
    with torch.no_grad():  # prompts of a useful size, as after pre-training
        p.bank.A.mul_(300.0)
        p.bank.z.mul_(300.0)
    raw = {"router": p.router.detach(), "z": p.bank.z.detach(), "A": p.bank.A.detach(),
           "head": model.head.weight.detach(), "tasks": list(cfg.tasks), "prompt_length": length,
           "d_model": spec.d_model}
    return checkpoint_tensors(raw)


def train_mp2(name, seeds, **overrides):
    spec = BACKBONES.get("tiny-bert")
    method = METHODS.get(name)
    cfg = method.make_config({"epochs": 4, "stage1_epochs": 2, "batch_size": 4, "max_length": 40,
                              "prompt_length": 3, "n_prompts": 4, "router_lr": 0.5, "lr": 0.05, "head_lr": 0.05,
                              **overrides})
    backbone, tok = spec.load()
    task = TASKS.get("bbc-topic")
    data, enc = seed_data(task, tok, cfg, method, seeds, spec.uses_cls)
    pretrained = tiny_checkpoint(spec, backbone, cfg.depth)
    model = method.build(backbone, spec, tok, cfg, seeds, None, pretrained)
    start = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    trainer = GroupTrainer(model, method, cfg, task, enc, data, tok.pad_token_id, log=lambda m: None)
    snapshots = []
    original = trainer._test_snapshots

    def spy(seeds_, states, *records):  # the parameters at the end of each stage
        snapshots.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return original(seeds_, states, *records)

    trainer._test_snapshots = spy
    outcomes = trainer.fit()
    return model, outcomes, start, snapshots, pretrained


@pytest.mark.parametrize("name", ["mp2-shallow", "mp2-deep"])
def test_two_stages_train_the_router_then_the_prompts(name):
    model, outcomes, start, (end_1, end_2), pretrained = train_mp2(name, SEEDS)
    router, bank, head = "prompt.router", "prompt.bank.weight", "head.weight"
    # both seeds start from the checkpoint's prompts and head, with their own routers
    assert torch.allclose(start[bank][0], pretrained["prompts"].float()) and torch.equal(start[bank][0], start[bank][1])
    assert torch.equal(start[head][1], pretrained["head"].float())
    assert not torch.equal(start[router][0], start[router][1])
    # stage I moves only the routers; stage II only the prompts and head
    assert not torch.equal(end_1[router], start[router])
    assert torch.equal(end_1[bank], start[bank]) and torch.equal(end_1[head], start[head])
    assert torch.equal(end_2[router], end_1[router])
    assert not torch.equal(end_2[bank], end_1[bank]) and not torch.equal(end_2[head], end_1[head])
    for o in outcomes:
        assert o.status == "ok"
        assert [s["name"] for s in o.stages] == ["I: router", "II: prompts"]
        assert o.stages[0]["epochs"] == [1, 2] and o.stages[1]["epochs"] == [3, 4]
        assert "acc" in o.stages[0]["test_metrics"] and "acc" in o.test_metrics


def test_paper_stage_two_tunes_only_the_selected_prompts():
    model, outcomes, start, (end_1, end_2), _ = train_mp2("mp2-shallow-eq1", SEEDS)
    selected = end_1["prompt.router"] > 0  # (seeds, layers, K)
    moved = (end_2["prompt.bank.weight"] != end_1["prompt.bank.weight"]).flatten(3).any(-1)
    # AdamW's weight decay also shrinks an unselected prompt, but no gradient reaches it:
    # its change is exactly the decay's
    decayed = torch.allclose(end_2["prompt.bank.weight"][~selected],
                             end_1["prompt.bank.weight"][~selected] * (1 - 0.05 * 0.01) ** 4, atol=1e-6)  # 2 epochs x 2 steps
    assert moved[selected].all() and decayed


def test_stage_one_alone_is_one_stage():
    _, outcomes, start, snapshots, _ = train_mp2("mp2-shallow", [8], stage1_epochs=4)
    assert [s["name"] for s in outcomes[0].stages] == ["I: router"] and len(snapshots) == 1
    assert torch.equal(snapshots[0]["prompt.bank.weight"], start["prompt.bank.weight"])


def test_batched_seeds_equal_solo_runs():
    _, both, *_ = train_mp2("mp2-deep", SEEDS)
    for i, seed in enumerate(SEEDS):
        _, alone, *_ = train_mp2("mp2-deep", [seed])
        assert [d for _, d in alone[0].dev_curve] == pytest.approx([d for _, d in both[i].dev_curve], abs=1e-9)
        assert alone[0].test_metrics["acc"] == pytest.approx(both[i].test_metrics["acc"], abs=1e-9)


def test_checkpoint_of_other_shape_is_one_clear_error():
    spec = BACKBONES.get("tiny-bert")
    backbone, tok = spec.load()
    method = METHODS.get("mp2-deep")
    cfg = method.make_config({"prompt_length": 3, "n_prompts": 4})
    with pytest.raises(ConfigError, match="shape"):
        method.build(backbone, spec, tok, cfg, [8], None, tiny_checkpoint(spec, backbone, "shallow"))


def test_config_refuses_paper_combine_without_sampling():
    with pytest.raises(ConfigError, match="sample_router"):
        METHODS.get("mp2-shallow").make_config({"sample_router": False, "combine": "paper"})
    with pytest.raises(ConfigError, match="sample_router"):
        METHODS.get("mp2-shallow-eq1").make_config({"sample_router": False})
    METHODS.get("mp2-shallow").make_config({"sample_router": False, "combine": "mpmp"})


def test_mpmp_router_form_is_the_default_and_eq1_the_ablation():
    """MP2 Table 3 came from MPMP's form (sigmoid / sum, never sampled downstream); the eq 1
    variants train from pre-trainings of their own form."""
    from replicate.pretrain import PretrainConfig

    for name in ("mp2-shallow", "mp2-deep", "mp2-shallow-w-fsl", "mp2-deep-wo-fsl"):
        cfg = METHODS.get(name).make_config({})
        assert (cfg.combine, cfg.sample_router) == ("mpmp", False) == (PretrainConfig().combine, False)
    for name, varies in (("mp2-shallow-eq1", "mp2-shallow"), ("mp2-deep-eq1", "mp2-deep")):
        method, base = METHODS.get(name), METHODS.get(varies)
        cfg = method.make_config({})
        assert (cfg.combine, cfg.sample_router, cfg.pretraining) == ("paper", True, name)
        assert method.ablation_of == varies and cfg.depth == base.make_config({}).depth


def test_params_give_mp2_table3_counts():
    shallow = count("mp2", "mp2-shallow")
    deep = count("mp2", "mp2-deep")
    assert shallow["stages"] == {"stage1_routers": 8, "stage2_one_prompt_per_layer": 50 * 1024,
                                 "stage2_all_prompts": 8 * 50 * 1024}
    assert deep["stages"] == {"stage1_routers": 24 * 8, "stage2_one_prompt_per_layer": 24 * 50 * 1024,
                              "stage2_all_prompts": 24 * 8 * 50 * 1024}
    # as MP2 Table 3 prints them: 50K~400K and 1.2M~9.6M (9.6M = 8 x the rounded 1.2M)
    assert shallow["range_printed"] == "51.2K∼410K" and deep["range_printed"].startswith("1.2M∼")
    assert math.isclose(deep["range"][1] / 1e6, 9.8304)
