"""``python -m replicate status <results_dir>``: a run's state from its files alone, one line
per category; anything that is not a results folder is one line and exit code 2."""

import os
import time

import pytest

from replicate.cli import main
from replicate.config import Cell, pretrain_dir, result_path
from replicate.errors import DataError
from replicate.jobs import RESUME_FILE, SUMMARY_FILE
from replicate.logs import eta_text
from replicate.results import read_result, write_result
from replicate.status import status_lines


def result(cell: Cell, status: str) -> dict:
    """A cell's result with the keys ``jobs.train_group`` writes (``write_result`` seals it)."""
    ok = status == "ok"
    metrics = {"acc": 62.5} if ok else {}
    return {"method": cell.method, "backbone": cell.backbone, "task": cell.task, "shot": cell.shot,
            "metric": "acc", "track": "unseen-data", "suite": "embedded", "seed": cell.seed, "status": status,
            "error": "" if ok else "diverged at epoch 1: loss is nan", "metrics": metrics,
            "score": metrics.get("acc"), "test_details": {},
            "dev": {"best_epoch": 1, "best_score": 50.0, "curve": [[1, 50.0]], "unit": "epoch"},
            "train_loss_curve": [1.2], "stages": [], "wall_time_s": 1.0, "wall_time_note": "time of this seed alone",
            "setup_time_s": 0.5, "split": {"path": "s.json", "hash": "h", "sizes": {"train": 8, "dev": 8, "test": 24}},
            "provenance": {"config_hash": "c"}}


@pytest.fixture
def run(tmp_path):
    """A results folder mid-run: 3 cells done (one with a failed rerun beside it), 2 failed,
    one edited after it was written; one pre-training done, one in progress (its resume
    state, its log with a dev check's line); a training log written just now, an old one."""
    cfg = {"results_dir": str(tmp_path / "results")}
    cells = [Cell("pt", "tiny-bert", task, 8, seed) for task in ("bbc-topic", "fine-foods") for seed in (8, 13, 21)]
    for cell, status in zip(cells, ["ok", "ok", "failed", "ok", "failed", "ok"]):
        write_result(result_path(cfg, cell), result(cell, status))
    assert write_result(result_path(cfg, cells[0]), result(cells[0], "failed")).endswith("seed8.failed.json")
    edited = result_path(cfg, cells[5])
    with open(edited) as f:
        text = f.read()
    with open(edited, "w") as f:
        f.write(text.replace("62.5", "72.5"))
    for name, file in (("mp2-shallow", SUMMARY_FILE), ("mp2-deep", RESUME_FILE)):
        os.makedirs(pretrain_dir(cfg, name, "tiny-bert"))
        open(os.path.join(pretrain_dir(cfg, name, "tiny-bert"), file), "w").close()
    logs = tmp_path / "results" / "logs"
    (logs / "pretrain").mkdir(parents=True)
    (logs / "pretrain" / "mp2-deep_tiny-bert.log").write_text(
        "2026-12-07T18:00:00 resumed from resume.pt at step 100\n"
        f"2026-12-07T18:01:00 step 200/300: mean dev 40.00 (best 40.00 at step 200); above a constant prediction "
        f"on 1 of 3 tasks (bbc-topic) | {eta_text(100, 200, 84.0)}\n"
        f"2026-12-07T18:02:00 step 250/300: {eta_text(150, 200, 126.0)}\n")
    (logs / "train" / "tiny-bert").mkdir(parents=True)
    old = logs / "train" / "tiny-bert" / "bbc-topic_shot8_pt.log"
    old.write_text("2026-12-07T17:00:00 epoch 1 (pt): loss 1.2 | dev 50.0 | 3 s, 0.1 s/step, ETA 3 s\n")
    stale = time.time() - 600
    os.utime(old, (stale, stale))
    return tmp_path / "results"


def test_status_summarises_cells_pretrainings_active_logs_and_eta(run):
    with pytest.raises(DataError, match="edited after it was written"):
        read_result(result_path({"results_dir": str(run)}, Cell("pt", "tiny-bert", "fine-foods", 8, 21)))
    # "now": just after the active log was written, so that a slow machine cannot age it past 120 s
    now = os.path.getmtime(run / "logs" / "pretrain" / "mp2-deep_tiny-bert.log") + 1
    assert status_lines(str(run), now=now) == [
        "cells done: 3 (1 failed rerun(s) beside finished cells, 1 unreadable or edited)",
        "cells failed: 2 (tiny-bert/bbc-topic/shot8/pt/seed21, tiny-bert/fine-foods/shot8/pt/seed13)",
        "pre-trainings: 1 done, 1 in progress (mp2-deep/tiny-bert at step 250 of 300)",
        "recently active logs (last 120 s): 1 (pretrain/mp2-deep_tiny-bert.log)",
        "ETA: pretrain/mp2-deep_tiny-bert.log 42 s (each log's last progress line)",
    ]


def test_a_finished_pretraining_and_quiet_logs_leave_no_eta(run):
    deep = pretrain_dir({"results_dir": str(run)}, "mp2-deep", "tiny-bert")
    open(os.path.join(deep, SUMMARY_FILE), "w").close()  # its job ended: pretrain.json beside the resume state
    lines = status_lines(str(run), now=time.time() + 600)
    assert lines[2:] == ["pre-trainings: 2 done, 0 in progress", "recently active logs (last 120 s): 0",
                         "ETA: unknown (no active log has a progress line yet)"]


def test_the_cli_prints_the_summary(run, capsys):
    assert main(["status", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == status_lines(str(run)) and out[0].startswith("cells done: 3")


@pytest.mark.parametrize("where, message", [
    ("missing", "does not exist"),
    ("a-file", "is not a results folder (none of cells, pretrain, logs, splits in it)"),
    ("empty", "is not a results folder (none of cells, pretrain, logs, splits in it)"),
])
def test_what_is_not_a_results_folder_is_one_line_and_exit_2(tmp_path, capsys, where, message):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes").mkdir()
    assert main(["status", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"replicate: status: {tmp_path / where} {message}" + (
        " (give a run's results folder, e.g. results)" if where == "missing" else ""), err
