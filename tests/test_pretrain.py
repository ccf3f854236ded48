"""MP2 pre-training: resumable to the same result, nothing of a downstream test pool or
few-shot pool in its data, UNSEEN TASK tasks refused, one clear line per bad entry."""

import copy
import json
import os

import pytest
import torch

from conftest import FIXTURES, HANG_GUARD_S, TINY_CONFIG
from replicate.config import check_config, pretrain_settings
from replicate.errors import ConfigError
from replicate.jobs import CHECKPOINT_FILE, RESUME_FILE, SUMMARY_FILE, load_pretrained, pretrain_job
from replicate.pretrain import held_out_texts, make_pretrain_config, upstream_data
from replicate.splits import Protocol, draw_split, few_shot_pool
from replicate.tasks import TASKS

UPSTREAM = ["bbc-topic", "bbc-title-topic", "bbc-next-sentence-choice", "bbc-quote-speaker", "tweet-source"]


def mp2_config(tmp_path, steps=6):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["protocol"]["downstream_reserve"] = 0.2
    cfg["grid"]["methods"] = ["mp2-shallow"]
    cfg["pretraining"] = {"mp2-shallow": {
        "prompt": "shallow", "tasks": UPSTREAM, "prompt_length": 3, "n_prompts": 4, "intrinsic_dim": 8,
        "steps": steps, "batch_size": 2, "router_lr": 0.01, "prompt_lr": 0.01, "eval_every": 3, "save_every": 2,
        "dev_cap": 4, "train_cap": 12, "max_length": 96}}
    cfg["methods"] = {"mp2-shallow": {"epochs": 2, "stage1_epochs": 1, "max_length": 48, "prompt_length": 3,
                                      "n_prompts": 4}}
    return check_config(cfg)


@pytest.mark.slow
def test_a_killed_pretraining_resumes_to_the_same_checkpoint(tmp_path):
    cfg = mp2_config(tmp_path)
    settings = pretrain_settings(cfg, "mp2-shallow", "tiny-bert")
    whole = pretrain_job(settings, str(tmp_path / "whole"), str(FIXTURES), device="cpu")
    assert not (tmp_path / "whole" / RESUME_FILE).exists()
    # killed after step 3: the resume checkpoint of step 2 survives, step 3 is lost
    assert pretrain_job(settings, str(tmp_path / "killed"), str(FIXTURES), device="cpu", stop_after=3) is None
    assert not (tmp_path / "killed" / CHECKPOINT_FILE).exists()
    saved = torch.load(tmp_path / "killed" / RESUME_FILE, weights_only=False)
    assert saved["progress"]["step"] == 2
    resumed = pretrain_job(settings, str(tmp_path / "killed"), str(FIXTURES), device="cpu")
    a = torch.load(tmp_path / "whole" / CHECKPOINT_FILE, weights_only=False)
    b = torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=False)
    for key in ("router", "z", "A", "head"):
        assert torch.equal(a[key], b[key]), key
    assert resumed["dev_curve"] == whole["dev_curve"] and resumed["best_step"] == whole["best_step"]
    summary = json.loads((tmp_path / "whole" / SUMMARY_FILE).read_text())
    assert [t["name"] for t in summary["tasks"]] == UPSTREAM
    assert len(summary["routers"]) == len(UPSTREAM) and len(summary["routers"][0][0]) == 4
    # a cell names its checkpoint's hash; a checkpoint of other settings is refused
    cell_settings = {"pretraining": settings}
    _, provenance = load_pretrained(cell_settings, str(tmp_path / "whole" / CHECKPOINT_FILE))
    assert provenance["sha256"] == summary["checkpoint"]["sha256"]
    other = pretrain_settings(mp2_config(tmp_path, steps=7), "mp2-shallow", "tiny-bert")
    with pytest.raises(ConfigError, match="other settings"):
        load_pretrained({"pretraining": other}, str(tmp_path / "whole" / CHECKPOINT_FILE))


def test_each_tasks_dev_score_is_reported_beside_its_constant_prediction(tmp_path, capsys):
    """A dev mean over tasks hides tasks stuck at one answer: the summary gives each task's
    best constant-prediction dev score on the dev slice it selected on (none for an
    extractive task), and each dev check's log line names the tasks above it."""
    import collections

    from replicate.pretrain import build_data

    cfg = mp2_config(tmp_path, steps=3)
    settings = pretrain_settings(cfg, "mp2-shallow", "tiny-bert")
    summary = pretrain_job(settings, str(tmp_path / "run"), str(FIXTURES), device="cpu")
    data, _ = build_data(settings, str(FIXTURES), log=lambda *a: None)
    checked = 0
    for entry in summary["tasks"]:
        dev = data[entry["name"]][1]
        assert entry["dev"] == len(dev)
        if TASKS.get(entry["name"]).kind == "extractive":
            assert entry["dev_constant"] is None
            continue
        labels = collections.Counter(ex.label for ex in dev)
        assert entry["dev_constant"] == pytest.approx(100 * max(labels.values()) / len(dev), abs=1e-3), entry
        checked += 1
    assert checked >= 3
    lines = [ln for ln in capsys.readouterr().err.splitlines() if " mean dev " in ln]
    assert len(lines) == len(summary["dev_curve"])
    constant = {e["name"]: e["dev_constant"] for e in summary["tasks"] if e["dev_constant"] is not None}
    for line, check in zip(lines, summary["dev_curve"]):
        above = [t for t, c in constant.items() if check["tasks"][t] > c]
        line = line.rsplit(" | ", 1)[0]  # what follows is the rate and ETA (tests/test_progress.py)
        assert line.endswith(f"above a constant prediction on {len(above)} of {checked} tasks"
                             + (f" ({', '.join(above)})" if above else "")), (line, check)


@pytest.mark.slow
def test_no_test_pool_or_few_shot_text_reaches_pretraining():
    """The embedded default's upstream suite: for every task, nothing of any downstream test
    pool, nor of an UNSEEN DATA task's few-shot pool (its reserve), is in its data, whole or
    as a piece; every few-shot draw of an UNSEEN DATA task comes from the reserve alone; no
    UNSEEN TASK task is an upstream task."""
    from replicate.config import load_config

    cfg = load_config("config/config.yaml")
    protocol = Protocol(**cfg["protocol"])
    data_dir = str(FIXTURES)
    held_out = held_out_texts("embedded", data_dir, protocol)
    downstream = [n for n in TASKS if TASKS.get(n).suite == "embedded" and TASKS.get(n).track != "upstream"]
    forbidden = set()
    for name in downstream:
        task = TASKS.get(name)
        pools = task.load_pools(data_dir)
        forbidden |= {ex.text for ex in pools.test}
        if task.track == "unseen-data":
            reserve = few_shot_pool(task, pools, protocol)
            forbidden |= {ex.text for ex in reserve}
            split = draw_split(task, pools, 2, 13, protocol)  # the fixture pools are small
            assert set(split["train"]) | set(split["dev"]) <= {ex.id for ex in reserve}
    joined = "\x00".join(forbidden)
    pcfg = make_pretrain_config("mp2-shallow", {**cfg["pretraining"]["mp2-shallow"], "train_cap": 300})
    assert len(pcfg.tasks) >= 12 and len({TASKS.get(t).family for t in pcfg.tasks}) >= 4
    checked = 0
    for name in pcfg.tasks:
        task = TASKS.get(name)
        assert task.track in ("unseen-data", "upstream")
        try:
            pools = task.load_pools(data_dir)
        except ValueError:  # pos-first-noun: the fixture corpora carry no part-of-speech tags
            continue
        train, dev = upstream_data(task, pools, protocol, held_out, pcfg)
        for ex in train + dev:
            for text in (ex.text, ex.text_b, *(ex.options or ())):
                assert text not in forbidden
                assert text is None or len(text) < 20 or text not in joined, (name, text)
        checked += 1
    assert checked >= len(pcfg.tasks) - 1


def test_unseen_task_tasks_and_bad_entries_are_one_clear_line(tmp_path):
    cfg = mp2_config(tmp_path)
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mp2-shallow"]["tasks"] = ["bbc-topic", "spam-detection"]
    with pytest.raises(ConfigError, match="spam-detection is an UNSEEN TASK task"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    del bad["pretraining"]["mp2-shallow"]
    with pytest.raises(ConfigError, match="no pre-training named 'mp2-shallow'"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["protocol"]["downstream_reserve"] = None
    with pytest.raises(ConfigError, match="downstream_reserve"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mp2-shallow"]["router_lr"] = 0
    with pytest.raises(ConfigError, match="pretraining/mp2-shallow/router_lr"):
        check_config(bad)
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mp2-shallow"]["steps_per_task"] = 3
    with pytest.raises(ConfigError, match="unknown field"):
        check_config(bad)


def test_mpt_sources_pretrain_on_their_whole_training_pools_without_a_downstream_reserve():
    """MPT's source tasks (track "source") are targets trained on the same training sets (MPT
    Table 1's MNLI, QQP, QNLI, SST-2; "the source prompt learning still uses the full set of
    the source tasks", App. A): config/paper-mpt.yaml pre-trains on them with no downstream
    reserve, every training row of a source is upstream data (its dev slice or its training
    part), and no test text of the suite is. A target that is no source (BoolQ) is refused."""
    import yaml

    from conftest import REPO, t2t_files
    from replicate.config import pretrain_settings
    from replicate.pretrain import build_data
    from replicate.tasks import resolve_task
    from replicate.tasks.text2text import TEXT2TEXT_TASKS

    cfg = yaml.safe_load((REPO / "config" / "paper-mpt.yaml").read_text())
    cfg["paper_data_files"] = t2t_files(*[t.name for t in TEXT2TEXT_TASKS])  # held_out_texts reads every task's
    cfg = check_config(cfg, check_data=False)
    assert cfg["protocol"].get("downstream_reserve") is None
    sources = cfg["pretraining"]["mpt-12-sources"]["tasks"]
    assert {TASKS.get(t).track for t in sources} == {"source"} and len(sources) == 12
    data, _ = build_data(pretrain_settings(cfg, "mpt", "t5-base"), str(FIXTURES), log=lambda *a: None)
    files = cfg["paper_data_files"]
    test_texts = {x for t in TEXT2TEXT_TASKS for ex in resolve_task(t.name, files).load_pools("").test
                  for x in (ex.text, ex.text_b) if x is not None}
    for name in cfg["pretraining"]["mpt"]["tasks"]:
        train, dev = data[name]
        assert {ex.id for ex in train + dev} == {ex.id for ex in resolve_task(name, files).load_pools("").train}, name
        assert len(dev) == 3  # min(ceil(0.1 x 24), 1000)
        assert not {x for ex in train + dev for x in (ex.text, ex.text_b)} & test_texts
    bad = copy.deepcopy(cfg)
    bad["pretraining"]["mpt-teachers"]["tasks"] = ["mnli", "boolq"]
    with pytest.raises(ConfigError, match="boolq is an UNSEEN TASK task"):
        check_config(bad, check_data=False)


# ---------------------------------------------------------------------------------------
# dev slice (MPMP's rule), the bounded encoding cache, FSL groups, task sampling

import math
from types import SimpleNamespace

from replicate.pretrain import (ENCODING_CACHE, EncodingCache, HeldOut, TaskSampler, asdict_config, build_model,
                                check_upstream_tasks, data_settings_of, dev_size, run_pretraining)
from replicate.tasks.base import Example


def mpmp_test_size(n):
    """MPMP ``Deep/dataloader.py:104``, as HF ``train_test_split`` counts it: a float test
    size rounds up, an int is the count."""
    test_size = .1 if n < 122880 else 12288
    return math.ceil(test_size * n) if isinstance(test_size, float) else test_size


def test_the_paper_dev_slice_is_mpmps_10_percent_or_12288():
    for n in (1, 9, 10, 11, 1005, 99_999, 122_870, 122_879, 122_880, 122_881, 130_000, 1_000_000, 13_000_000):
        assert dev_size(n, 0.1, 12288) == mpmp_test_size(n), n
    # without dev_max: the rule the embedded default's data were built with, unchanged
    assert [dev_size(n, 0.1, None) for n in (1, 1005, 1015, 200_000)] == [1, 100, 102, 20_000]
    from replicate.config import load_config

    cfg = load_config("config/paper.yaml")
    for name, values in cfg["pretraining"].items():
        pcfg = make_pretrain_config(name, values)
        assert (pcfg.dev_fraction, pcfg.dev_max) == (0.1, 12288), name


def upstream_fixture(n, held=()):
    task = SimpleNamespace(name="toy", track="upstream")
    pools = SimpleNamespace(train=[Example(id=f"e{i:03d}", text=f"text number {i}", label=0, options=("a", "b"))
                                   for i in range(n)])
    return task, pools, HeldOut(set(held), substrings=False)


@pytest.mark.parametrize("n, n_dev", [(8, 2), (11, 3), (12, 3), (13, 3), (40, 3)])
def test_dev_max_straddles_its_threshold_and_the_rest_trains(n, n_dev):
    """dev_fraction 0.25 with dev_max 3: MPMP's rule with threshold 12 (= 3 / 0.25): below
    it ceil(n / 4), from it 3; every other example trains (dev_cap, by contrast, drops)."""
    task, pools, held = upstream_fixture(n)
    cfg = make_pretrain_config("toy", {"tasks": ["toy"], "dev_fraction": 0.25, "dev_max": 3})
    train, dev = upstream_data(task, pools, Protocol(), held, cfg)
    assert len(dev) == n_dev == (math.ceil(0.25 * n) if n < 12 else 3)
    assert len(train) == n - n_dev
    assert {ex.id for ex in train} | {ex.id for ex in dev} == {ex.id for ex in pools.train}
    capped = make_pretrain_config("toy", {"tasks": ["toy"], "dev_fraction": 0.25, "dev_cap": 3})
    train, dev = upstream_data(task, pools, Protocol(), held, capped)
    assert len(dev) == min(3, round(0.25 * n)) and len(train) == n - round(0.25 * n)


def test_the_dev_slice_of_dev_max_leaves_out_held_out_texts():
    held_texts = [f"text number {i}" for i in range(0, 40, 3)]
    task, pools, held = upstream_fixture(40, held_texts)
    cfg = make_pretrain_config("toy", {"tasks": ["toy"], "dev_fraction": 0.25, "dev_max": 6})
    train, dev = upstream_data(task, pools, Protocol(), held, cfg)
    assert not {ex.text for ex in train + dev} & set(held_texts)
    assert len(train) + len(dev) == 40 - len(held_texts) and 0 < len(dev) <= 6


def test_dev_max_is_checked_and_left_out_of_the_settings_while_null():
    with pytest.raises(ConfigError, match=r"^config pretraining/toy/dev_max: must be >= 1, not 0$"):
        make_pretrain_config("toy", {"tasks": ["toy"], "dev_max": 0})
    plain = asdict_config(make_pretrain_config("toy", {"tasks": ["toy"]}))
    assert "dev_max" not in plain  # configs without it keep their settings hash (and data)
    settings = {"pretraining": "toy", "protocol": {}, "data_files": {}}
    assert "dev_max" not in data_settings_of({**settings, "config": plain})["config"]
    mpmp = asdict_config(make_pretrain_config("toy", {"tasks": ["toy"], "dev_max": 12288}))
    assert data_settings_of({**settings, "config": mpmp})["config"]["dev_max"] == 12288


def test_the_encoding_cache_holds_at_most_its_limit_least_recently_used_out():
    cache = EncodingCache(3)
    made = []

    def get(key):
        return cache.get(key, lambda: made.append(key) or f"enc {key}")

    for key in "abcab":
        assert get(key) == f"enc {key}"
        assert len(cache) <= 3
    assert made == list("abc") and cache.stats() == {"limit": 3, "peak": 3, "hits": 2, "misses": 3}
    get("d")  # c is the least recently used
    assert list(cache.items) == list("abd")
    for key in "efghij":
        get(key)
        assert len(cache) <= 3
    assert cache.peak == 3 and len(EncodingCache(None).items) == 0
    with pytest.raises(ValueError):
        EncodingCache(0)


TOY_TASKS = ["bbc-topic", "sentence-polarity", "hedge-detection"]


@pytest.fixture(scope="module")
def tiny_bert():
    from replicate.backbones import BACKBONES

    spec = BACKBONES.get("tiny-bert")
    backbone, tokenizer = spec.load()
    return spec, backbone, tokenizer


def toy_run(tiny_bert, resume_path=None, cache_limit=ENCODING_CACHE, stop_after=None, log=lambda *a: None, **values):
    """A pre-training of the tiny backbone on 10 training and 4 dev examples of 3 tasks."""
    spec, backbone, tokenizer = tiny_bert
    values = {"prompt": "shallow", "tasks": TOY_TASKS, "prompt_length": 3, "n_prompts": 4, "intrinsic_dim": 8,
              "steps": 4, "batch_size": 2, "router_lr": 0.01, "prompt_lr": 0.001, "head_lr": 0.1, "eval_every": 4,
              "save_every": 2, "max_length": 64, **values}
    cfg = make_pretrain_config("toy", values)
    tasks = check_upstream_tasks("toy", cfg)
    data = {}
    for task in tasks:
        pool = sorted(task.load_pools(str(FIXTURES)).train, key=lambda ex: ex.id)
        data[task.name] = (pool[:10], pool[10:14])
    out = run_pretraining(cfg, spec, backbone, tokenizer, tasks, data, resume_path, "toy-hash", log=log,
                          stop_after=stop_after, cache_limit=cache_limit)
    return cfg, out


def test_a_bounded_encoding_cache_gives_the_same_pretraining(tiny_bert, tmp_path):
    """18 steps of 2 over 3 x (10 + 4) examples: the unbounded cache ends up holding all
    42; a limit of 5 re-encodes and ends with the same curves and tensors, also when killed
    and resumed."""
    run = dict(steps=18, eval_every=6, save_every=6)
    _, whole = toy_run(tiny_bert, cache_limit=None, **run)
    _, bounded = toy_run(tiny_bert, cache_limit=5, **run)
    assert whole["encoding_cache"]["peak"] == 42 and whole["encoding_cache"]["misses"] == 42
    assert bounded["encoding_cache"]["peak"] == 5 and bounded["encoding_cache"]["misses"] > 42
    resume = str(tmp_path / "resume.pt")
    toy_run(tiny_bert, resume, cache_limit=5, stop_after=9, **run)
    saved = torch.load(resume, weights_only=False)
    del saved["progress"]["task_steps"]  # a resume file of the code before steps were counted per task
    torch.save(saved, resume)
    _, resumed = toy_run(tiny_bert, resume, cache_limit=5, **run)
    assert resumed["task_steps"] is None
    for other in (bounded, resumed):
        assert other["loss_curve"] == whole["loss_curve"] and other["dev_curve"] == whole["dev_curve"]
        assert other["best_step"] == whole["best_step"]
        for key, value in whole["state"].items():
            assert torch.equal(other["state"][key], value), key


def initial_tensors(tiny_bert, cfg):
    spec, backbone, _ = tiny_bert
    model = build_model(backbone, spec, cfg)
    for hook in model._hooks:
        hook.remove()
    return {"router": model.prompt.router.detach().clone(), "z": model.prompt.bank.z.detach().clone(),
            "A": model.prompt.bank.A.detach().clone(), "head": model.head.weight.detach().clone()}


@pytest.fixture(scope="module")
def one_step(tiny_bert):
    """One AdamW step of deep MP2 with three rates (router 1e-2, z and A 1e-3, head 1e-1) and
    of shallow MP2 with the head at the prompts' rate (head_lr null). AdamW's first step
    moves an entry by lr * |g| / (|g| + 1e-8) (the weight decay adds lr * 0.01 * |p|), so a
    tensor's largest move is at most its group's lr and near it where its gradients are
    well above 1e-8; the routers' are ~1e-8 at their U(-1e-3, 1e-3) start (they move by
    0.67-0.75 of their lr). The rates are 10x apart, so a tensor in another group fails."""
    out = {}
    for name, values in {"deep": {"prompt": "deep"}, "shallow": {"head_lr": None}}.items():
        cfg, run = toy_run(tiny_bert, steps=1, eval_every=1, **values)
        before = initial_tensors(tiny_bert, cfg)
        out[name] = (cfg, {key: (run["state"][key] - before[key]).abs().max().item() for key in before})
    return out


def test_fsl_parameter_groups_router_prompts_and_head_learn_at_their_rates(one_step):
    for cfg, moved in one_step.values():
        head_lr = cfg.prompt_lr if cfg.head_lr is None else cfg.head_lr
        for key, lr in (("router", cfg.router_lr), ("z", cfg.prompt_lr), ("A", cfg.prompt_lr), ("head", head_lr)):
            assert 0.5 * lr < moved[key] < 1.1 * lr, (cfg.prompt, key, moved[key], lr)


def test_gradients_reach_both_z_and_A(one_step):
    for cfg, moved in one_step.values():
        assert moved["z"] > 0.5 * cfg.prompt_lr and moved["A"] > 0.5 * cfg.prompt_lr, (cfg.prompt, moved)


def test_tasks_are_drawn_uniformly_and_independently():
    draws = TaskSampler(5, 42)
    rows = [draws.next()[0][0] for _ in range(5000)]
    counts = [rows.count(r) for r in range(5)]
    assert all(900 < c < 1100 for c in counts), counts  # 1000 expected, sd 28
    pairs = [(a, b) for a, b in zip(rows, rows[1:])]
    transitions = [pairs.count((a, b)) for a in range(5) for b in range(5)]
    assert all(140 < c < 260 for c in transitions), transitions  # 200 expected, sd 13: not round-robin
    again = TaskSampler(5, 42)
    assert [again.next()[0][0] for _ in range(50)] == rows[:50]  # seeded


def test_one_proportional_draws_one_task_per_step_in_proportion_to_its_examples():
    """MPT's teachers (per-task PT prompts in one run): each step is one task's full batch,
    the task drawn by its share of the training examples, so every prompt sees its own data
    about as many epochs as the others."""
    draws = TaskSampler(3, 42, "one-proportional", sizes=[6000, 3000, 1000], batch_size=32)
    plans = [draws.next() for _ in range(5000)]
    assert all(len(p) == 1 and p[0][1] == 32 for p in plans)
    counts = [sum(p[0][0] == r for p in plans) for r in range(3)]
    assert 2850 < counts[0] < 3150 and 1380 < counts[1] < 1620 and 420 < counts[2] < 580, counts


def test_the_loop_takes_its_tasks_from_the_sampler(tiny_bert):
    cfg, out = toy_run(tiny_bert, steps=30, eval_every=30)
    sampler = TaskSampler(len(TOY_TASKS), cfg.seed)
    rows = [sampler.next()[0][0] for _ in range(30)]
    expected = [rows.count(r) for r in range(len(TOY_TASKS))]
    assert out["task_steps"] == expected and expected != [10, 10, 10] and min(expected) > 0


@pytest.mark.parametrize("combine", ["mpmp", "paper"])
def test_the_routers_form_is_the_configs_at_dev_selection(tiny_bert, monkeypatch, combine):
    """A pre-training's dev checks weigh its modular prompts in its own router form (MPMP's
    sigmoid / sum, or eq 1's binary / K for the mp2-*-eq1 ablation), the form its
    downstream methods must share (config check)."""
    import replicate.model as model

    seen = []
    original = model.inference_weights

    def recording(logits, form):
        seen.append(form)
        return original(logits, form)

    monkeypatch.setattr(model, "inference_weights", recording)
    _, out = toy_run(tiny_bert, combine=combine)
    assert seen and set(seen) == {combine}
    assert out["dev_curve"]


def test_held_out_texts_are_those_of_the_pretrainings_language(monkeypatch):
    """MP2's Chinese pre-training holds out the Chinese paper tasks' texts and never loads
    the English tasks of ATTEMPT's suite (their Hub data); an English pre-training (MPT's
    source training, next) holds out theirs: a test text of MNLI is in it."""
    from conftest import paper_files, t2t_files
    from replicate.tasks.text2text import TEXT2TEXT_TASKS

    protocol = Protocol(downstream_reserve=1.0)
    zh = [n for n in TASKS if TASKS.get(n).suite == "paper" and TASKS.get(n).language == "zh"
          and TASKS.get(n).track != "upstream"]
    held = held_out_texts("paper", str(FIXTURES), protocol, paper_files(*zh), languages={"zh"})  # no Hub: never en
    from replicate.tasks import resolve_task

    chnsent_test = resolve_task("chnsent", paper_files("chnsent")).load_pools(str(FIXTURES)).test[0].text
    assert chnsent_test in held
    english = [t.name for t in TEXT2TEXT_TASKS]
    held_en = held_out_texts("paper", str(FIXTURES), protocol, t2t_files(*english), languages={"en"})
    mnli_test = resolve_task("mnli", t2t_files("mnli")).load_pools(str(FIXTURES)).test[0].text
    assert mnli_test in held_en and chnsent_test not in held_en


def test_a_linear_schedule_resumes_at_the_step_it_was_killed(tiny_bert, tmp_path, monkeypatch):
    """lr_schedule linear with warm-up (MPT's teachers, as ATTEMPT's prompt tuning): each step's
    rate is the base rate times transformers' factor for that step, and a run killed after
    step 3 resumes to the same tensors and curves as one never killed (the resume state holds
    the scheduled rates; the base rates must not be read from it)."""
    run = dict(prompt="single", steps=8, eval_every=4, save_every=1, lr_schedule="linear", warmup_steps=2)
    seen = []
    real_step = torch.optim.AdamW.step

    def record(self, *args, **kwargs):
        seen.append([round(g["lr"], 8) for g in self.param_groups])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", record)
    cfg, whole = toy_run(tiny_bert, **run)
    factors = [0.0, 0.5, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]  # warm-up 2 of 8, then linear to 0
    assert seen == [[round(cfg.prompt_lr * f, 8), round(cfg.head_lr * f, 8)] for f in factors]
    resume = str(tmp_path / "resume.pt")
    toy_run(tiny_bert, resume, stop_after=3, **run)
    seen.clear()
    _, resumed = toy_run(tiny_bert, resume, **run)
    assert seen == [[round(cfg.prompt_lr * f, 8), round(cfg.head_lr * f, 8)] for f in factors[3:]]
    assert resumed["loss_curve"] == whole["loss_curve"] and resumed["dev_curve"] == whole["dev_curve"]
    for key, value in whole["state"].items():
        assert torch.equal(resumed["state"][key], value), key


# --- a pre-training killed between dev checks resumes to the same pretrain.json (issue 23) ---

KILLED_RUN = {"tasks": TOY_TASKS, "steps": 8, "eval_every": 3, "save_every": 1}


def run_in_process(argv, cwd):
    """``python -m replicate *argv`` in this process, as the subprocess would run it: the same
    working directory (pretrain.json's paths are relative to it) and sys.argv (its provenance
    names it)."""
    import os
    import sys

    from replicate.cli import main

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(sys, "argv", [os.path.join("replicate", "__main__.py"), *argv])
        return main(argv)


@pytest.fixture(scope="module")
def killed_job(tmp_path_factory):
    """(the pretrain command, its working directory, its output folder, the bytes of the
    pretrain.json of a run never killed in that same folder, since removed). Its data node
    is 10 training and 4 dev examples of each toy task, written here (building it would
    take a while)."""
    import shutil

    from replicate.pretrain import check_upstream_tasks, data_settings_of, write_data

    work = tmp_path_factory.mktemp("killed")
    cfg = mp2_config(work)
    cfg["pretraining"]["mp2-shallow"].update(KILLED_RUN)
    settings = pretrain_settings(check_config(cfg), "mp2-shallow", "tiny-bert")
    tasks = check_upstream_tasks("mp2-shallow", make_pretrain_config("mp2-shallow", settings["config"]))
    data = {}
    for task in tasks:
        pool = sorted(task.load_pools(str(FIXTURES)).train, key=lambda ex: ex.id)
        data[task.name] = (pool[:10], pool[10:14])
    write_data(str(work / "data"), data_settings_of(settings), data, tasks)
    out = work / "results" / "pretrain"
    argv = ["pretrain", "--settings", json.dumps(settings), "--data-dir", str(FIXTURES), "--data", str(work / "data"),
            "--out-dir", str(out), "--device", "cpu"]
    assert run_in_process(argv, work) == 0
    whole = (out / SUMMARY_FILE).read_bytes()
    shutil.rmtree(out)
    return argv, work, out, whole


def kill_between_dev_checks(argv, cwd, out, signum, eval_every):
    """Run ``python -m replicate *argv`` until a resume state between two dev checks is on
    disk; stop the process there (SIGSTOP, so the check and the kill see the same state),
    send ``signum`` and let it act. (the exit code, stderr, the resume state's step)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's package, wherever the job runs
    with open(cwd / "killed.log", "w+") as log:
        job = subprocess.Popen([sys.executable, "-m", "replicate", *argv], cwd=cwd, stderr=log, env=env)
        try:
            deadline = time.monotonic() + HANG_GUARD_S
            while True:
                assert job.poll() is None, "the run ended before it could be killed between dev checks"
                assert time.monotonic() < deadline
                if (out / RESUME_FILE).exists():
                    job.send_signal(signal.SIGSTOP)
                    step = torch.load(out / RESUME_FILE, weights_only=False)["progress"]["step"]
                    if step % eval_every:
                        break
                    job.send_signal(signal.SIGCONT)  # at a dev check: let it go on
                time.sleep(0.002)
            job.send_signal(signum)
            job.send_signal(signal.SIGCONT)
            job.wait(timeout=HANG_GUARD_S)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        log.seek(0)
        return job.returncode, log.read(), step


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGKILL"])
def test_a_pretraining_killed_between_dev_checks_reruns_to_the_same_pretrain_json(killed_job, signum):
    """Killed (scancel's SIGTERM, or kill -9) after a resume state saved between two dev
    checks, where the loss window since the last check is only in that state, and rerun in
    the same folder: pretrain.json is byte for byte the uninterrupted run's; the time and the
    step it resumed at are in pretrain.time.json. SIGTERM exits 143 and leaves no .part and
    no lock file; kill -9 leaves the dead job's locks, which do not stop the rerun."""
    import shutil
    import signal

    from replicate.jobs import TIME_FILE

    argv, work, out, whole = killed_job
    shutil.rmtree(out, ignore_errors=True)  # the folder the uninterrupted run wrote in, as that run found it
    code, err, step = kill_between_dev_checks(argv, work, out, getattr(signal, signum), KILLED_RUN["eval_every"])
    assert step % KILLED_RUN["eval_every"] and 0 < step < KILLED_RUN["steps"]
    assert not (out / SUMMARY_FILE).exists() and (out / RESUME_FILE).exists()
    if signum == "SIGTERM":
        assert code == 143 and "replicate: terminated (SIGTERM)" in err and "Traceback" not in err, err
        assert list(work.rglob("*.part")) == [] and list(work.rglob("*.lock")) == []
    else:
        assert code == -signal.SIGKILL and (out / f".{SUMMARY_FILE}.lock").exists()
    assert run_in_process(argv, work) == 0
    assert (out / SUMMARY_FILE).read_bytes() == whole
    timing = json.loads((out / TIME_FILE).read_text())
    assert timing["resumed_at_step"] == step and timing["wall_time_s"] > 0
    assert not (out / RESUME_FILE).exists() and list(work.rglob("*.part")) == []


# --- a damaged resume state or checkpoint (issue 23) ---


def cut_in_half(path):
    """What a copy cut short leaves: the file's first half."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("damage", [
    lambda data: data[:len(data) // 2],  # a cut archive: torch reads past its end (OSError)
    lambda data: data[:300],  # only its head: no zip directory (torch's RuntimeError)
    lambda data: b"",  # EOFError
    lambda data: b"not a torch file" * 8,  # pickle's UnpicklingError
], ids=["half", "head", "empty", "text"])
def test_a_damaged_torch_file_is_one_data_error_naming_it(tmp_path, damage):
    from replicate.errors import DataError
    from replicate.io import load_torch

    path = tmp_path / "states.pt"
    torch.save({"z": torch.zeros(64, 64)}, path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=f"^states {path} cannot be read \\(.*\\); it is truncated or corrupted: "
                                        "rerun the job$"):
        load_torch(path, "states", "rerun the job", weights_only=False)


def test_a_damaged_resume_state_is_a_warning_and_the_run_starts_afresh(tiny_bert, tmp_path):
    _, whole = toy_run(tiny_bert)
    resume = tmp_path / RESUME_FILE
    toy_run(tiny_bert, str(resume), stop_after=3)
    cut_in_half(resume)
    said = []
    _, rerun = toy_run(tiny_bert, str(resume), log=said.append)
    warnings = [line for line in said if line.startswith("warning:")]
    assert len(warnings) == 1 and f"resume state {resume} cannot be read" in warnings[0], said
    assert "truncated or corrupted: starting afresh" in warnings[0] and rerun["resumed_at_step"] is None
    assert rerun["loss_curve"] == whole["loss_curve"] and rerun["dev_curve"] == whole["dev_curve"]
    for key, value in whole["state"].items():
        assert torch.equal(rerun["state"][key], value), key


def test_a_damaged_checkpoint_is_one_line_naming_it(capsys, tmp_path):
    """A cell whose pre-training checkpoint was cut short: one line naming the file and the
    job to rerun, exit code 2, no cell; the same for a distilling run's teachers."""
    import yaml

    from types import SimpleNamespace

    from replicate.cli import main
    from replicate.config import pretrain_dir
    from replicate.errors import DataError
    from replicate.jobs import load_teachers

    cfg = mp2_config(tmp_path)
    config = tmp_path / "mp2.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["split", "--config", str(config), "--task", "bbc-topic", "--shot", "8", "--seeds", "8"]) == 0
    checkpoint = tmp_path / pretrain_dir(cfg, "mp2-shallow", "tiny-bert") / CHECKPOINT_FILE
    checkpoint.parent.mkdir(parents=True)
    torch.save({"z": torch.zeros(64, 64), "settings_hash": "h"}, checkpoint)
    cut_in_half(checkpoint)
    capsys.readouterr()
    code = main(["train", "--config", str(config), "--method", "mp2-shallow", "--task", "bbc-topic", "--shot", "8",
                 "--seeds", "8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"replicate: pre-training mp2-shallow: checkpoint {checkpoint} cannot be read (")
    assert err.endswith("truncated or corrupted: delete it and rerun the pretrain job")
    assert not (tmp_path / "results" / "cells").exists()
    settings = {"pretraining": "mpt", "teachers": {"settings_hash": "h"}}
    with pytest.raises(DataError, match=f"teachers 'mpt-teachers': checkpoint {checkpoint} cannot be read .*"
                                        "rerun the pretrain job of 'mpt-teachers'"):
        load_teachers(settings, SimpleNamespace(teachers="mpt-teachers", teacher_files=None), str(checkpoint))


# --- temporary files left by a job killed with -9 (issue 23) ---


def test_a_job_removes_the_stale_temporary_files_of_its_own_outputs_only(tmp_path):
    """kill -9 during an atomic write leaves ``.<name>.<8 characters>.part``; the next job
    that owns ``<name>`` removes it, and nothing else: not another output's, nor a file that
    only looks alike, nor the temporary file of a job that holds the output now."""
    import socket

    from replicate.errors import DataError
    from replicate.io import atomic_path, own_outputs, try_lock

    out = tmp_path / SUMMARY_FILE
    with pytest.raises(KeyboardInterrupt), atomic_path(out) as tmp:
        stale = tmp_path / (os.path.basename(tmp) + ".was")
        os.link(tmp, stale)  # what kill -9 here would leave (on an exception atomic_path removes its file)
        raise KeyboardInterrupt
    stale = stale.rename(tmp)
    kept = [tmp_path / name for name in (f".{CHECKPOINT_FILE}.abcd1234.part", f".{SUMMARY_FILE}.abcd12345.part",
                                         f".{SUMMARY_FILE}.abcd1234.part.txt", f"{SUMMARY_FILE}.abcd1234.part")]
    for path in kept:
        path.write_text("x")
    holder = try_lock(tmp_path / f".{SUMMARY_FILE}.lock", f"host {socket.gethostname()} pid 1")
    with pytest.raises(DataError, match="is being written by another job"), own_outputs([out]):
        pass
    assert stale.exists()  # the holder's own write, perhaps
    holder.close()
    with own_outputs([out]):
        assert not stale.exists() and all(path.exists() for path in kept)
