"""The text-to-text paper configs (config/paper-mpt.yaml, config/paper-compt.yaml) through
Snakemake: offline dry runs that list every task of MPT Tables 1 and 3 and ComPT Table 1 on
t5-base with ATTEMPT's (and ComPT's) split jobs, and smoke runs of both configs on a tiny random
T5 written as local files and the Hub-schema fixtures, into mpt_table1 and compt_table1."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, T2T_FIXTURES, t2t_files
from test_workflow import job_counts, snakemake
from tiny_t5 import write_tiny_t5

MPT_TABLE1 = ["mnli", "qqp", "qnli", "sst-2", "sts-b", "mrpc", "rte", "cola", "multirc", "boolq", "wic", "wsc", "cb"]
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


def test_paper_configs_dry_runs_list_every_task_of_their_tables_offline():
    mpt = snakemake("-n", "mpt_table1", "mpt_table3", "--configfile", "config/paper-mpt.yaml")
    assert mpt.returncode == 0, mpt.stderr[-3000:]
    out = mpt.stdout + mpt.stderr
    # Table 1: 13 tasks at full data; Table 3: BoolQ, CB, SciTail at 4, 16 and 32 (PT and model tuning)
    assert job_counts(out) == {"split": 13 + 9, "train": 2 * (13 + 9), "paper_table": 2, "mpt_table1": 1,
                               "mpt_table3": 1}
    for task in MPT_TABLE1:
        assert f"results/paper-mpt/cells/t5-base/{task}/shotfull/pt/seed0.json" in out
    for task in ("boolq", "cb", "scitail"):
        for shot in (4, 16, 32):
            assert f"results/paper-mpt/splits/{task}/shot{shot}/seed0.json" in out
    compt = snakemake("-n", "compt_table1", "--configfile", "config/paper-compt.yaml")
    assert compt.returncode == 0, compt.stderr[-3000:]
    assert job_counts(compt.stdout + compt.stderr) == {"split": 8 * 3, "train": 8 * 3, "paper_table": 1,
                                                        "compt_table1": 1}
    for task in COMPT_TABLE1:
        assert f"results/paper-compt/cells/t5-base/{task}/shot8/pt/seed0.json" in compt.stdout + compt.stderr


def _smoke_config(name: str, tmp_path, t5_dir, tasks, shots, seeds=(0, 1)) -> Path:
    cfg = yaml.safe_load((REPO / "config" / name).read_text())
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["threads_per_job"] = 1
    cfg["grid"].update(backbone="tiny-t5-files", tasks=list(tasks), shots=list(shots), seeds=list(seeds))
    cfg["backbone_dirs"] = {"tiny-t5-files": t5_dir}
    cfg["paper_data_files"] = t2t_files(*tasks)
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
    read both ways (generation selects, as in ATTEMPT; rank is recorded beside it)."""
    tasks = ["rte", "cola", "sts-b", "multirc", "boolq", "naturalquestions"]
    config = _smoke_config("paper-mpt.yaml", tmp_path, tiny_t5_dir, tasks, ["full", 4])
    done = snakemake("--cores", "2", "mpt_table1", "mpt_table2", "mpt_table3", "--configfile", str(config),
                     timeout=1200)
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


@pytest.mark.slow
def test_paper_compt_config_runs_end_to_end_on_a_tiny_t5(tmp_path, tiny_t5_dir):
    """paper-compt.yaml on the tiny T5: ComPT's word targets and its few-shot scheme, the last
    checkpoint tested, the generated strings counted per gold label (ComPT's confusion tables)."""
    config = _smoke_config("paper-compt.yaml", tmp_path, tiny_t5_dir, ["mrpc", "sts-b"], [8])
    done = snakemake("--cores", "2", "compt_table1", "--configfile", str(config), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    rows = list(csv.DictReader(open(results / "tables" / "compt_table1.csv")))
    assert {r["task"] for r in rows if r["method"] == "pt" and r["status"] == "ok"} == {"mrpc", "sts-b"}
    cell = json.loads((results / "cells/tiny-t5-files/mrpc/shot8/pt/seed1.json").read_text())
    assert cell["split"]["sizes"]["train"] == 8
    generated = cell["test_details"]["generated"]
    assert set(generated) <= {"not_equivalent", "equivalent"}
    assert sum(n for outputs in generated.values() for n in outputs.values()) == cell["split"]["sizes"]["test"]
