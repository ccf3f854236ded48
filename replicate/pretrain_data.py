"""A pre-training's data (one DAG node, ``pretrain-data``): each upstream task's examples
without the downstream reserves and without any held-out text (a downstream test pool's,
an UNSEEN DATA task's few-shot pool's), split into a seeded dev slice and the rest, written
with a manifest of their sizes, settings hash and sha256 (``replicate.pretrain`` documents
the rules; ``PretrainConfig`` the fields)."""

from __future__ import annotations

import math
import os
import random
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .errors import ConfigError
from .pretrain_config import PretrainConfig, check_upstream_tasks, make_pretrain_config

class HeldOut:
    """Texts that must not reach pre-training: the test pools of every downstream task of a
    suite and the few-shot pools (the downstream reserves) of its UNSEEN DATA tasks.
    UNSEEN TASK tasks are never pre-training tasks (``check_upstream_tasks``); their
    training texts may occur inside an upstream task built from the same documents (a BBC
    first sentence in next-sentence choice, a WSJ sentence of language-id in pos-first-noun),
    their test pools never.

    An upstream example is held out when its text, second text or any option equals one of
    them or, in the embedded suite, occurs inside one: upstream tasks built from documents
    (a sentence, a headline) must not show a piece of a downstream document. The paper
    suite's pools hold millions of rows, so there it is exact matches only (its upstream
    tasks are whole datasets, not pieces of downstream documents)."""

    MIN_SUBSTRING = 20  # shorter texts (a label word, "yes") may occur anywhere by chance

    def __init__(self, texts: set, substrings: bool):
        self.texts = texts
        self.substrings = substrings
        self.joined = "\x00".join(sorted(texts)) if substrings else ""
        # every run of 3 words of the held-out texts: a text of 5+ words inside one of them
        # has its 2nd-4th words (whole words there) among these, so most texts are cleared
        # without scanning ``joined``
        self.trigrams = set()
        if substrings:
            for t in texts:
                words = t.split()
                self.trigrams.update(hash(" ".join(words[i:i + 3])) for i in range(len(words) - 2))

    def __contains__(self, text: Optional[str]) -> bool:
        if text is None:
            return False
        if text in self.texts:
            return True
        if not self.substrings or len(text) < self.MIN_SUBSTRING:
            return False
        words = text.split()
        if len(words) >= 5 and hash(" ".join(words[1:4])) not in self.trigrams:
            return False
        return text in self.joined

    def holds(self, ex) -> bool:
        return any(t in self for t in (ex.text, ex.text_b, *(ex.options or ())))


def held_out_texts(suite: str, data_dir: str, protocol, paper_data_files=None, languages=None) -> HeldOut:
    """The ``HeldOut`` texts of ``suite``'s downstream tasks in ``languages`` (None: all):
    a text can only reach upstream data written in its own language, so MP2's Chinese
    pre-training holds out the Chinese tasks' texts, and the English tasks of ATTEMPT's
    suite (MPT's, ComPT's) are not loaded for it."""
    from .splits import few_shot_pool
    from .tasks import TASKS, resolve_task

    out: set = set()
    for name in TASKS:
        spec = TASKS.get(name)
        if spec.suite != suite or spec.track == "upstream" or (languages is not None and spec.language not in languages):
            continue
        pools = resolve_task(name, paper_data_files).load_pools(data_dir)
        held = list(pools.test)
        if spec.track == "unseen-data":
            held += few_shot_pool(spec, pools, protocol)
        for ex in held:
            out.update(t for t in (ex.text, ex.text_b, *(ex.options or ())) if t is not None)
    return HeldOut(out, substrings=suite == "embedded")


def upstream_pools(task, data_dir: str, held_out: HeldOut):
    """A task's pools for pre-training: sources built from documents (PPT's tasks) leave
    out the documents that show a held-out text before they draw."""
    from .tasks.documents import BbcDocumentSource, HubDocumentSource

    if isinstance(task.source, (BbcDocumentSource, HubDocumentSource)):
        return task.source.load(data_dir, held_out)
    return task.load_pools(data_dir)


def dev_size(n: int, fraction: float, dev_max: Optional[int]) -> int:
    """How many of a task's ``n`` upstream examples its dev slice holds (at least 1): with
    ``dev_max``, MPMP's ``min(ceil(fraction n), dev_max)`` (``PretrainConfig.dev_max``);
    without, ``round(fraction n)``."""
    if dev_max is None:
        return max(1, int(round(n * fraction)))
    return max(1, min(math.ceil(fraction * n), dev_max))  # HF: ceil(test_size * n_samples)


def upstream_data(task, pools, protocol, held_out: HeldOut, cfg: PretrainConfig) -> Tuple[list, list]:
    """(train, dev) pre-training examples of one task: its training pool (an UNSEEN DATA
    task's without its downstream reserve) without held-out texts, in a seeded dev slice and
    the rest (then the caps)."""
    from .splits import in_downstream_reserve

    fraction = protocol.downstream_reserve if task.track == "unseen-data" else None
    kept = [ex for ex in sorted(pools.train, key=lambda ex: ex.id)
            if fraction is None or not in_downstream_reserve(ex.id, fraction)]
    random.Random(f"pretrain-dev|{cfg.seed}|{task.name}").shuffle(kept)
    n_dev = dev_size(len(kept), cfg.dev_fraction, cfg.dev_max)
    dev, train = kept[:n_dev], kept[n_dev:]
    if cfg.dev_cap is not None:
        dev = dev[:cfg.dev_cap]
    if cfg.train_cap is not None:
        train = train[:cfg.train_cap]
    # after the caps: only the examples that can be used are checked (substring checks cost)
    dev = [ex for ex in dev if not held_out.holds(ex)]
    train = [ex for ex in train if not held_out.holds(ex)]
    if not train or not dev:
        raise ConfigError(f"pre-training task {task.name}: no examples left outside the downstream reserve and "
                          "the held-out texts")
    return train, dev


# The fields of a pre-training config its data depends on (the rest shape the training).
DATA_FIELDS = ("tasks", "dev_fraction", "dev_max", "dev_cap", "train_cap", "seed")
DATA_FILE = "examples.json.gz"
DATA_MANIFEST = "manifest.json"


def data_settings_of(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """What a pre-training's data depends on, from its settings: not the backbone, not the
    learning rates. Its hash names the data node every backbone's pre-training reads."""
    return {"pretraining": settings["pretraining"],
            "config": {k: settings["config"][k] for k in DATA_FIELDS if k in settings["config"]},
            "protocol": settings["protocol"], "data_files": settings["data_files"]}


def build_data(settings: Mapping[str, Any], data_dir: str, log=print) -> Tuple[Dict[str, Tuple[list, list]], List]:
    """({task: (train, dev)}, the task specs) of a pre-training's settings: its upstream
    tasks without the downstream reserves and held-out texts (``upstream_data``)."""
    from .splits import Protocol

    name = settings["pretraining"]
    cfg = make_pretrain_config(name, settings["config"])
    files = settings.get("data_files") or {}
    tasks = check_upstream_tasks(name, cfg, files)
    protocol = Protocol(downstream_reserve=settings["protocol"]["downstream_reserve"])
    suites = {t.suite for t in tasks}
    if len(suites) != 1:
        raise ConfigError(f"pre-training {name}: its tasks come from several suites ({', '.join(sorted(suites))})")
    held_out = held_out_texts(suites.pop(), data_dir, protocol, files, {t.language for t in tasks})
    data = {}
    for task in tasks:
        data[task.name] = upstream_data(task, upstream_pools(task, data_dir, held_out), protocol, held_out, cfg)
        log(f"{task.name}: {len(data[task.name][0])} train / {len(data[task.name][1])} dev upstream examples")
    return data, tasks


def write_data(out_dir: str, settings: Mapping[str, Any], data: Mapping[str, Tuple[list, list]], tasks) -> dict:
    """The data node: ``examples.json.gz`` (every task's train and dev examples) and
    ``manifest.json`` (its settings and their hash, per-task sizes, the file's sha256)."""
    import dataclasses
    import gzip
    import json

    from .config import config_hash
    from .io import atomic_path, git_state, package_versions, sha256_file, write_json_atomic

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, DATA_FILE)
    body = {name: {part: [dataclasses.asdict(ex) for ex in examples] for part, examples in zip(("train", "dev"), pair)}
            for name, pair in data.items()}
    with atomic_path(path) as tmp, gzip.GzipFile(tmp, "wb", mtime=0) as f:  # mtime 0: same data, same bytes
        f.write(json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    manifest = {"settings": dict(settings), "settings_hash": config_hash(dict(settings)),
                "file": DATA_FILE, "sha256": sha256_file(path),
                "tasks": [{"name": t.name, "family": t.family, "track": t.track, "kind": t.kind,
                           "train": len(data[t.name][0]), "dev": len(data[t.name][1])} for t in tasks],
                "provenance": {"packages": package_versions(), "git": git_state()}}
    write_json_atomic(os.path.join(out_dir, DATA_MANIFEST), manifest)
    return manifest


def read_data(data_path: str, settings: Mapping[str, Any]) -> Tuple[Dict[str, Tuple[list, list]], dict]:
    """(the examples, the manifest) of the data node at ``data_path`` (its folder);
    ConfigError if it was built for other settings or its file is not the one its manifest
    hashed."""
    import gzip
    import json

    from .config import config_hash
    from .io import read_json, sha256_file
    from .tasks.base import Example

    manifest = read_json(os.path.join(data_path, DATA_MANIFEST))
    if manifest["settings_hash"] != config_hash(data_settings_of(settings)):
        raise ConfigError(f"pre-training data {data_path} was built for other settings than "
                          f"{settings['pretraining']!r}'s; rerun the pretrain-data job")
    path = os.path.join(data_path, manifest["file"])
    if sha256_file(path) != manifest["sha256"]:
        raise ConfigError(f"pre-training data {path} does not match its manifest's sha256; rerun the "
                          "pretrain-data job")
    with gzip.open(path, "rb") as f:
        body = json.loads(f.read().decode("utf-8"))

    def example(d):
        return Example(**{**d, "options": None if d["options"] is None else tuple(d["options"]),
                          "answers": tuple(d["answers"])})

    return {t["name"]: tuple([example(d) for d in body[t["name"]][part]] for part in ("train", "dev"))
            for t in manifest["tasks"]}, manifest
