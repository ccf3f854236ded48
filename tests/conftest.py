import copy
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PAPER_FIXTURES = FIXTURES / "paper"  # tests/fixtures/make_paper_fixtures.py writes them
# The one bound on any subprocess or wait in the tests: it only turns a hang into a failure,
# far above any honest time on a busy machine, so that no correct run fails on wall time.
HANG_GUARD_S = 1800

# Tests never reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TINY_CONFIG = {
    "run": "tiny",
    "setup": "embedded",
    "results_dir": "results",
    "data_dir": str(FIXTURES),
    "threads_per_job": 1,
    "protocol": {"many_labels": 5, "per_label_when_many": 8, "test_cap": 24},
    "grid": {
        "backbone": "tiny-bert",
        "shots": [8],
        "seeds": [8, 13],
        "methods": ["model-tuning", "pt", "ptv2"],
        "tasks": ["bbc-topic", "fine-foods"],
    },
    "methods": {
        "model-tuning": {"epochs": 1, "max_length": 48},
        "pt": {"epochs": 2, "max_length": 48, "prompt_length": 4},
        "ptv2": {"epochs": 2, "max_length": 48, "prompt_length": 4},
    },
    "paper_data_files": {},
}


@pytest.fixture
def tiny_config(tmp_path):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    return cfg


def paper_files(*tasks):
    """paper_data_files for MP2 tasks, pointing at the Hub-schema fixtures."""
    stem = {"cmrc-2018": "cmrc2018"}
    return {t: {"train": str(PAPER_FIXTURES / f"{stem.get(t, t)}_train.jsonl"),
                "test": str(PAPER_FIXTURES / f"{stem.get(t, t)}_test.jsonl")} for t in tasks}


@pytest.fixture(scope="session")
def tiny_cpt_dir(tmp_path_factory):
    """A random checkpoint with CPT-large's files and key names (tests/tiny_cpt.py)."""
    from tiny_cpt import write_tiny_cpt

    return write_tiny_cpt(tmp_path_factory.mktemp("tiny-cpt"), PAPER_FIXTURES)


def train_first_group(cfg, checkpoint, seeds=None, outs=None):
    """Split and train the config's first (method, task, shot) group through the train job
    (``jobs.train_group``), from the pre-training ``checkpoint``: its results, one per seed
    (``seeds``: the grid's; ``outs``: the result files, by default where the config puts them)."""
    from replicate.config import Cell, cell_settings, groups, result_path, split_path, split_settings
    from replicate.jobs import make_splits, train_group

    group = groups(cfg)[0]
    seeds = cfg["grid"]["seeds"] if seeds is None else seeds
    splits = [split_path(cfg, group.task, group.shot, s) for s in seeds]
    make_splits(split_settings(cfg, group.task, group.shot), seeds, str(FIXTURES), splits)
    if outs is None:
        outs = [result_path(cfg, Cell(group.method, group.backbone, group.task, group.shot, s)) for s in seeds]
    return train_group(cell_settings(cfg, group), seeds, splits, outs, str(FIXTURES), device="cpu",
                       pretrained_path=checkpoint)


T2T_FIXTURES = FIXTURES / "text2text"  # tests/fixtures/make_text2text_fixtures.py writes them
T2T_STEM = {"sst-2": "sst2", "sts-b": "stsb", "naturalquestions": "mrqa", "hotpotqa": "mrqa", "searchqa": "mrqa",
            "newsqa": "mrqa", "yelp-polarity": "yelp_polarity", "paws-en": "paws", "multinli": "multi_nli"}


def t2t_files(*tasks):
    """paper_data_files for ATTEMPT-suite tasks (replicate/tasks/text2text.py): every Hub
    split the task's source reads, pointing at the Hub-schema fixtures."""
    from replicate.tasks import TASKS

    out = {}
    for t in tasks:
        splits = TASKS.get(t).source.hub_splits()  # ANLI's pools join three rounds' splits
        out[t] = {s: str(T2T_FIXTURES / f"{T2T_STEM.get(t, t)}_{s}.jsonl") for s in splits}
    return out


def write_cell(cfg, cell, score=None, status="ok", **fields):
    """A result file for ``cell`` that is current for ``cfg`` (the fields, config hash and split
    hash the reader checks, sealed as train seals it), with ``score`` in the task's metric;
    ``fields`` add to or override the record (aggregation tests: stages, metrics, ...)."""
    from replicate.config import Group, cell_settings, config_hash, result_path, split_path
    from replicate.io import read_json
    from replicate.results import write_result
    from replicate.tasks import TASKS

    metric = fields.pop("metric", None) or TASKS.get(cell.task).metric
    split = split_path(cfg, cell.task, cell.shot, cell.seed)
    split_hash = read_json(split).get("hash") if os.path.exists(split) else None
    result = {"method": cell.method, "backbone": cell.backbone, "task": cell.task, "shot": cell.shot,
              "seed": cell.seed, "metric": metric, "status": status, "score": score if status == "ok" else None,
              "metrics": {metric: score} if status == "ok" else {}, "split": {"hash": split_hash},
              "provenance": {"config_hash": config_hash(cell_settings(cfg, Group(*cell[:4])))}}
    result.update(fields)
    return write_result(result_path(cfg, cell), result)
