"""``python -m replicate status <results_dir>``: where a run stands, from what is on disk alone.

Cells: the result files under ``cells/`` (``config.result_path``), done ("ok") or failed
(a failed seed's record, ``status`` "failed"; a failed rerun beside a finished cell,
``results.failure_path``, is counted apart). Pre-trainings: ``pretrain/<name>/<backbone>/``
with ``pretrain.json`` (done) or with ``resume.pt`` and no ``pretrain.json`` (in progress),
each with the last ``step k/N`` of its log. Jobs running: the logs under ``logs/`` written
in the last ``ACTIVE_S`` seconds. ETA: the last "ETA ..." each of those logs printed
(``logs.Progress``)."""

from __future__ import annotations

import os
import re
import time
from typing import List, Optional, Tuple

from .errors import DataError

ACTIVE_S = 120  # a log written within this many seconds counts as a running job's
SUBDIRS = ("cells", "pretrain", "logs", "splits")  # what makes a folder a results dir
SHOWN = 4  # names listed per line at most
STEP = re.compile(r"\bstep (\d+)/(\d+)\b")
ETA = re.compile(r"\bETA ([^|;,]+?)\s*$")


def _files(root: str, suffix: str) -> List[str]:
    out = []
    for folder, _, names in os.walk(root):
        out += [os.path.join(folder, n) for n in names if n.endswith(suffix)]
    return sorted(out)


def _listed(names: List[str]) -> str:
    if not names:
        return ""
    more = f", ... {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f" ({', '.join(names[:SHOWN])}{more})"


def _last_match(path: str, pattern: re.Pattern, tail: int = 65536) -> Optional[re.Match]:
    """The last line of the file's end (``tail`` bytes) that ``pattern`` finds something in."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - tail))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        found = pattern.search(line)
        if found:
            return found
    return None


def _cells(results_dir: str) -> Tuple[int, List[str], int, int]:
    """(done, failed cells' names, failed reruns beside finished cells, unreadable files)."""
    from .results import read_result

    root = os.path.join(results_dir, "cells")
    done, failed, reruns, unreadable = 0, [], 0, 0
    for path in _files(root, ".json"):
        rel = os.path.relpath(path, root)
        try:
            result = read_result(path)
        except DataError:
            unreadable += 1
            continue
        if rel.endswith(".failed.json"):
            reruns += 1
        elif result["status"] == "ok":
            done += 1
        else:
            failed.append(rel[:-len(".json")])
    return done, failed, reruns, unreadable


def _pretrainings(results_dir: str) -> Tuple[List[str], List[str]]:
    """(done, in progress), each as ``name/backbone``; in progress with its log's last step."""
    from .jobs import RESUME_FILE, SUMMARY_FILE

    root = os.path.join(results_dir, "pretrain")
    done, running = [], []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        for backbone in sorted(os.listdir(os.path.join(root, name))) if os.path.isdir(os.path.join(root, name)) else []:
            here = os.path.join(root, name, backbone)
            if os.path.exists(os.path.join(here, SUMMARY_FILE)):
                done.append(f"{name}/{backbone}")
            elif os.path.exists(os.path.join(here, RESUME_FILE)):
                step = _last_match(os.path.join(results_dir, "logs", "pretrain", f"{name}_{backbone}.log"), STEP)
                running.append(f"{name}/{backbone}" + (f" at step {step[1]} of {step[2]}" if step else ""))
    return done, running


def status_lines(results_dir: str, now: Optional[float] = None, active_s: float = ACTIVE_S) -> List[str]:
    """The summary of ``results_dir``, one line per category; DataError if it is not a results dir."""
    if not os.path.exists(results_dir):
        raise DataError(f"status: {results_dir} does not exist (give a run's results folder, e.g. results)")
    if not os.path.isdir(results_dir) or not any(os.path.isdir(os.path.join(results_dir, d)) for d in SUBDIRS):
        raise DataError(f"status: {results_dir} is not a results folder (none of {', '.join(SUBDIRS)} in it)")
    now = time.time() if now is None else now
    done, failed, reruns, unreadable = _cells(results_dir)
    pre_done, pre_running = _pretrainings(results_dir)
    logs = os.path.join(results_dir, "logs")
    active = [p for p in _files(logs, ".log") if now - os.path.getmtime(p) <= active_s]
    etas = []
    for path in active:
        found = _last_match(path, ETA)
        if found:
            etas.append(f"{os.path.relpath(path, logs)} {found[1]}")
    extra = [f"{reruns} failed rerun(s) beside finished cells"] if reruns else []
    extra += [f"{unreadable} unreadable or edited"] if unreadable else []
    return [
        f"cells done: {done}" + (f" ({', '.join(extra)})" if extra else ""),
        f"cells failed: {len(failed)}" + _listed(failed),
        f"pre-trainings: {len(pre_done)} done, {len(pre_running)} in progress" + _listed(pre_running),
        f"recently active logs (last {active_s:.0f} s): {len(active)}"
        + _listed([os.path.relpath(p, logs) for p in active]),
        "ETA: " + ("; ".join(etas) + " (each log's last progress line)" if etas else "unknown (no active log has a "
                                                                                      "progress line yet)"),
    ]
