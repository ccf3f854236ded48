"""The work behind each DAG node, callable from the CLI (and so by hand, outside Snakemake)."""

from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .config import config_hash
from .errors import ConfigError, DataError
from .io import (cluster_job, git_state, load_torch, machine, package_versions, read_json, save_torch_atomic,
                 write_json_atomic)
from .logs import job_log
from .results import PROMPT_KEY, write_prompt_file, write_result


def _log(msg: str) -> None:
    """A job's log line: timestamped, to stderr (``logs.job_log``)."""
    job_log(msg)


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


CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "pretrain.json"
# the wall time of a pre-training and whether it resumed: apart, so pretrain.json is the same bytes whether the run
# was killed and resumed or not
TIME_FILE = "pretrain.time.json"
RESUME_FILE = "resume.pt"


def pretrain_data_job(settings: dict, out_dir: str, data_dir: str) -> dict:
    """The data node of a pre-training (``settings``: its ``data_settings_of``): build its
    upstream examples and write them with their manifest under ``out_dir``."""
    from .pretrain_data import build_data, write_data

    data, tasks = build_data(settings, data_dir, log=_log)
    return write_data(out_dir, settings, data, tasks)


def load_teachers(settings: dict, cfg, teachers_path: Optional[str]) -> Tuple[Optional[dict], Optional[dict]]:
    """(the teachers {"tasks", "prompts" (n, L, d), "head"}, their provenance) of a
    distilling pre-training: the checkpoint of its ``teachers`` pre-training at
    ``teachers_path`` (checked against the settings hash its settings hold), or its
    ``teacher_files`` (checked against their sha256 in the settings); (None, None) without."""
    import torch

    from .io import sha256_file

    if cfg.teachers is not None:
        if not teachers_path:
            raise ConfigError(f"pre-training {settings['pretraining']!r} distils from {cfg.teachers!r}: pass its "
                              "checkpoint (--teachers)")
        raw = load_torch(teachers_path, f"teachers {cfg.teachers!r}: checkpoint",
                         f"delete it and rerun the pretrain job of {cfg.teachers!r}", map_location="cpu",
                         weights_only=False)
        want = settings["teachers"]["settings_hash"]
        if raw.get("settings_hash") != want or raw.get("prompt") != "per-task":
            raise ConfigError(f"teachers {teachers_path}: not the checkpoint of pre-training {cfg.teachers!r} with "
                              f"settings {want} (it has {raw.get('settings_hash')}); rerun that pre-training")
        return ({"tasks": list(raw["tasks"]), "prompts": raw["prompt_tensor"].float(), "head": raw.get("head")},
                {"pretraining": cfg.teachers, "path": os.path.relpath(teachers_path),
                 "sha256": sha256_file(teachers_path), "settings_hash": want})
    if cfg.teacher_files is not None:
        prompts, files = [], {}
        for task in cfg.tasks:
            path = cfg.teacher_files[task]
            digest = sha256_file(path)
            if digest != settings["teachers"]["files"][task]["sha256"]:
                raise ConfigError(f"teacher file {path}: its sha256 is not the one the settings hold; the file "
                                  "changed since the DAG was built")
            tensor = load_torch(path, "teacher file", "save its prompt tensor again (torch.save)", map_location="cpu",
                                weights_only=True)
            if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2:
                raise ConfigError(f"teacher file {path}: not one prompt tensor (length, d)")
            prompts.append(tensor.float())
            files[task] = {"path": path, "sha256": digest}
        shapes = {tuple(p.shape) for p in prompts}
        if len(shapes) != 1:
            raise ConfigError(f"teacher files: their prompts differ in shape ({sorted(shapes)})")
        return {"tasks": list(cfg.tasks), "prompts": torch.stack(prompts), "head": None}, {"files": files}
    return None, None


def pretrain_job(settings: dict, out_dir: str, data_dir: str, device: str = "auto",
                 stop_after: Optional[int] = None, data_path: Optional[str] = None,
                 teachers_path: Optional[str] = None) -> Optional[dict]:
    """Run one pre-training; write ``checkpoint.pt`` (the best tensors), ``pretrain.json``
    (curves, the routers, data sizes, provenance) and ``pretrain.time.json`` (this job's wall
    time, the step it resumed at) under ``out_dir``. ``data_path``: its data
    node's folder (``pretrain_data_job``); without one the data is built here, the same way.
    ``teachers_path``: the checkpoint of its teachers (a distilling run, MPT). With
    ``stop_after`` (tests: a simulated kill) it stops after that many steps and writes
    neither."""
    import torch

    from .backbones import BACKBONES, attention_for, weights_fingerprint
    from .devices import resolve_device
    from .io import sha256_file
    from .pretrain import build_data, check_upstream_tasks, make_pretrain_config, read_data, run_pretraining

    name = settings["pretraining"]
    cfg = make_pretrain_config(name, settings["config"])
    tasks = check_upstream_tasks(name, cfg, settings.get("data_files") or {})
    torch.set_num_threads(settings.get("threads", 1))
    device_name, gpu_lock = resolve_device(device)
    job_start = time.perf_counter()
    spec = BACKBONES.get(settings["backbone"])
    if data_path:
        data, manifest = read_data(data_path, settings)
    else:
        data, manifest = build_data(settings, data_dir, log=_log)[0], None
    sizes = {t.name: {"train": len(data[t.name][0]), "dev": len(data[t.name][1])} for t in tasks}
    teachers, teachers_provenance = load_teachers(settings, cfg, teachers_path)
    backbone, tokenizer = spec.load(local_dir=settings.get("backbone_dir"), seq2seq=cfg.formulation == "seq2seq",
                                    attention=attention_for(device_name))
    os.makedirs(out_dir, exist_ok=True)
    s_hash = config_hash(settings)
    outcome = run_pretraining(cfg, spec, backbone, tokenizer, tasks, data, os.path.join(out_dir, RESUME_FILE), s_hash,
                              log=_log, device=torch.device(device_name), stop_after=stop_after, teachers=teachers)
    if outcome["steps_run"] < cfg.steps:
        return None
    checkpoint = {**outcome["state"], "tasks": [t.name for t in tasks], "prompt": cfg.prompt, "layout": cfg.layout,
                  "prompt_length": cfg.prompt_length, "n_prompts": cfg.n_prompts, "d_model": spec.d_model,
                  "formulation": cfg.formulation,
                  "settings_hash": s_hash, "best_step": outcome["best_step"], "best_dev": outcome["best_dev"]}
    path = os.path.join(out_dir, CHECKPOINT_FILE)
    save_torch_atomic(checkpoint, path)
    summary = {
        "pretraining": name, "backbone": spec.name, "config_hash": s_hash, "settings": settings,
        "checkpoint": {"path": os.path.relpath(path), "sha256": sha256_file(path)},
        "data": None if manifest is None else {"path": os.path.relpath(data_path), "sha256": manifest["sha256"]},
        "teachers": teachers_provenance,
        # dev_constant: the best constant prediction's dev score, what a task's dev curve must beat
        "tasks": [{"name": t.name, "family": t.family, "track": t.track, "kind": t.kind, **sizes[t.name],
                   "dev_constant": outcome["dev_constant"][t.name]} for t in tasks],
        "best_step": outcome["best_step"], "best_dev": round(outcome["best_dev"], 4),
        "dev_curve": outcome["dev_curve"], "loss_curve": outcome["loss_curve"],
        # the learned routers, tasks x layers x K logits: what the router dendrogram is drawn from
        "routers": [[[round(float(v), 6) for v in layer] for layer in task]
                    for task in outcome["state"].get("router", [])],
        "provenance": {"packages": package_versions(), "git": git_state(), "machine": machine(),
                       "threads": settings.get("threads", 1), "device": device_name,
                       "attention": attention_for(device_name), "cluster": cluster_job(),
                       "backbone_weights_sha256": weights_fingerprint(backbone)},
    }
    write_json_atomic(os.path.join(out_dir, TIME_FILE), {
        "wall_time_s": round(time.perf_counter() - job_start, 2), "resumed_at_step": outcome["resumed_at_step"],
        "note": "time of this job alone: a resumed run's earlier jobs are not counted"})
    write_json_atomic(os.path.join(out_dir, SUMMARY_FILE), summary)
    os.remove(os.path.join(out_dir, RESUME_FILE))  # the run is complete: nothing to resume
    if gpu_lock is not None:
        gpu_lock.close()
    return summary


def load_pretrained(settings: dict, path: Optional[str]) -> Tuple[Optional[dict], Optional[dict]]:
    """(tensors for the method, provenance) of the checkpoint a cell starts from; ConfigError
    if it is missing or was pre-trained with other settings than the cell's."""
    if "pretraining" not in settings:
        return None, None
    from .io import sha256_file
    from .pretrain import checkpoint_tensors

    name = settings["pretraining"]["pretraining"]
    if not path or not os.path.exists(path):
        raise ConfigError(f"pre-training {name}: checkpoint {path} does not exist: run the pretrain job first "
                          "(python -m replicate pretrain ... or snakemake)")
    raw = load_torch(path, f"pre-training {name}: checkpoint", "delete it and rerun the pretrain job",
                     weights_only=False)
    if raw.get("settings_hash") != config_hash(settings["pretraining"]):
        raise ConfigError(f"pre-training {name}: checkpoint {path} was made with other settings than this run's "
                          "pretraining entry; rerun the pretrain job")
    return checkpoint_tensors(raw), {"name": name, "path": os.path.relpath(path), "sha256": sha256_file(path),
                                     "settings_hash": raw["settings_hash"], "best_step": raw["best_step"]}


# what training reads of a split manifest (splits.draw_split writes them all)
MANIFEST_KEYS = frozenset({"task", "shot", "seed", "protocol", "train", "dev", "test", "hash"})


def read_manifests(settings: dict, task: str, seeds: Sequence[int], split_paths: Sequence[str]) -> List[dict]:
    """The split manifests of ``task``'s seeds, each checked to be the one the settings
    train on: it exists, names this task, shot and seed, and was drawn under the settings'
    protocol (a manifest from before a protocol change would score the cell on other data
    than its config says)."""
    from .config import protocol_of
    from .splits import protocol_dict

    want = protocol_dict(protocol_of(settings))
    manifests = []
    for seed, path in zip(seeds, split_paths):
        if not os.path.exists(path):
            raise ConfigError(f"split manifest {path} does not exist: run the split job first "
                              f"(python -m replicate split ... or snakemake)")
        m = read_json(path)
        missing = MANIFEST_KEYS - set(m) if isinstance(m, dict) else MANIFEST_KEYS
        if missing:  # a JSON that is not a manifest, or one cut down by hand
            raise DataError(f"split manifest {path}: not a split file (no {', '.join(sorted(missing))}): delete it "
                            "and rerun the split job")
        if (m.get("task"), m.get("shot"), m.get("seed")) != (task, settings["shot"], seed):
            raise ConfigError(f"split manifest {path}: {m.get('task')}/{m.get('shot')}/{m.get('seed')} is not "
                              f"task {task}, shot {settings['shot']}, seed {seed}")
        if m.get("protocol") != want:
            raise ConfigError(f"split manifest {path}: drawn under another protocol than the config's (the protocol "
                              "changed since): rerun the split job (snakemake reruns it) or delete the file")
        manifests.append(m)
    return manifests


def train_group(settings: dict, seeds: Sequence[int], split_paths: Sequence[str], out_paths: Sequence[str],
                data_dir: str, threads: Optional[int] = None, device: str = "auto",
                pretrained_path: Optional[str] = None) -> List[dict]:
    """Train every seed of one (method, backbone, task, shot) group; write one result per seed."""
    import torch

    from .backbones import BACKBONES, attention_for, weights_fingerprint
    from .devices import resolve_device
    from .methods.base import method_of
    from .methods.common import frequent_tokens
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
    method = method_of(settings)
    cfg = method.make_config(settings["method_config"])
    spec = BACKBONES.get(settings["backbone"])
    task = task_of(settings)
    c_hash = config_hash(settings)

    manifests = read_manifests(settings, task.name, seeds, split_paths)
    pools = task.load_pools(data_dir)
    parts = [resolve(m, pools) for m in manifests]
    task = method.task_view(task, cfg)
    if method.pretraining(cfg, task) is not None and "pretraining" not in settings:
        raise ConfigError(f"method {method.name} starts from pre-training {method.pretraining(cfg, task)!r}, but "
                          "the settings name none (derive them with --config, or from the Snakefile)")
    pretrained, pretrained_provenance = load_pretrained(settings, pretrained_path)

    backbone, tokenizer = spec.load(dropout=cfg.dropout, local_dir=settings.get("backbone_dir"),
                                    seq2seq=method.seq2seq(cfg), attention=attention_for(device_name))
    weights_sha256 = weights_fingerprint(backbone)
    encoder = method.encoder(tokenizer, task, cfg, spec)
    cache: dict = {}
    seed_data = [SeedData(seed, *encode_parts(encoder, p, cache)) for seed, p in zip(seeds, parts)]
    init_tokens = None
    if getattr(cfg, "init", None) == "vocab":
        # from the training pool only: nothing of the test pool shapes the initialisation
        text_of = getattr(encoder, "source_text", None) or (lambda ex: encoder.task.template.fill(ex)[0])
        init_tokens = frequent_tokens(tokenizer, (text_of(ex) for ex in
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
        "machine": machine(), "threads": threads, "device": str(device), "attention": attention_for(device),
        "cluster": cluster_job(),
        "backbone_weights_sha256": weights_sha256,
        "trainable_parameters": method.trainable_parameters(spec, cfg),
        "seed_batched": method.seed_batched, "group_seeds": list(seeds),
        "pretrained_checkpoint": pretrained_provenance,
    }

    def on_done(outcome, wall_s: float) -> None:
        o = outcome_dict(outcome)
        m = manifest_of[outcome.seed]
        result = {
            **static, "seed": outcome.seed, "status": o["status"], "error": o["error"],
            "metrics": o["test_metrics"], "score": o["test_metrics"].get(task.metric),
            "test_details": o["test_details"],
            # the dev curve's x: epochs, or forward calls for black-box methods (best_epoch likewise)
            "dev": {"best_epoch": o["best_epoch"], "best_score": o["best_dev"], "curve": o["dev_curve"],
                    "unit": method.progress_unit},
            "train_loss_curve": o["loss_curve"],
            "stages": o["stages"],
            "wall_time_s": round(wall_s, 2),
            "wall_time_note": ("time of the whole seed-batched group (all its seeds at once)"
                               if method.seed_batched else "time of this seed alone"),
            "setup_time_s": round(setup_s, 2),
            "split": {"path": os.path.relpath(path_of_split[outcome.seed]), "hash": m["hash"],
                      "sizes": {k: len(m[k]) for k in ("train", "dev", "test")}},
            "provenance": provenance,
            # the tested prompt, for use outside the harness (``export-peft``); written first, so a
            # result never names a file that is not there
            PROMPT_KEY: (write_prompt_file(path_of[outcome.seed], outcome.inference_tensors)
                         if o["status"] == "ok" and outcome.inference_tensors else None),
        }
        where = write_result(path_of[outcome.seed], result)
        written.append(result)
        _log(f"  seed {outcome.seed}: {o['status']} test {task.metric}="
             f"{result['score'] if result['score'] is None else round(result['score'], 2)} "
             f"(best dev {o['best_dev']} at {method.progress_unit} {o['best_epoch']}) -> {where}"
             + ("" if where == path_of[outcome.seed] else f" (beside the finished {path_of[outcome.seed]})"))

    run_group(method, cfg, spec, task, backbone, tokenizer, pristine, seed_data, encoder, on_done, log=_log,
              device=device, init_tokens=init_tokens, pretrained=pretrained)
    if gpu_lock is not None:
        gpu_lock.close()  # the GPU is free for the next job
    return written


def train_task_set(settings: dict, seeds: Sequence[int], split_paths: Dict[str, Sequence[str]],
                   out_paths: Dict[str, Sequence[str]], state_paths: Sequence[str], data_dir: str,
                   device: str = "auto") -> List[dict]:
    """Train every task of a multi-task method's task set (``config.task_set_settings``) and
    every seed in one job: one result per (task, seed) at ``out_paths[task]``, and per seed
    the tested states of its rows (``Method.row_states``, what the masking evaluation reads)
    at ``state_paths``."""
    import torch

    from .backbones import BACKBONES, attention_for, weights_fingerprint
    from .devices import resolve_device
    from .methods.base import method_of
    from .multitask import run_task_set
    from .splits import resolve
    from .tasks import resolve_task
    from .train import SeedData, outcome_dict

    tasks_named = list(settings["tasks"])
    if set(split_paths) != set(tasks_named) or set(out_paths) != set(tasks_named):
        raise ConfigError(f"give splits and outputs for exactly the task set's tasks {tasks_named}")
    if any(len(split_paths[t]) != len(seeds) or len(out_paths[t]) != len(seeds) for t in tasks_named) \
            or len(state_paths) != len(seeds):
        raise ConfigError("give one split, one output per (task, seed) and one state file per seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"duplicate seeds {list(seeds)}")
    torch.set_num_threads(settings.get("threads", 1))
    device_name, gpu_lock = resolve_device(device)
    job_start = time.perf_counter()
    method = method_of(settings)
    cfg = method.job_config(method.make_config(settings["method_config"]), settings["shot"])
    spec = BACKBONES.get(settings["backbone"])
    files = settings.get("data_files") or {}
    tasks, encoders_of, data = [], [], []
    backbone, tokenizer = spec.load(dropout=cfg.dropout, local_dir=settings.get("backbone_dir"),
                                    seq2seq=method.seq2seq(cfg), attention=attention_for(device_name))
    manifests_of = {}
    for name in tasks_named:
        task = resolve_task(name, {name: files[name]} if files.get(name) else None)
        manifests = read_manifests(settings, name, seeds, split_paths[name])
        pools = task.load_pools(data_dir)
        view = method.task_view(task, cfg)
        encoder = method.encoder(tokenizer, view, cfg, spec)
        cache: dict = {}
        data.append([SeedData(seed, *encode_parts(encoder, resolve(m, pools), cache))
                     for seed, m in zip(seeds, manifests)])
        tasks.append(view)
        encoders_of.append(encoder)
        manifests_of[name] = manifests
    setup_s = time.perf_counter() - job_start
    _log(f"[{method.name} {spec.name} task set {', '.join(tasks_named)} shot {settings['shot']}] seeds "
         f"{list(seeds)}: setup {setup_s:.1f}s, train " + " / ".join(str(len(d[0].train)) for d in data))
    outcomes, tested, wall = run_task_set(method, cfg, spec, tasks, backbone, tokenizer, data, encoders_of, log=_log,
                                          device=torch.device(device_name))
    c_hash = config_hash(settings)
    provenance = {
        "config_hash": c_hash, "settings": settings, "packages": package_versions(), "git": git_state(),
        "machine": machine(), "threads": settings.get("threads", 1), "device": device_name,
        "attention": attention_for(device_name), "cluster": cluster_job(),
        "backbone_weights_sha256": weights_fingerprint(backbone),
        "trainable_parameters": method.trainable_parameters(spec, cfg, n_tasks=len(tasks)),
        "seed_batched": True, "group_seeds": list(seeds), "task_set": tasks_named, "pretrained_checkpoint": None,
    }
    written = []
    for t, task in enumerate(tasks):
        for s, seed in enumerate(seeds):
            o = outcome_dict(outcomes[t][s])
            m = manifests_of[task.name][s]
            result = {
                "method": method.name, "backbone": spec.name, "task": task.name, "shot": settings["shot"],
                "metric": task.metric, "track": task.track, "suite": task.suite, "seed": seed,
                "status": o["status"], "error": o["error"], "metrics": o["test_metrics"],
                "score": o["test_metrics"].get(task.metric), "test_details": o["test_details"],
                "dev": {"best_epoch": o["best_epoch"], "best_score": o["best_dev"], "curve": o["dev_curve"],
                        "unit": method.progress_unit},
                "train_loss_curve": o["loss_curve"], "stages": o["stages"],
                "wall_time_s": round(wall, 2),
                "wall_time_note": "time of the whole task-set job (all its tasks and seeds at once)",
                "setup_time_s": round(setup_s, 2),
                "split": {"path": os.path.relpath(split_paths[task.name][s]), "hash": m["hash"],
                          "sizes": {k: len(m[k]) for k in ("train", "dev", "test")}},
                "provenance": provenance,
            }
            where = write_result(out_paths[task.name][s], result)
            written.append(result)
            score = result["score"]
            _log(f"  {task.name} seed {seed}: {o['status']} test {task.metric}="
                 f"{score if score is None else round(score, 2)} (best dev {o['best_dev']} at epoch "
                 f"{o['best_epoch']}) -> {where}")
    for s, (seed, path) in enumerate(zip(seeds, state_paths)):
        states = {task.name: tested[(s, t)] for t, task in enumerate(tasks) if (s, t) in tested}
        record = {"method": method.name, "settings_hash": c_hash, "seed": seed, "tasks": tasks_named,
                  "states": states, "status": "ok" if len(states) == len(tasks) else "failed"}
        save_torch_atomic(record, path)
    if gpu_lock is not None:
        gpu_lock.close()
    return written
