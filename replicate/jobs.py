"""The work behind each DAG node, callable from the CLI (and so by hand, outside Snakemake)."""

from __future__ import annotations

import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .config import config_hash
from .errors import ConfigError
from .io import cluster_job, git_state, machine, package_versions, read_json, write_json_atomic


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# init="vocab" counts token frequencies over at most this many training-pool examples.
INIT_VOCAB_EXAMPLES = 20000


def encode_parts(encoder, parts: Dict[str, list], cache: dict) -> Tuple[list, list, list]:
    """Encoded train, dev and test examples of one seed, through ``cache`` (shared by the
    seeds of a job). Ids are unique within a pool only (Hub splits restart at 0), so the
    cache is keyed by (pool, id), never by id alone."""
    from .tasks.base import POOL_OF_PART

    out = []
    for part in ("train", "dev", "test"):
        encoded = []
        for ex in parts[part]:
            key = (POOL_OF_PART[part], ex.id)
            if key not in cache:
                cache[key] = encoder.encode(ex)
            encoded.append(cache[key])
        out.append(encoded)
    return tuple(out)


def task_of(settings: dict):
    """The settings' task, pointed at its local data files when the settings name some."""
    from .tasks import resolve_task

    files = settings.get("data_files")
    return resolve_task(settings["task"], {settings["task"]: files} if files else None)


def make_splits(settings: dict, seeds: Sequence[int], data_dir: str, out_paths: Sequence[str]) -> List[dict]:
    """Draw and write one split manifest per seed for (task, shot)."""
    from .config import protocol_of
    from .splits import draw_split

    if len(seeds) != len(out_paths):
        raise ConfigError("give one output path per seed")
    task = task_of(settings)
    pools = task.load_pools(data_dir)
    protocol = protocol_of(settings)
    dropped = None
    if protocol.drop_longer_than and task.kind == "extractive":
        from .backbones import BACKBONES
        from .splits import drop_long

        spec = BACKBONES.get(settings["backbone"])
        pools, dropped = drop_long(task, pools, spec.load_tokenizer(settings.get("backbone_dir")), protocol, spec)
        _log(f"{task.name}: dropped {dropped} examples longer than {protocol.drop_longer_than} tokens")
    manifests = []
    for seed, path in zip(seeds, out_paths):
        manifest = draw_split(task, pools, settings["shot"], seed, protocol)
        if dropped is not None:
            manifest["dropped_too_long"] = dropped
        write_json_atomic(path, manifest)
        manifests.append(manifest)
    return manifests


def train_group(settings: dict, seeds: Sequence[int], split_paths: Sequence[str], out_paths: Sequence[str],
                data_dir: str, threads: Optional[int] = None, device: str = "auto") -> List[dict]:
    """Train every seed of one (method, backbone, task, shot) group; write one result per seed."""
    import torch

    from .backbones import BACKBONES, weights_fingerprint
    from .devices import resolve_device
    from .methods import METHODS
    from .methods.common import frequent_tokens
    from .mrc import MRCEncoder
    from .splits import resolve
    from .train import SeedData, outcome_dict, run_group

    if not (len(seeds) == len(split_paths) == len(out_paths)):
        raise ConfigError("give one split and one output path per seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"duplicate seeds {list(seeds)}")
    threads = settings.get("threads", 1) if threads is None else threads
    torch.set_num_threads(threads)
    device_name, gpu_lock = resolve_device(device)  # the lock is held until this job ends
    device = torch.device(device_name)
    job_start = time.perf_counter()
    method = METHODS.get(settings["method"])
    cfg = method.make_config(settings["method_config"])
    spec = BACKBONES.get(settings["backbone"])
    task = task_of(settings)
    c_hash = config_hash(settings)

    for p in split_paths:
        if not os.path.exists(p):
            raise ConfigError(f"split manifest {p} does not exist: run the split job first "
                              f"(python -m replicate split ... or snakemake)")
    manifests = [read_json(p) for p in split_paths]
    for seed, m in zip(seeds, manifests):
        if (m["task"], m["shot"], m["seed"]) != (task.name, settings["shot"], seed):
            raise ConfigError(f"split {m['task']}/{m['shot']}/{m['seed']} does not belong to seed {seed}")
    pools = task.load_pools(data_dir)
    parts = [resolve(m, pools) for m in manifests]

    backbone, tokenizer = spec.load(dropout=cfg.dropout, local_dir=settings.get("backbone_dir"))
    weights_sha256 = weights_fingerprint(backbone)
    encoder = MRCEncoder(tokenizer, task, cfg.max_length, method.prompt_length(cfg), spec.uses_cls, spec.token_type)
    cache: dict = {}
    seed_data = [SeedData(seed, *encode_parts(encoder, p, cache)) for seed, p in zip(seeds, parts)]
    init_tokens = None
    if getattr(cfg, "init", None) == "vocab":
        # from the training pool only: nothing of the test pool shapes the initialisation
        init_tokens = frequent_tokens(tokenizer, (encoder.task.template.fill(ex)[0] for ex in
                                                  sorted(pools.train, key=lambda ex: ex.id)[:INIT_VOCAB_EXAMPLES]),
                                      cfg.init_vocab_size)
    pristine = None
    if not method.seed_batched:
        pristine = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
    setup_s = time.perf_counter() - job_start
    _log(f"[{settings['method']} {spec.name} {task.name} shot {settings['shot']}] seeds {list(seeds)}: "
         f"setup {setup_s:.1f}s, {len(seed_data[0].train)} train / {len(seed_data[0].dev)} dev / "
         f"{len(seed_data[0].test)} test")

    path_of = dict(zip(seeds, out_paths))
    path_of_split = dict(zip(seeds, split_paths))
    manifest_of = dict(zip(seeds, manifests))
    written = []
    static = {
        "method": method.name, "backbone": spec.name, "task": task.name, "shot": settings["shot"],
        "metric": task.metric, "track": task.track, "suite": task.suite,
    }
    provenance = {
        "config_hash": c_hash, "settings": settings, "packages": package_versions(), "git": git_state(),
        "machine": machine(), "threads": threads, "device": str(device), "cluster": cluster_job(),
        "backbone_weights_sha256": weights_sha256,
        "trainable_parameters": method.trainable_parameters(spec, cfg),
        "seed_batched": method.seed_batched, "group_seeds": list(seeds),
    }

    def on_done(outcome, wall_s: float) -> None:
        o = outcome_dict(outcome)
        m = manifest_of[outcome.seed]
        result = {
            **static, "seed": outcome.seed, "status": o["status"], "error": o["error"],
            "metrics": o["test_metrics"], "score": o["test_metrics"].get(task.metric),
            "dev": {"best_epoch": o["best_epoch"], "best_score": o["best_dev"], "curve": o["dev_curve"]},
            "train_loss_curve": o["loss_curve"],
            "wall_time_s": round(wall_s, 2),
            "wall_time_note": ("time of the whole seed-batched group (all its seeds at once)"
                               if method.seed_batched else "time of this seed alone"),
            "setup_time_s": round(setup_s, 2),
            "split": {"path": os.path.relpath(path_of_split[outcome.seed]), "hash": m["hash"],
                      "sizes": {k: len(m[k]) for k in ("train", "dev", "test")}},
            "provenance": provenance,
        }
        write_json_atomic(path_of[outcome.seed], result)
        written.append(result)
        _log(f"  seed {outcome.seed}: {o['status']} test {task.metric}="
             f"{result['score'] if result['score'] is None else round(result['score'], 2)} "
             f"(best dev {o['best_dev']} at epoch {o['best_epoch']}) -> {path_of[outcome.seed]}")

    run_group(method, cfg, spec, task, backbone, tokenizer, pristine, seed_data, encoder, on_done, log=_log,
              device=device, init_tokens=init_tokens)
    if gpu_lock is not None:
        gpu_lock.close()  # the GPU is free for the next job
    return written
