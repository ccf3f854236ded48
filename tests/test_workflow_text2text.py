"""The text-to-text paper configs (config/paper-mpt.yaml, config/paper-compt.yaml) through
Snakemake: offline dry runs that list every row and task of MPT Tables 1-4, 6 and 7 (with MPT's
teacher and source-training jobs) and ComPT Table 1 on t5-base with ATTEMPT's (and ComPT's) split
jobs, and smoke runs of both configs on a tiny random T5 written as local files and the
Hub-schema fixtures, into mpt_table1 (MPT's cells included) and compt_table1."""

import csv
import json
import math
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, T2T_FIXTURES, t2t_files
from test_report import report_results
from test_workflow import job_counts, snakemake
from tiny_t5 import write_tiny_t5

MPT_TABLE1 = ["mnli", "qqp", "qnli", "sst-2", "sts-b", "mrpc", "rte", "cola", "multirc", "boolq", "wic", "wsc", "cb"]
SUPERGLUE = ["multirc", "boolq", "wic", "wsc", "cb"]
MPT_TABLE2 = ["naturalquestions", "hotpotqa", "searchqa", "newsqa", "winogrande", "yelp-polarity", "scitail", "paws-en"]
MPT_TABLE3 = ["boolq", "cb", "scitail"]
MPT_TABLE6 = ["mpt-wo-decomposition-wo-distillation", "mpt-wo-decomposition", "mpt-wo-distillation"]
MPT_SECTION43 = ["mpt-wo-hidden-loss", "mpt-prompt-distance", "mpt-wo-task-sampling", "mpt-only-shared", "mpt-only-task"]
COMPT_TABLE1 = ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst-2", "sts-b"]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.fixture(scope="module")
def tiny_t5_dir(tmp_path_factory):
    """A tiny T5 whose word vocabulary covers the fixtures' texts and both lineages' formats."""
    from replicate.tasks import TASKS

    texts = [s for path in sorted(T2T_FIXTURES.glob("*.jsonl")) for line in path.read_text().splitlines()
             for s in _strings(json.loads(line))]
    for name in TASKS:
        for fmt in TASKS.get(name).formats.values():
            texts += [fmt.input, fmt.prefix, *fmt.targets]
    return write_tiny_t5(str(tmp_path_factory.mktemp("tiny-t5")), texts)


def _jobs(out: str, rule: str) -> list:
    """The dry run's jobs of ``rule`` as {"input": [...], "output": [...]} (paths)."""
    jobs = []
    for block in out.split(f"rule {rule}:\n")[1:]:
        fields = dict(re.findall(r"^    (input|output): (.*)$", block.split("\n\n")[0].split("[")[0], re.M))
        jobs.append({k: fields.get(k, "").split(", ") if fields.get(k) else [] for k in ("input", "output")})
    return jobs


@pytest.mark.slow
def test_paper_configs_dry_runs_list_every_task_of_their_tables_offline():
    tables = [f"mpt_table{t}" for t in (1, 2, 3, 4, 6, 7)]
    mpt = snakemake("-n", *tables, "--configfile", "config/paper-mpt.yaml")
    assert mpt.returncode == 0, mpt.stderr[-3000:]
    out = mpt.stdout + mpt.stderr
    few = (4, 16, 32)
    # Every (method, task, shot) a row of Tables 1-4, 6, 7 prints that this grid trains: PT and
    # model tuning (Tables 1-3; PT in Table 4), MPT (Tables 1-4; Table 6; Table 7's "w/ 6
    # Source Tasks"), Table 6's three source-training ablations and §4.3's five (SuperGLUE,
    # full data), Table 7's 12-source MPT (MRQA and Others)
    expected = ({(m, t, "full") for m in ("pt", "model-tuning", "mpt") for t in MPT_TABLE1 + MPT_TABLE2}
                | {(m, t, str(k)) for m in ("pt", "model-tuning", "mpt") for t in MPT_TABLE3 for k in few}
                | {(m, t, str(k)) for m in ("pt", "mpt") for t in MPT_TABLE1 for k in few}
                | {(m, t, "full") for m in MPT_TABLE6 + MPT_SECTION43 for t in SUPERGLUE}
                | {("mpt-w-12-source-tasks", t, "full") for t in MPT_TABLE2})
    trained = set()
    for job in _jobs(out, "train"):
        for path in job["output"]:
            task, shot, method = re.search(r"cells/t5-base/([^/]+)/shot([^/]+)/([^/]+)/seed\d+\.json", path).groups()
            trained.add((method, task, shot))
    assert trained == expected
    assert len(expected) == 204  # 63 PT + 30 model tuning + 63 MPT + 3 x 5 Table 6 + 5 x 5 §4.3 + 8 Table 7
    # the 10 pre-trainings: 2 teacher runs (6 and 12 sources), MPT, Table 6's 3, §4.3's 3, Table 7's
    pretrains = {re.search(r"pretrain/([^/]+)/t5-base/checkpoint", j["output"][0]).group(1): j["input"]
                 for j in _jobs(out, "pretrain")}
    teachers = "results/paper-mpt/pretrain/{}/t5-base/checkpoint.pt"
    assert {name: [p for p in inputs if "/pretrain/" in p] for name, inputs in pretrains.items()} == {
        "mpt-teachers": [], "mpt-teachers-12": [],
        **{name: [teachers.format("mpt-teachers")] for name in ("mpt", "mpt-wo-decomposition", "mpt-wo-hidden-loss",
                                                                "mpt-prompt-distance", "mpt-wo-task-sampling")},
        "mpt-wo-distillation": [], "mpt-wo-decomposition-wo-distillation": [],
        "mpt-12-sources": [teachers.format("mpt-teachers-12")]}
    # every MPT cell starts from its source training's checkpoint
    for job in _jobs(out, "train"):
        method = re.search(r"shot[^/]+/([^/]+)/seed", job["output"][0]).group(1)
        source = {"mpt-w-12-source-tasks": "mpt-12-sources", "mpt-only-shared": "mpt", "mpt-only-task": "mpt"}.get(
            method, method)
        assert ([p for p in job["input"] if "/pretrain/" in p] ==
                ([teachers.format(source)] if method.startswith("mpt") else [])), job
    # splits: Tables 1-2 at full data (21 tasks); Tables 3-4 at 4, 16, 32 (Table 4's 13, and SciTail)
    assert job_counts(out) == {"pretrain_data": 10, "pretrain": 10, "split": 13 + 8 + 3 * 14, "train": 204,
                               "paper_table": 6, **{t: 1 for t in tables}}
    for task in ("boolq", "cb", "scitail"):
        for shot in few:
            assert f"results/paper-mpt/splits/{task}/shot{shot}/seed0.json" in out
    compt = snakemake("-n", "compt_table1", "compt_table2", "compt_fig3", "--configfile", "config/paper-compt.yaml")
    assert compt.returncode == 0, compt.stderr[-3000:]
    out = compt.stdout + compt.stderr
    # PT per (task, shot); one job per (ComPT variant, task set, shot) with every task's cells of
    # every seed; a masking job per task set Fig 3 draws (SSUM on GLUE and on SET2, at 16 shots);
    # Fig 3's PNG and PDF copied to figures/paper-compt/
    sets = {f"train_set_compt_{v}{s}": 3 for v in ("ssum", "msum", "mcat") for s in ("", "_set2")}
    assert job_counts(out) == {"split": 13 * 3, "train": 13 * 3, **sets, "masking": 2, "paper_table": 2,
                               "compt_table1": 1, "compt_table2": 1, "compt_fig3_figure": 1, "figure_copy": 2,
                               "compt_fig3": 1}
    for task in COMPT_TABLE1:
        assert f"results/paper-compt/cells/t5-base/{task}/shot8/pt/seed0.json" in out
    (glue16,) = [j for j in _jobs(out, "train_set_compt_msum") if "/shot16/" in j["output"][0]]
    assert sorted(glue16["output"]) == sorted(
        [f"results/paper-compt/cells/t5-base/{t}/shot16/compt-msum/seed{s}.json"
         for t in COMPT_TABLE1 for s in range(3)]
        + [f"results/paper-compt/states/t5-base/shot16/compt-msum/seed{s}.pt" for s in range(3)])
    masked = {j["output"][0] for j in _jobs(out, "masking")}
    assert masked == {f"results/paper-compt/masking/t5-base/shot16/{m}.csv" for m in ("compt-ssum", "compt-ssum-set2")}


def _smoke_config(name: str, tmp_path, t5_dir, tasks, shots, seeds=(0, 1), methods=None, pretrainings=(),
                  sources=()) -> Path:
    """``name`` on the tiny T5 and the fixtures, with tiny budgets: grid ``methods`` (None:
    the config's), the ``pretrainings`` they need (the others dropped), each on the upstream
    ``sources`` of its own (a few fixture tasks) for a few steps of 4."""
    from replicate.tasks.text2text import TEXT2TEXT_TASKS

    cfg = yaml.safe_load((REPO / "config" / name).read_text())
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["threads_per_job"] = 1
    cfg["grid"].update(backbone="tiny-t5-files", tasks=list(tasks), shots=list(shots), seeds=list(seeds))
    if methods is not None:
        cfg["grid"]["methods"] = list(methods)
    cfg["backbone_dirs"] = {"tiny-t5-files": t5_dir}
    cfg["pretraining"] = {n: v for n, v in (cfg.get("pretraining") or {}).items() if n in pretrainings}
    for run in cfg["pretraining"].values():
        run.update(tasks=[t for t in run["tasks"] if t in sources], steps=6, eval_every=3, save_every=6, batch_size=4,
                   prompt_length=4, max_target_length=6, eval_batch_size=32)
    # a pre-training holds out the test texts of every task of its suite: all their files
    cfg["paper_data_files"] = t2t_files(*(t.name for t in TEXT2TEXT_TASKS) if cfg["pretraining"] else tasks)
    # ComPT's task sets, cut to the grid's tasks (its methods then train those together)
    cfg["task_sets"] = {n: [t for t in ts if t in tasks] for n, ts in (cfg.get("task_sets") or {}).items()
                        if any(t in tasks for t in ts)}
    cfg["protocol"]["dev_holdout"] = 4  # ATTEMPT holds out 1,000 training rows as dev; the fixtures have 24
    for method in cfg["methods"].values():
        method.update(epochs=2, eval_every=1, batch_size=4, max_target_length=6, eval_batch_size=32)
        method.pop("warmup_steps", None)
        for key in ("by_task", "by_shot"):
            method.pop(key, None)
        if "prompt_length" in method:
            method.update(prompt_length=4)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_paper_mpt_config_runs_end_to_end_on_a_tiny_t5(tmp_path, tiny_t5_dir):
    """paper-mpt.yaml but for the backbone, the data and the budgets: a pair task, a
    single-sentence one, regression (STS-B), multi-sentence (MultiRC) at full data, BoolQ at
    4 shots, and MRQA (extractive, answered by generation) land in MPT's tables, each cell
    read both ways (generation selects, as in ATTEMPT; rank is recorded beside it). MPT's
    cells too: per-task teachers on three sources (a pair, a single sentence and SQuAD,
    extractive), the decomposed prompt distilled from them, then adapted to each target."""
    tasks = ["rte", "cola", "sts-b", "multirc", "boolq", "naturalquestions"]
    config = _smoke_config("paper-mpt.yaml", tmp_path, tiny_t5_dir, tasks, ["full", 4],
                           methods=["model-tuning", "pt", "mpt"], pretrainings=["mpt-teachers", "mpt"],
                           sources=["mnli", "sst-2", "squad"])
    done = snakemake("--cores", "2", "mpt_table1", "mpt_table2", "mpt_table3", "--configfile", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    rows = list(csv.DictReader(open(results / "tables" / "mpt_table1.csv")))
    cells = {(r["method"], r["task"]): r for r in rows if r["method"] in ("pt", "model-tuning")}
    for method in ("pt", "model-tuning"):
        for task in ("rte", "cola", "sts-b", "multirc", "boolq"):
            assert cells[(method, task)]["status"] == "ok" and cells[(method, task)]["n"] == "2", (method, task)
    # Table 1 prints full data only, and NQ is a column of Table 2, no stand-in here
    assert {r["shot"] for r in rows if r["method"] in ("pt", "model-tuning")} == {"full"}
    assert "naturalquestions" not in {r["task"] for r in rows}
    assert not any(r["note"].startswith("stand-in") for r in rows)
    table3 = list(csv.DictReader(open(results / "tables" / "mpt_table3.csv")))
    assert {(r["method"], r["task"], r["shot"]) for r in table3 if r["status"] == "ok"} >= {
        ("pt", "boolq", "4"), ("model-tuning", "boolq", "4")}
    table2 = list(csv.DictReader(open(results / "tables" / "mpt_table2.csv")))
    assert any(r["task"] == "naturalquestions" and r["status"] == "ok" for r in table2)
    for task, metrics in (("rte", {"acc", "rank/acc", "generate/acc", "generate/invalid"}),
                          ("cola", {"mcc", "acc", "rank/mcc", "generate/mcc"}),
                          ("sts-b", {"pearson", "spearman", "generate/pearson", "generate/invalid"}),
                          ("multirc", {"f1", "rank/f1", "generate/f1"}),
                          ("naturalquestions", {"f1", "em", "generate/f1"})):
        cell = json.loads((results / f"cells/tiny-t5-files/{task}/shotfull/pt/seed0.json").read_text())
        assert cell["status"] == "ok" and metrics <= set(cell["metrics"]), (task, sorted(cell["metrics"]))
        assert cell["score"] == cell["metrics"][cell["metric"]] == cell["metrics"][f"generate/{cell['metric']}"]
        assert cell["split"]["sizes"]["dev"] > 0 and cell["provenance"]["trainable_parameters"] == {"prompt": 4 * 32}
    # MPT: teachers -> distillation -> adaptation
    mpt_rows = {(r["task"], r["shot"]): r for t in ("1", "2", "3")
                for r in csv.DictReader(open(results / "tables" / f"mpt_table{t}.csv")) if r["method"] == "mpt"}
    for key in [(t, "full") for t in ("rte", "cola", "sts-b", "multirc", "boolq", "naturalquestions")] + [("boolq", "4")]:
        assert mpt_rows[key]["status"] == "ok" and mpt_rows[key]["n"] == "2", key
    teachers = json.loads((results / "pretrain/mpt-teachers/tiny-t5-files/pretrain.json").read_text())
    source = json.loads((results / "pretrain/mpt/tiny-t5-files/pretrain.json").read_text())
    assert [t["name"] for t in teachers["tasks"]] == [t["name"] for t in source["tasks"]] == ["mnli", "sst-2", "squad"]
    assert source["teachers"]["sha256"] == teachers["checkpoint"]["sha256"]
    assert source["settings"]["config"]["distill"] == "logits-hidden" and source["best_step"] > 0
    assert all(math.isfinite(loss) for _, loss in source["loss_curve"])
    cell = json.loads((results / "cells/tiny-t5-files/rte/shotfull/mpt/seed0.json").read_text())
    assert cell["provenance"]["pretrained_checkpoint"]["sha256"] == source["checkpoint"]["sha256"]
    assert cell["provenance"]["trainable_parameters"] == {"prompt": 4 * 32 + 4 + 32}  # P*, u, v


@pytest.mark.slow
def test_paper_compt_config_runs_end_to_end_on_a_tiny_t5(tmp_path, tiny_t5_dir):
    """paper-compt.yaml on the tiny T5, two tasks: PT (ComPT's word targets and few-shot
    scheme, the last checkpoint tested, the generated strings counted per gold label: ComPT's
    confusion tables), and SSUM, MSUM and MCAT, each one job over the two-task set, into
    compt_table1, their masking evaluations and the Fig 3 and Fig 4 heatmaps."""
    methods = ["compt-ssum", "compt-msum", "compt-mcat"]
    config = _smoke_config("paper-compt.yaml", tmp_path, tiny_t5_dir, ["mrpc", "sts-b"], [8], methods=["pt", *methods])
    done = snakemake("--cores", "2", "compt_table1", "compt_fig3", "compt_fig4", "--configfile", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    rows = list(csv.DictReader(open(results / "tables" / "compt_table1.csv")))
    for method in ["pt", *methods]:
        assert {r["task"] for r in rows if r["method"] == method and r["status"] == "ok"} == {"mrpc", "sts-b"}
    cell = json.loads((results / "cells/tiny-t5-files/mrpc/shot8/pt/seed1.json").read_text())
    assert cell["split"]["sizes"]["train"] == 8
    generated = cell["test_details"]["generated"]
    assert set(generated) <= {"not_equivalent", "equivalent"}
    assert sum(n for outputs in generated.values() for n in outputs.values()) == cell["split"]["sizes"]["test"]
    cell = json.loads((results / "cells/tiny-t5-files/mrpc/shot8/compt-mcat/seed1.json").read_text())
    assert cell["provenance"]["task_set"] == ["mrpc", "sts-b"] and cell["split"]["sizes"]["train"] == 8
    masking = list(csv.DictReader(open(results / "masking/tiny-t5-files/shot8/compt-ssum.csv")))
    assert {r["mask"] for r in masking if r["evaluation"] == "mask"} == {"src0", "src1", "all_src", "private",
                                                                         "total"}
    confusion = list(csv.DictReader(open(results / "masking/tiny-t5-files/shot8/compt-ssum.confusion.csv")))
    assert {r["gold"] for r in confusion if r["task"] == "mrpc"} <= {"not_equivalent", "equivalent"}
    for figure in ("compt_fig3", "compt_fig4"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 0
    drawn = list(csv.DictReader(open(results / "figures" / "compt_fig4.csv")))
    assert {r["method"] for r in drawn} == {"compt-msum", "compt-mcat"}
    # its report (tests/test_report.py): the table, its diff, the masking evaluations and both
    # heatmaps, each with its caption
    report = snakemake("--report", str(tmp_path / "report.zip"), "compt_table1", "compt_fig3", "compt_fig4",
                       "--configfile", str(config))
    assert report.returncode == 0, report.stderr[-3000:]
    entries, _ = report_results(tmp_path / "report.zip")
    assert set(entries) == {"compt_table1.csv", "compt_table1.diff.csv", "compt_fig3.png", "compt_fig4.png",
                            *(f"{m}.csv" for m in methods)}
    assert entries["compt_table1.csv"]["text"].startswith("ComPT Table 1, regenerated in the paper's layout")
    assert entries["compt_fig4.png"]["text"].startswith("MSUM and MCAT: one source kept with the private, total: "
                                                        "ComPT's source-prompt ablation")
    assert entries["compt-mcat.csv"]["text"].startswith("ComPT's source-prompt ablation (Pouramini & Faili §5.1.2) "
                                                        "of compt-mcat at shot 8")