"""The few-shot protocol (PPT §4.1, MP2 §4.1) and split manifests.

- Few-shot train and dev sets are drawn from the task's training pool, disjoint, the same
  size, and label balanced: ``shot`` examples split as evenly as the labels allow (the
  remainder goes to labels picked by the seeded RNG, so a 32-shot set has exactly 32).
- Tasks with more than ``many_labels`` (5) labels take ``per_label_when_many`` (8) per label.
- Multiple-choice and extractive tasks have no label set to balance: ``shot`` at random.
- The test set is the task's test pool (the original dev/test split; for embedded tasks a
  disjoint held-out pool), optionally capped at ``test_cap`` examples chosen by a RNG keyed
  by the task alone, so every seed and method is scored on the same test examples.

Everything is a pure function of (task, pools, shot, seed, protocol): the RNG is
``random.Random("<task>|<shot>|<seed>")`` over ids in sorted order. A manifest lists the
chosen ids and a SHA-256 of the chosen examples' contents; jobs recompute it and refuse to
train when the data under a manifest has changed.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import DataError
from .io import write_json_atomic
from .tasks.base import Example, Pools, TaskSpec, stable_fraction

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Protocol:
    """many_labels / per_label_when_many / test_cap: see the module docstring.
    drop_longer_than: extractive examples whose MRC input, with ``length_prompt_slots``
        prompt slots, is longer than this many tokens are removed from both pools before
        anything is drawn (MPMP ``Deep/dataloader.py:208`` filters every split at 512 tokens
        with its 50 prompt slots; MP2 Table 2's CMRC-2018 test set is the 2,886 that remain
        of 3,219). None keeps every example."""

    many_labels: int = 5
    per_label_when_many: int = 8
    test_cap: Optional[int] = None
    drop_longer_than: Optional[int] = None
    length_prompt_slots: int = 0
    downstream_reserve: Optional[float] = None


def reserve_key(example_id: str) -> str:
    """The id that decides an example's side of the downstream reserve: the document's id
    for examples derived from one document (``<document id>#<n>``), so every task built
    from a document puts it on the same side."""
    return example_id.split("#", 1)[0]


def in_downstream_reserve(example_id: str, fraction: float) -> bool:
    return stable_fraction(f"downstream-reserve:{reserve_key(example_id)}") < fraction


def few_shot_pool(task: TaskSpec, pools: Pools, protocol: Protocol) -> List[Example]:
    """The training examples few-shot draws may use. With ``downstream_reserve``, an UNSEEN
    DATA task draws only from its reserve: the rest of its pool is pre-training data (MP2
    4.1: "we retain a small portion of training data from the pre-training corpora")."""
    if protocol.downstream_reserve is None or task.track != "unseen-data":
        return list(pools.train)
    return [ex for ex in pools.train if in_downstream_reserve(ex.id, protocol.downstream_reserve)]


def drop_long(task: TaskSpec, pools: Pools, tokenizer, protocol: Protocol, spec) -> Tuple[Pools, Dict[str, int]]:
    """``pools`` without the extractive examples longer than ``protocol.drop_longer_than``,
    and how many each pool lost."""
    from .mrc import MRCEncoder, TooLong

    encoder = MRCEncoder(tokenizer, task, protocol.drop_longer_than, protocol.length_prompt_slots, spec.uses_cls,
                         spec.token_type)

    def fits(ex: Example) -> bool:
        try:
            encoder.encode(ex)
        except TooLong:
            return False
        return True

    train = [ex for ex in pools.train if fits(ex)]
    test = [ex for ex in pools.test if fits(ex)]
    return Pools(train=train, test=test), {"train": len(pools.train) - len(train), "test": len(pools.test) - len(test)}


def check_pool_size(task: TaskSpec, pools: Pools, shot: int, protocol: Protocol) -> None:
    """DataError (one line) if the training pool cannot give ``shot`` train + ``shot`` dev
    examples under ``protocol``, whichever labels the seeded draw favours."""
    train = few_shot_pool(task, pools, protocol)
    where = " (its downstream reserve)" if len(train) < len(pools.train) else ""
    if task.kind != "classification":
        if len(train) < 2 * shot:
            raise DataError(f"task {task.name}: shot {shot} needs {2 * shot} training examples (train + dev); "
                            f"the pool{where} has {len(train)}")
        return
    labels = range(task.num_labels)
    if task.num_labels > protocol.many_labels:
        need = protocol.per_label_when_many
    else:
        need = -(-shot // task.num_labels)  # a label may get the remainder
    for lab in labels:
        have = sum(ex.label == lab for ex in train)
        if have < 2 * need:
            raise DataError(f"task {task.name}: shot {shot} needs up to {2 * need} training examples of label "
                            f"{task.labels[lab]!r} (train + dev); the pool{where} has {have}")


def _per_label_counts(labels: Sequence[int], shot: int, protocol: Protocol, rng: random.Random) -> Dict[int, int]:
    if len(labels) > protocol.many_labels:
        return {lab: protocol.per_label_when_many for lab in labels}
    base, extra = divmod(shot, len(labels))
    bonus = set(rng.sample(list(labels), extra))
    return {lab: base + (lab in bonus) for lab in labels}


def draw_split(task: TaskSpec, pools: Pools, shot: int, seed: int, protocol: Protocol) -> dict:
    """Choose train/dev/test ids for one (task, shot, seed); returns the manifest dict."""
    if shot < 1:
        raise ValueError("shot must be positive")
    rng = random.Random(f"{task.name}|{shot}|{seed}")
    pool = sorted(few_shot_pool(task, pools, protocol), key=lambda ex: ex.id)
    if task.kind == "classification":
        by_label: Dict[int, List[Example]] = {lab: [] for lab in range(task.num_labels)}
        for ex in pool:
            by_label[ex.label].append(ex)
        counts = _per_label_counts(list(by_label), shot, protocol, rng)
        train, dev = [], []
        for lab, members in by_label.items():
            need = counts[lab]
            if len(members) < 2 * need:
                raise DataError(f"task {task.name}: label {task.labels[lab]!r} has {len(members)} training "
                                f"examples, {2 * need} needed for {need} train + {need} dev")
            picked = rng.sample(members, 2 * need)
            train += picked[:need]
            dev += picked[need:]
    else:
        if len(pool) < 2 * shot:
            raise DataError(f"task {task.name}: {len(pool)} training examples, {2 * shot} needed")
        picked = rng.sample(pool, 2 * shot)
        train, dev = picked[:shot], picked[shot:]
    rng.shuffle(train)
    rng.shuffle(dev)

    test = sorted(pools.test, key=lambda ex: ex.id)
    if protocol.test_cap is not None and len(test) > protocol.test_cap:
        test = sorted(random.Random(f"{task.name}|test").sample(test, protocol.test_cap), key=lambda ex: ex.id)

    manifest = {
        "version": MANIFEST_VERSION,
        "task": task.name,
        "shot": shot,
        "seed": seed,
        "protocol": asdict(protocol),
        "pool_sizes": {"train": len(pools.train), "test": len(pools.test)},
        "train": [ex.id for ex in train],
        "dev": [ex.id for ex in dev],
        "test": [ex.id for ex in test],
        "label_counts": _label_counts(task, train, dev, test),
    }
    manifest["hash"] = content_hash(manifest, {"train": train, "dev": dev, "test": test})
    return manifest


def _label_counts(task: TaskSpec, *parts: Sequence[Example]) -> Optional[dict]:
    if task.kind != "classification":
        return None
    names = ("train", "dev", "test")
    return {name: {task.labels[lab]: sum(ex.label == lab for ex in part) for lab in range(task.num_labels)}
            for name, part in zip(names, parts)}


def content_hash(manifest: dict, parts: Dict[str, Sequence[Example]]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({k: manifest[k] for k in ("task", "shot", "seed", "protocol")}, sort_keys=True).encode())
    for name in ("train", "dev", "test"):
        h.update(name.encode())
        for ex in parts[name]:
            h.update(ex.content_key().encode("utf-8"))
    return h.hexdigest()


def resolve(manifest: dict, pools: Pools) -> Dict[str, List[Example]]:
    """The examples a manifest names, verified against its content hash."""
    by_id = {ex.id: ex for ex in pools.train}
    test_by_id = {ex.id: ex for ex in pools.test}
    try:
        parts = {"train": [by_id[i] for i in manifest["train"]], "dev": [by_id[i] for i in manifest["dev"]],
                 "test": [test_by_id[i] for i in manifest["test"]]}
    except KeyError as e:
        raise DataError(f"split of {manifest['task']} seed {manifest['seed']}: id {e} is not in the data") from None
    if content_hash(manifest, parts) != manifest["hash"]:
        raise DataError(f"split of {manifest['task']} seed {manifest['seed']}: the data changed since the "
                        "manifest was written (content hash differs); delete it to redraw")
    return parts


def write_manifest(path: str, manifest: dict) -> None:
    write_json_atomic(path, manifest)
