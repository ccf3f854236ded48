"""The planner (replicate/plan.py, ``python -m replicate plan``): the jobs a target needs are
the DAG's, the positions follow the budgets, GPU-hours scale by the stated peak ratio, and
the paper config plans offline."""

import copy
import json
import re

import pytest
import yaml

from conftest import REPO, TINY_CONFIG
from replicate import plan
from replicate.backbones import BACKBONES
from replicate.cli import main
from replicate.config import cell_pretraining, check_config, groups, read_config_file
from test_workflow import job_counts, snakemake

# Snakemake's rule -> the planner's kind (train_set_<method> rules: "train-set")
RULE_KIND = {"fetch_data": "fetch-data", "split": "split", "pretrain_data": "pretrain-data", "pretrain": "pretrain",
             "train": "train"}


def test_table3_jobs_and_cells_are_the_dry_runs(tmp_path):
    """The embedded default's table3: every job kind's count and the cells equal what
    `snakemake -n table3` would run from nothing (results and data folders empty)."""
    raw = read_config_file(str(REPO / "config" / "config.yaml"))
    raw["results_dir"], raw["data_dir"] = str(tmp_path / "results"), str(tmp_path / "data")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = snakemake("-n", "table3", "--configfile", str(path), "--nolock")
    assert done.returncode == 0, done.stderr[-2000:]
    expected = {kind: 0 for kind in plan.KINDS}
    for rule, n in job_counts(done.stdout).items():
        kind = "train-set" if rule.startswith("train_set_") else RULE_KIND.get(rule)
        if kind:
            expected[kind] += n
    cells = set(re.findall(r"/cells/\S+?/seed\d+\.json", done.stdout))

    got = plan.make_plan(check_config(raw, check_data=False), ["table3"])
    assert plan.counts_by_kind(got.jobs.values()) == expected
    assert sum(j.cells for j in got.jobs.values()) == len(cells) > 0


def hand_config():
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["protocol"]["test_cap"] = 10
    cfg["grid"].update(methods=["pt", "bbt"], tasks=["bbc-topic"], seeds=[1, 2], shots=[8])
    cfg["methods"] = {"pt": {"epochs": 3, "batch_size": 4, "eval_every": 2, "max_length": 32, "prompt_length": 4},
                      "bbt": {"budget": 20, "eval_every": 8, "popsize": 4, "max_length": 32, "prompt_length": 4,
                              "intrinsic_dim": 10, "pretraining": None}}
    return check_config(cfg, check_data=False)


def test_positions_follow_the_budgets_by_hand():
    """8 train, 8 dev, 10 test examples per seed (bbc-topic has 5 labels: the shot), 2 seeds,
    32 positions. PT, 3 epochs, dev every 2: checks at epochs 2 and 3, one test. BBT, 20
    calls, dev every 8: 3 checks, one test. A pre-training of 10 steps of 4, dev every 4
    (steps 4, 8 and the last) over 3 tasks x dev_cap 3, its teachers' forward on every step."""
    cfg = hand_config()
    g = {g.method: g for g in groups(cfg)}
    pt = plan.train_job(cfg, g["pt"])
    assert (pt.fwd_train, pt.bwd, pt.fwd_eval) == (3 * 8 * 32 * 2, 3 * 8 * 32 * 2, (2 * 8 + 10) * 32 * 2)
    assert pt.cells == 2 and pt.batch_positions == 4 * 2 * 32
    bbt = plan.train_job(cfg, g["bbt"])
    assert (bbt.fwd_train, bbt.bwd, bbt.fwd_eval) == (20 * 8 * 32 * 2, 0, (3 * 8 + 10) * 32 * 2)
    # MP2's two stages (2 + 3 epochs, dev every 2): checks at 2 | 4, 5; a test after each stage
    mp2 = plan.gradient_budget([(2, True), (3, True)], 2, 8, 8, 10, 2, 32)
    assert (mp2["checks"], mp2["tests"], mp2["fwd_eval"]) == (3, 2, (3 * 8 + 2 * 10) * 32 * 2)
    cfg["pretraining"] = {"p": {"prompt": "single", "tasks": ["bbc-title-topic", "bbc-next-sentence", "tweet-source"],
                                "steps": 10, "batch_size": 4, "eval_every": 4, "dev_cap": 3, "max_length": 32,
                                "prompt_length": 4, "distill": "logits", "teachers": "q"}}
    pre = plan.pretrain_job(cfg, "p", "tiny-bert")
    assert (pre.fwd_train, pre.bwd, pre.fwd_eval) == (10 * 4 * 32, 10 * 4 * 32, 3 * 3 * 3 * 32 + 10 * 4 * 32)
    # more labels than many_labels: per_label_when_many of each (tnews: 15 labels)
    assert plan.split_sizes(cfg, "tnews", 8) == {"train": 8 * 15, "dev": 8 * 15, "test": 10}


STEP_TIMES = {"bf16_matmul_peak_flops": 1e11, "shapes": {"tiny-bert": {
    "arch": "bert", "d_model": 32, "n_layers": 2, "n_heads": 2, "train_flop_rate": 5e10, "eval_flop_rate": 4e10}}}


def test_gpu_hours_are_cpu_seconds_times_the_stated_peak_ratio():
    job = plan.Job("train", "x", "tiny-bert", cells=1, length=32, fwd_train=1000, bwd=1000, fwd_eval=500)
    spec = BACKBONES.get("tiny-bert")
    cpu = (1000 * plan.flops_per_position(spec, 32, "train") / 5e10
           + 500 * plan.flops_per_position(spec, 32, "eval") / 4e10)
    assert plan.cpu_seconds(job, STEP_TIMES) == pytest.approx(cpu)
    for gpu, (_, peak, _) in plan.GPUS.items():
        assert plan.gpu_hours(job, STEP_TIMES, gpu) == pytest.approx(cpu * 1e11 / peak / 3600)
    faster_cpu = {**STEP_TIMES, "bf16_matmul_peak_flops": 2e11}  # the same seconds at twice the peak: twice the hours
    assert plan.gpu_hours(job, faster_cpu) == pytest.approx(2 * plan.gpu_hours(job, STEP_TIMES))
    assert plan.gpu_hours(job, STEP_TIMES, "a100") / plan.gpu_hours(job, STEP_TIMES, "h100") == pytest.approx(989 / 312)


def test_unknown_target_is_one_line_listing_the_known_ones(capsys):
    assert main(["plan", "table3", "table9", "--configfile", str(REPO / "config" / "config.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'table9'" in err and "known: tables, table3, mp2_table1," in err


def test_paper_config_plans_offline(tmp_path, capsys):
    """MP2's grid (config/paper.yaml, CPT-large, Hub data) plans without data or model, even
    where its backbone_dirs and paper_data_files name files this machine lacks (a cluster's
    copies): its table3 is the dry run's 14 splits, 6 pre-trainings and their data, 174
    training groups (tests/test_workflow.py's paper dry run), 5 seeds each."""
    raw = read_config_file(str(REPO / "config" / "paper.yaml"))
    missing = tmp_path / "not-mounted"
    raw["backbone_dirs"] = {"cpt-large": str(missing / "cpt-large")}
    raw["paper_data_files"] = {"amazon": {"train": str(missing / "train.jsonl"), "test": str(missing / "test.jsonl")}}
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    assert main(["plan", "table3", "--configfile", str(path), "--gpu-hours-budget", "1e6"]) == 0
    out = capsys.readouterr().out
    summary = re.search(r"^table3: (\d+) jobs .*, (\d+) cells, .* ([\d,.]+) GPU-hours on H100 SXM", out, re.M)
    assert summary and summary.group(1) == str(14 + 6 + 6 + 174) and summary.group(2) == str(174 * 5)
    assert float(summary.group(3).replace(",", "")) > 0
    assert re.search(r"^table3\s+200\s+\S+\s+yes$", out, re.M)  # the budget table
    assert "test size of amazon" in out  # uncapped test sets: left out, and said so


def test_memory_is_parameters_optimizer_state_and_the_larger_batch():
    """tiny-bert (d 32, 2 layers, 2 heads, vocabulary 30,522; no published size): fp32
    parameters, 12 bytes per trained one (the whole backbone for model tuning), and the larger
    of a training batch's activations over both layers and an evaluation batch's over two."""
    params = 2 * 12 * 32 ** 2 + 30522 * 32
    per_position = 34 * 32 + 5 * 2 * 32  # 16-bit activations of one layer at L = 32
    job = plan.Job("train", "x", "tiny-bert", length=32, trained_params=100, batch_positions=64,
                   eval_batch_positions=16)
    assert plan.memory_bytes(job) == params * 4 + 100 * 12 + 2 * 64 * per_position
    job.eval_batch_positions = 128  # now the evaluation batch is the larger
    assert plan.memory_bytes(job) == params * 4 + 100 * 12 + 2 * 128 * per_position
    job.weight_grads = True
    assert plan.memory_bytes(job) == params * 16 + 2 * 128 * per_position


def test_unreadable_step_times_is_one_line(tmp_path, capsys):
    bad = tmp_path / "step_times.json"
    bad.write_text("{not json")
    assert main(["plan", "table3", "--configfile", str(REPO / "config" / "config.yaml"), "--step-times",
                 str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "bench/step_times.py" in err


def test_an_overlay_config_merges_as_snakemakes_configfiles(tmp_path, capsys):
    """`--configfile config/config.yaml config/showcase.yaml`: the planner (and check-config)
    merge the files as Snakemake does, so each pre-training job's settings, as the dry run
    would pass them, are the ones the merged config gives, with the overlay's budgets."""
    from replicate.config import pretrain_settings, read_config_files

    paths = [str(REPO / "config" / "config.yaml"), str(REPO / "config" / "showcase.yaml"), str(tmp_path / "dirs.yaml")]
    (tmp_path / "dirs.yaml").write_text(yaml.safe_dump({"results_dir": str(tmp_path / "results"),
                                                        "data_dir": str(tmp_path / "data")}))
    done = snakemake("-n", "-p", "table3", "--configfile", *paths, "--nolock")
    assert done.returncode == 0, done.stderr[-2000:]
    passed = {json.loads(s)["pretraining"]: json.loads(s)
              for s in re.findall(r"replicate pretrain --settings '(\{.*?\})' --data-dir", done.stdout)}
    merged = check_config(read_config_files(paths), check_data=False)
    assert passed and passed == {name: pretrain_settings(merged, name, "minilm-l6") for name in passed}
    overlay, base = (read_config_file(paths[i])["pretraining"] for i in (1, 0))
    assert {n: s["config"]["steps"] for n, s in passed.items()} == {n: overlay[n]["steps"] for n in passed}
    assert all(overlay[n]["steps"] != base[n]["steps"] for n in passed)  # the overlay's, not the base's
    assert merged["methods"]["pt"]["epochs"] == 8  # the base's, untouched by the overlay
    assert main(["plan", "table3", "--configfile", *paths]) == 0
    assert "pretrain mp2-deep" in capsys.readouterr().out


def test_the_showcase_overlay_only_overrides_keys_of_its_base():
    """config/showcase.yaml names what differs from config/config.yaml: every key it sets is
    one the base has (a misspelt method or pre-training would otherwise add a run of its own
    instead of changing a budget), and it changes the results folder so the two never mix."""
    from replicate.config import read_config_file

    base = read_config_file(str(REPO / "config" / "config.yaml"))
    overlay = read_config_file(str(REPO / "config" / "showcase.yaml"))

    def leaves(node, prefix=()):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, prefix + (key,))
            else:
                yield prefix + (key,)

    def has(node, path):
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return True

    set_keys = list(leaves(overlay))
    assert len(set_keys) > 10 and [p for p in set_keys if not has(base, p)] == []
    assert overlay["results_dir"] != base["results_dir"]


def test_cpu_time_adds_each_jobs_start_up_and_waits_for_the_longest_chain():
    """Work: every training and pre-training job's seconds of positions plus one start-up
    each (splits and data jobs: 0). Wall: the work over the cores, or the longest chain of
    jobs through ``after`` (pre-training data -> pre-training -> its training group) where
    that is longer."""
    timed = {**STEP_TIMES, "job_start_seconds": 5.0}
    jobs = {
        ("split", "t", "8"): plan.Job("split", "split"),
        ("pretrain-data", "p"): plan.Job("pretrain-data", "data"),
        ("pretrain", "p", "tiny-bert"): plan.Job("pretrain", "pre", "tiny-bert", length=32, fwd_train=9000,
                                                 bwd=9000, after=[("pretrain-data", "p")]),
        ("train", "a"): plan.Job("train", "a", "tiny-bert", length=32, fwd_train=1000, bwd=1000,
                                 after=[("split", "t", "8"), ("pretrain", "p", "tiny-bert")]),
        ("train", "b"): plan.Job("train", "b", "tiny-bert", length=32, fwd_train=1000, bwd=1000,
                                 after=[("split", "t", "8")]),
    }
    own = {k: plan.cpu_seconds(j, timed) for k, j in jobs.items()}
    assert own[("split", "t", "8")] == 0 and own[("pretrain", "p", "tiny-bert")] > 8 * own[("train", "a")] > 0
    work = sum(own.values()) + 3 * 5.0
    chain = own[("pretrain", "p", "tiny-bert")] + own[("train", "a")] + 2 * 5.0
    seconds, path = plan.longest_chain(jobs, timed)
    assert seconds == pytest.approx(chain)
    assert path == [("pretrain-data", "p"), ("pretrain", "p", "tiny-bert"), ("train", "a")]
    assert plan.cpu_wall_seconds(jobs, timed, 1) == pytest.approx((work, chain, work))
    assert plan.cpu_wall_seconds(jobs, timed, 100) == pytest.approx((work, chain, chain))
    # no measured start-up: positions alone
    assert plan.cpu_wall_seconds(jobs, STEP_TIMES, 1)[0] == pytest.approx(sum(own.values()))


def test_table3s_longest_chain_runs_through_a_pretraining_to_a_group_that_reads_it():
    """The planner's DAG edges are the Snakefile's: on the embedded default every MP2 group
    waits for its pre-training, which waits for its data, so the longest chain ends at a group
    of a pre-trained method and passes its pre-training."""
    cfg = check_config(read_config_file(str(REPO / "config" / "config.yaml")), check_data=False)
    got = plan.make_plan(cfg, ["table3"])
    timed = {**STEP_TIMES, "shapes": {"minilm-l6": {**STEP_TIMES["shapes"]["tiny-bert"], "d_model": 384,
                                                    "n_layers": 6, "n_heads": 12}}, "job_start_seconds": 5.0}
    seconds, path = plan.longest_chain(got.jobs, timed)
    kinds = [k[0] for k in path]
    assert kinds == ["pretrain-data", "pretrain", "train"], path
    train = path[-1][1]
    assert path[1][1] == cell_pretraining(cfg, train.method, train.task) and train.method.startswith("mp2-")
    assert seconds == pytest.approx(sum(plan.job_cpu_seconds(got.jobs[k], timed) for k in path))
    # the CLI prints it, with the cores asked for
    out = plan.render(got, timed, cores=3)
    assert re.search(r"table3 on 3 cores of the measuring CPU, a thread a job: about \d+ min \([\d.]+ (min|h) of "
                     r"core time: [\d.]+ (min|h) of positions, 70 x 5\.0 s of process start-up; the longest chain of "
                     r"jobs, \d+ min: pretrain mp2-", out), out
    assert [plan._duration(s) for s in (59, 7199, 7200, 2 * 86400 - 1, 2 * 86400)] == [
        "1 min", "120 min", "2.0 h", "48.0 h", "2 days"]


def test_cores_must_be_a_positive_whole_number(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["plan", "table3", "--configfile", str(REPO / "config" / "config.yaml"), "--cores", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--cores" in err
