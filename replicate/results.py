"""Result files (one per cell): sealed when written, checked before they are used or replaced.

A cell file is *current* for a config only if nobody edited it (its digest, and its score
against its metrics), it sits where its fields say (method, backbone, task, shot, seed),
it was trained with the settings the config gives it (its config hash), and on the split
the config's layout holds now (its split hash). Tables, diffs, reports and figures read
cells through ``read_cell``/``read_result``, so a stale, edited or moved cell is refused
in one line naming the file, never shown as current.

A finished ``ok`` cell is never replaced by a failure record: a rerun that fails writes
its record beside it (``failure_path``), and the finished result stays.
"""

from __future__ import annotations

import math
import os
from typing import Dict, Optional

from .errors import DataError
from .io import read_json, stable_hash, write_json_atomic

DIGEST_KEY = "digest"
RERUN = "rerun its job (snakemake reruns it) or delete the file"


def digest_of(result: dict) -> str:
    """SHA-256 of a result's content without its digest (canonical JSON)."""
    return stable_hash({k: v for k, v in result.items() if k != DIGEST_KEY})


def failure_path(path: str) -> str:
    """Where a failed rerun's record goes when ``path`` holds a finished result."""
    root, ext = os.path.splitext(path)
    return f"{root}.failed{ext}"


def write_result(path: str, result: dict) -> str:
    """Seal ``result`` with its digest and write it to ``path``; a failure record goes beside
    an ``ok`` result already there instead of over it. Returns the path written."""
    sealed = {**{k: v for k, v in result.items() if k != DIGEST_KEY}, DIGEST_KEY: digest_of(result)}
    if sealed.get("status") != "ok" and _finished(path):
        path = failure_path(path)
    else:
        stale_failure = failure_path(path)
        if sealed.get("status") == "ok" and os.path.exists(stale_failure):
            os.remove(stale_failure)  # the cell finished: an earlier failure no longer describes it
    write_json_atomic(path, sealed)
    return path


def _finished(path: str) -> bool:
    try:
        return read_json(path).get("status") == "ok"
    except DataError:
        return False  # unreadable: nothing finished to keep


def read_result(path: str) -> dict:
    """The result in ``path``, refused in one line if it was edited after it was written:
    its digest, and an ``ok`` cell's score against its metrics."""
    result = read_json(path)
    if not isinstance(result, dict) or "status" not in result:
        raise DataError(f"result {path}: not a result file (no status); {RERUN}")
    if result.get(DIGEST_KEY) is None:
        raise DataError(f"result {path}: has no digest (written by an older replicate, or by hand); {RERUN}")
    if result[DIGEST_KEY] != digest_of(result):
        raise DataError(f"result {path}: edited after it was written (its digest does not match its content); "
                        f"{RERUN}")
    if result["status"] == "ok":
        score, metric = result.get("score"), result.get("metrics", {}).get(result.get("metric"))
        if not isinstance(score, (int, float)) or not math.isfinite(score) or score != metric:
            raise DataError(f"result {path}: its score {score!r} is not its {result.get('metric')} {metric!r}; "
                            f"{RERUN}")
    return result


PROMPT_KEY = "prompt_file"  # a result's record of its saved input prompt (None: the method saves none)


def prompt_path(result_path: str) -> str:
    """Where the cell at ``result_path`` keeps its input prompt: the same place in a
    ``prompts`` tree beside ``cells`` (``<results_dir>/prompts/<backbone>/.../seed<s>.safetensors``),
    so that a cell's folder holds its result files alone; beside the result for a result
    written outside a ``cells`` tree (a by-hand ``--out``)."""
    parts = list(os.path.normpath(os.path.abspath(result_path)).split(os.sep))
    stem = os.path.splitext(parts[-1])[0]
    if "cells" in parts[:-1]:
        at = len(parts) - 2 - parts[:-1][::-1].index("cells")
        return os.sep.join(parts[:at] + ["prompts"] + parts[at + 1:-1] + [stem + ".safetensors"])
    return os.path.join(os.path.dirname(result_path), stem + ".prompt.safetensors")


def write_prompt_file(result_path: str, tensors: Dict) -> dict:
    """Save a cell's inference tensors (``train.GroupTrainer._inference_tensors``) at
    ``prompt_path(result_path)``; the record its result keeps: the file's path relative to
    the result's folder (a moved results folder stays whole), its sha256 and the shapes."""
    from .io import save_safetensors_atomic, sha256_file

    path = prompt_path(result_path)
    save_safetensors_atomic(tensors, path)
    return {"path": os.path.relpath(path, os.path.dirname(os.path.abspath(result_path))),
            "sha256": sha256_file(path), "shapes": {k: list(v.shape) for k, v in sorted(tensors.items())}}


def read_prompt_file(result_path: str, result: dict) -> Dict:
    """The tensors of the prompt file ``result`` (read from ``result_path``) records, checked
    against its sha256; DataError in one line if it is missing, changed or unreadable. A
    result that records none is the caller's to refuse (it knows why there is none)."""
    from .io import sha256_file

    record = result.get(PROMPT_KEY)
    path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(result_path)), record["path"]))
    if not os.path.exists(path):
        raise DataError(f"prompt file {path} of result {result_path} does not exist (not copied with it?); {RERUN}")
    if sha256_file(path) != record["sha256"]:
        raise DataError(f"prompt file {path}: its sha256 is not the one result {result_path} records (changed "
                        f"or from another run); {RERUN}")
    from safetensors.torch import load_file

    return load_file(path)


class CellReader:
    """Reads the cells of one config, each checked against what the config says it is;
    caches the expected config hash per group and split hash per split file."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self._hashes: Dict[tuple, str] = {}
        self._splits: Dict[str, Optional[str]] = {}

    def expected_hash(self, cell) -> str:
        from .config import Group, cell_settings, config_hash

        group = Group(cell.method, cell.backbone, cell.task, cell.shot)
        if group not in self._hashes:
            self._hashes[group] = config_hash(cell_settings(self.cfg, group))
        return self._hashes[group]

    def split_hash(self, cell) -> Optional[str]:
        from .config import split_path

        path = split_path(self.cfg, cell.task, cell.shot, cell.seed)
        if path not in self._splits:
            self._splits[path] = read_json(path).get("hash") if os.path.exists(path) else None
        return self._splits[path]

    def read(self, cell) -> Optional[dict]:
        """The cell's result if its file exists (None if not); DataError if it is not current."""
        from .config import result_path

        path = result_path(self.cfg, cell)
        if not os.path.exists(path):
            return None
        result = read_result(path)
        fields = tuple(result.get(k) for k in ("method", "backbone", "task", "shot", "seed"))
        if fields != tuple(cell):
            raise DataError(f"result {path}: its fields say {'/'.join(map(str, fields))}, not the cell its path "
                            f"names ({'/'.join(map(str, cell))}): moved or copied; {RERUN}")
        have, want = result.get("provenance", {}).get("config_hash"), self.expected_hash(cell)
        if have != want:
            raise DataError(f"result {path}: stale: trained with config hash {str(have)[:12]}, but the config now "
                            f"gives this cell {want[:12]} (its settings changed); {RERUN}")
        split = self.split_hash(cell)
        if split is not None and result.get("split", {}).get("hash") != split:
            raise DataError(f"result {path}: stale: scored on split {str(result.get('split', {}).get('hash'))[:12]}, "
                            f"but the split file now holds {split[:12]} (it was redrawn); {RERUN}")
        return result
