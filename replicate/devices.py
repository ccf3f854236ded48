"""Which device a training job runs on.

On a workstation with several GPUs, ``snakemake --cores 8 --resources gpu=N`` caps how many
GPU jobs run at once (the train rule asks for ``gpu=1`` in the workstation profile) but does
not say WHICH GPU each job takes. So a job claims one: the first visible GPU whose lock file
it can lock exclusively (``io.try_lock``: ``fcntl.flock``, held for the job's life and released by the kernel
when the process ends, kill -9 included), and runs on it. With one visible GPU (a SLURM job
sees only its own) there is nothing to choose and nothing is locked; with none, the job runs
on the CPU as before.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import List, Optional, Sequence, Tuple

from .errors import ConfigError
from .io import try_lock

LOCK_DIR_ENV = "REPLICATE_GPU_LOCK_DIR"


def visible_gpus() -> List[str]:
    """Ids of the GPUs this process may use (CUDA_VISIBLE_DEVICES' entries, else indices)."""
    import torch

    if not torch.cuda.is_available():
        return []
    n = torch.cuda.device_count()
    listed = [x.strip() for x in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    return listed[:n] if len(listed) >= n else [str(i) for i in range(n)]


def lock_dir() -> str:
    return os.environ.get(LOCK_DIR_ENV) or os.path.join(tempfile.gettempdir(), f"replicate-gpu-locks-{os.getuid()}")


def claim_gpu(gpu_ids: Sequence[str], directory: Optional[str] = None, timeout_s: float = 3600.0,
              poll_s: float = 0.5) -> Tuple[int, object]:
    """(position in ``gpu_ids``, open lock file) of the first GPU no other job holds; waits
    while all are held (another run on the same machine), up to ``timeout_s``."""
    directory = directory or lock_dir()
    os.makedirs(directory, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for position, gpu in enumerate(gpu_ids):
            handle = try_lock(os.path.join(directory, f"gpu-{gpu}.lock"), f"pid {os.getpid()}")
            if handle is not None:
                return position, handle
        if time.monotonic() > deadline:
            raise ConfigError(f"no free GPU among {list(gpu_ids)} after {timeout_s:.0f}s (locks in {directory})")
        time.sleep(poll_s)


def check_device(requested: str) -> str:
    """``requested`` ("cpu", "cuda", "cuda:N", "mps") if this machine has it; ConfigError
    otherwise, before any training (a job that cannot run must not write a failure record)."""
    import torch

    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {requested}: not a device (cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"--device {requested}: this machine has no CUDA GPU (use cpu or auto)")
        if device.index is not None and device.index >= n:
            raise ConfigError(f"--device {requested}: this machine has {n} visible GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {requested}: MPS is not available here (use cpu or auto)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {requested}: not a device (cpu, cuda, cuda:N or auto)")
    return requested


def resolve_device(requested: str, gpu_ids: Optional[Sequence[str]] = None) -> Tuple[str, Optional[object]]:
    """(torch device string, lock handle to keep open or None) for ``requested``: "cpu",
    "cuda", "cuda:N" as given; "auto" = a claimed GPU when there are several, the GPU when
    there is one, else the CPU."""
    if requested != "auto":
        return check_device(requested), None
    gpu_ids = visible_gpus() if gpu_ids is None else list(gpu_ids)
    if not gpu_ids:
        return "cpu", None
    if len(gpu_ids) == 1:
        return "cuda:0", None
    position, handle = claim_gpu(gpu_ids)
    return f"cuda:{position}", handle
