"""Job logs: timestamped lines, the rate and ETA on every dev check (pre-training, training
groups, task sets, black-box search) and a time-based progress line between checks, and
no transformers progress bar in a job's log."""

import copy
import re

import pytest

from conftest import FIXTURES, HANG_GUARD_S, TINY_CONFIG
from replicate import logs
from replicate.logs import Progress, duration_text, eta_text

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d "  # logs.DATEFMT, then the message
RATE = r"\d+ s, [0-9.e+-]+ s/(step|call), ETA \d+ s"  # a tiny run: seconds, never minutes


def test_eta_text_arithmetic():
    assert eta_text(100, 400, 50.0) == "50 s, 0.5 s/step, ETA 150 s"
    assert eta_text(10, 100, 120.0) == "120 s, 12 s/step, ETA 18 min"  # 90 x 12 s = 1080 s
    assert eta_text(500, 3000, 212.0) == "212 s, 0.424 s/step, ETA 18 min"  # 2500 x 0.424 s = 17.7 min
    assert eta_text(40, 8000, 20.0, unit="call") == "20 s, 0.5 s/call, ETA 66 min"  # 7960 x 0.5 s
    assert eta_text(3, 3, 9.0) == "9 s, 3 s/step, ETA 0 s"
    assert eta_text(0, 10, 4.0) == "4 s, ETA unknown"  # no step done: no rate yet
    assert [duration_text(s) for s in (0.4, 599, 600, 7139, 7500)] == ["0 s", "599 s", "10 min", "119 min",
                                                                      "2 h 05 min"]


def test_progress_lines_are_time_based_and_a_resumed_run_counts_its_own_steps():
    """At most one line per ``every_s`` of wall time, whatever a step costs; the rate is over
    the steps this process ran (a run resumed at step 20 of 100, 2 s a step)."""
    now, lines = [0.0], []
    meter = Progress(100, lines.append, done=20, every_s=60, clock=lambda: now[0])
    for step in range(21, 101):
        now[0] += 2.0
        meter.tick(step)
    assert lines == ["step 50/100: 60 s, 2 s/step, ETA 100 s", "step 80/100: 120 s, 2 s/step, ETA 40 s"]
    now[0] += 59
    assert meter.text(100) == "219 s, 2.74 s/step, ETA 0 s"  # a dev check's line restarts the wait
    now[0] += 59
    meter.tick(100)
    assert len(lines) == 2
    now[0] += 1
    meter.tick(100, label="call")
    assert lines[2] == "call 100/100: 279 s, 3.49 s/step, ETA 0 s"


def test_a_tiny_pretrainings_dev_checks_log_rate_and_eta_and_progress_lines_come_between(tmp_path, capsys,
                                                                                          monkeypatch):
    from replicate.config import pretrain_settings
    from replicate.jobs import pretrain_job

    from test_pretrain import mp2_config

    monkeypatch.setattr(logs, "PROGRESS_EVERY_S", 0.0)  # a progress line after every step
    settings = pretrain_settings(mp2_config(tmp_path, steps=4), "mp2-shallow", "tiny-bert")  # checks at 3 and 4
    summary = pretrain_job(settings, str(tmp_path / "run"), str(FIXTURES), device="cpu")
    err = capsys.readouterr().err.splitlines()
    checks = [ln for ln in err if " mean dev " in ln]
    assert [c["step"] for c in summary["dev_curve"]] == [3, 4] and len(checks) == 2, err
    for line, step in zip(checks, (3, 4)):
        assert re.fullmatch(STAMP + rf"step {step}/4: mean dev .* tasks( \(.*\))? \| {RATE}", line), line
    ticks = [ln for ln in err if re.fullmatch(STAMP + rf"step \d/4: {RATE}", ln)]
    assert [int(re.search(r"step (\d)/", ln)[1]) for ln in ticks] == [1, 2, 3, 4], err
    assert all(re.match(STAMP, ln) for ln in err), err  # every line of the job's log has its time


def test_a_training_groups_epoch_lines_log_rate_and_eta(tmp_path, capsys):
    from replicate.config import check_config

    from conftest import train_first_group

    cfg = copy.deepcopy(TINY_CONFIG)
    cfg.update(results_dir=str(tmp_path / "results"))
    cfg["grid"].update(methods=["pt"], tasks=["bbc-topic"])
    results = train_first_group(check_config(cfg), None)
    assert [r["status"] for r in results] == ["ok", "ok"]
    epochs = [ln for ln in capsys.readouterr().err.splitlines() if re.match(STAMP + "epoch ", ln)]
    assert len(epochs) == 2, epochs
    for n, line in enumerate(epochs, 1):
        assert re.fullmatch(STAMP + rf"epoch {n} \(.*\): loss [0-9. ]+ \| dev [0-9. ]+ \| {RATE}", line), line


def test_a_task_sets_and_a_black_box_searchs_dev_lines_log_rate_and_eta(tmp_path, capsys):
    from replicate.config import check_config

    from test_blackbox import tune
    from test_compt import _run

    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["grid"]["methods"] = ["compt-ssum"]
    cfg["methods"] = {"compt-ssum": {"epochs": 2, "max_length": 48, "prompt_length": 4, "n_sources": 2,
                                     "batch_size": 4, "prompt_encoder_hidden": 8}}
    _run(check_config(cfg), [8], tmp_path)
    epochs = [ln for ln in capsys.readouterr().err.splitlines() if re.match(STAMP + "epoch ", ln)]
    assert len(epochs) == 2 and all(re.fullmatch(STAMP + rf"epoch \d: dev .* tasks .*\) \| {RATE}", ln)
                                    for ln in epochs), epochs
    lines = []
    tune("bbt", [8], spy=lambda tuner: setattr(tuner, "log", lines.append))  # budget 16 calls, a check every 4
    assert len(lines) == 4 and all(re.fullmatch(rf"\d+ calls: dev [0-9. ]+ \| {RATE}", ln) for ln in lines), lines


def minilm_job(tmp_path):
    """A config training PT on MiniLM (the embedded default's backbone, loaded from its files
    with from_pretrained) and the arguments of its job, split already."""
    import yaml

    from replicate.cli import main

    cfg = copy.deepcopy(TINY_CONFIG)
    cfg.update(results_dir=str(tmp_path / "results"))
    cfg["grid"].update(backbone="minilm-l6", methods=["pt"], tasks=["bbc-topic"], seeds=[8])
    cfg["methods"] = {"pt": {"epochs": 1, "max_length": 32, "prompt_length": 2}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    common = ["--config", str(config), "--task", "bbc-topic", "--shot", "8", "--seeds", "8"]
    assert main(["split", *common]) == 0
    return ["train", "--method", "pt", "--device", "cpu", *common]


def assert_a_quiet_job_log(err: str):
    assert "Loading weights" not in err and "it/s]" not in err, err[-2000:]
    assert re.search(STAMP + r"\[pt minilm-l6 bbc-topic shot 8\] seeds \[8\]: setup", err), err[-2000:]


def test_a_jobs_log_has_no_transformers_progress_bar(tmp_path, capsys):
    """A job through the CLI, in this process (transformers already imported): its stderr
    has timestamped lines and no "Loading weights" bar, and transformers logs warnings at
    most."""
    import logging

    import transformers.utils.logging as hf_logging

    from replicate.cli import main

    argv = minilm_job(tmp_path)
    capsys.readouterr()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()  # a user's TRANSFORMERS_VERBOSITY=info: a job logs its warnings at most
    try:
        assert main(argv) == 0
        assert hf_logging.get_verbosity() == logging.WARNING
    finally:
        hf_logging.set_verbosity(verbosity)
    assert_a_quiet_job_log(capsys.readouterr().err)


@pytest.mark.slow
def test_a_job_process_starts_with_the_bars_off_before_transformers_is_imported(tmp_path):
    """The job as Snakemake runs it, a fresh process: transformers is not imported when the
    job starts, so the environment it reads on import turns its bars off and its logging
    down from info."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    argv = minilm_job(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    env.update(PYTHONPATH=str(REPO), TRANSFORMERS_VERBOSITY="info")
    done = subprocess.run([sys.executable, "-m", "replicate", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_a_quiet_job_log(done.stderr)
    assert "loading" not in done.stderr.lower(), done.stderr[-2000:]  # transformers' info lines ("loading file")
