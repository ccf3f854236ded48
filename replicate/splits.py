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
from typing import Dict, List, Optional, Sequence, Tuple, Union

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
    # ATTEMPT's schemes (``draw_attempt``); the defaults keep MP2's, and ``protocol_dict``
    # leaves these out while they are at their defaults, so manifests and their content
    # hashes from before they existed are unchanged.
    scheme: str = "mp2"
    data_seed: Optional[int] = None
    dev_cap: Optional[int] = None
    dev_holdout: Optional[int] = None  # large tasks' dev rows (None: ATTEMPT's 1,000); tests set it small

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"protocol scheme {self.scheme!r} not in {SCHEMES}")


SCHEMES = ("mp2", "attempt", "compt")
# Fields added after manifests existed: in ``protocol_dict`` only when not at their default.
_LATE_FIELDS = {"scheme": "mp2", "data_seed": None, "dev_cap": None, "dev_holdout": None}
# ATTEMPT's default data seed (``attempt/options.py:413-414``, ``data_seed`` 42) and
# ComPT's (``d_seed`` 123 in ``compt/configs/crosspt/*.json``, passed as the task's
# ``data_seed``, ``compt/run_seq2seq.py:967``).
DEFAULT_DATA_SEED = {"attempt": 42, "compt": 123}
# ComPT's caps (``max_val_samples`` 50, ``max_test_samples`` 100 in
# ``compt/configs/crosspt/SL_wavg.json``; ``configs/baselines/base.json`` has 10/100).
COMPT_CAPS = {"dev": 50, "test": 100}
# ATTEMPT's large datasets hold out this many training rows as dev (attempt/data/tasks.py:126).
ATTEMPT_DEV_HOLDOUT = 1000
FULL = "full"


def protocol_dict(protocol: Protocol) -> dict:
    """``asdict(protocol)`` less the late fields at their defaults (what manifests record and
    hash)."""
    out = asdict(protocol)
    for key, default in _LATE_FIELDS.items():
        if out[key] == default:
            del out[key]
    return out


def parse_shot(shot) -> Union[int, str]:
    """A shot as configs and paths give it: a positive integer, or "full" (all the data)."""
    if isinstance(shot, str):
        if shot == FULL:
            return FULL
        if shot.isdigit():
            return int(shot)
        raise ValueError(f"shot {shot!r} is neither a positive integer nor {FULL!r}")
    if isinstance(shot, bool) or not isinstance(shot, int):
        raise ValueError(f"shot {shot!r} is neither a positive integer nor {FULL!r}")
    return shot


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
    lost = {"train": len(pools.train) - len(train), "test": len(pools.test) - len(test)}
    if pools.dev is None:
        return Pools(train=train, test=test), lost
    dev = [ex for ex in pools.dev if fits(ex)]
    lost["dev"] = len(pools.dev) - len(dev)
    return Pools(train=train, test=test, dev=dev), lost


def check_pool_size(task: TaskSpec, pools: Pools, shot: int, protocol: Protocol) -> None:
    """DataError (one line) if the training pool cannot give ``shot`` train + ``shot`` dev
    examples under ``protocol``, whichever labels the seeded draw favours. ATTEMPT's schemes
    are checked by drawing (``draw_attempt`` raises the same one-line DataError)."""
    if protocol.scheme != "mp2":
        draw_attempt(task, pools, shot, 0, protocol)
        return
    if shot == FULL:
        raise DataError(f"task {task.name}: shot 'full' needs protocol scheme attempt or compt (MP2's is few-shot)")
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


def draw_split(task: TaskSpec, pools: Pools, shot, seed: int, protocol: Protocol) -> dict:
    """Choose train/dev/test ids for one (task, shot, seed); returns the manifest dict."""
    if protocol.scheme != "mp2":
        return draw_attempt(task, pools, shot, seed, protocol)
    if shot == FULL:
        raise DataError(f"task {task.name}: shot 'full' needs protocol scheme attempt or compt (MP2's is few-shot)")
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

    return _manifest(task, shot, seed, protocol, {"train": train, "dev": dev, "test": test},
                     {"pool_sizes": {"train": len(pools.train), "test": len(pools.test)}})


def _manifest(task: TaskSpec, shot, seed: int, protocol: Protocol, chosen: Dict[str, List[Example]],
              pools_entry: dict) -> dict:
    """A split manifest of the ``chosen`` train, dev and test examples, with its content
    hash; ``pools_entry``: what it records of the pools they came from."""
    manifest = {"version": MANIFEST_VERSION, "task": task.name, "shot": shot, "seed": seed,
                "protocol": protocol_dict(protocol), **pools_entry,
                **{part: [ex.id for ex in chosen[part]] for part in ("train", "dev", "test")},
                "label_counts": _label_counts(task, chosen["train"], chosen["dev"], chosen["test"])}
    manifest["hash"] = content_hash(manifest, chosen)
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
    # Which raw pool each part came from: ATTEMPT's schemes record it; MP2's is fixed.
    source = manifest.get("pools", {"train": "train", "dev": "train", "test": "test"})
    by_pool = {name: {ex.id: ex for ex in (getattr(pools, name) or ())} for name in ("train", "dev", "test")}
    try:
        parts = {part: [by_pool[source[part]][i] for i in manifest[part]] for part in ("train", "dev", "test")}
    except KeyError as e:
        raise DataError(f"split of {manifest['task']} seed {manifest['seed']}: id {e} is not in the data") from None
    if content_hash(manifest, parts) != manifest["hash"]:
        raise DataError(f"split of {manifest['task']} seed {manifest['seed']}: the data changed since the "
                        "manifest was written (content hash differs); delete it to redraw")
    return parts


def write_manifest(path: str, manifest: dict) -> None:
    write_json_atomic(path, manifest)


# ---------------------------------------------------------------------------------------
# ATTEMPT's split protocol (AkariAsai/ATTEMPT ``attempt/data/tasks.py``, cited ``A:<line>``)
# and ComPT's use of it (puraminy/ComPT ``compt/data/tasks.py``, ``C:<line>``).
#
# ``AbstractTask.get`` (A:97-141; C:171-249 is the same rule) with ``split_validation_test``:
# * "small" tasks (A:29-31): train = the train split; the validation split is permuted
#   (``shuffled_indices``: ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``,
#   A:62-66) and its first ``n // 2`` positions are dev, the rest test (A:100-112, 86-91);
# * "large" tasks (A:32-33): the train split is permuted; its first 1,000 positions are dev,
#   the rest train; test = the mapped test split (A:116-127);
# * other tasks ("given": MNLI, PAWS, ...): the mapped splits as they are (A:128-140).
# ``n_obs`` (max_*_samples) then keeps the first n of each part's order (``subsample``,
# A:68-81): of the permuted indices for the first two cases, of a fresh permutation of the
# split (same seed) for the third. One seed (``data_seed``) drives every permutation.
#
# Here: the dev/test partition always uses the protocol's data seed (ATTEMPT 42, ComPT 123),
# so every seed of a cell is scored on the same test examples, as in ATTEMPT's full-data runs
# (the cell seed there only seeds training). A k-shot draw takes the first k of
# ``randperm(len(train split), draw seed)`` that are not dev (large tasks); under "attempt"
# the draw seed is the cell seed (MPT §4: "we randomly sample 10 times from the training set
# with different random seeds"), under "compt" it is the data seed (ComPT's few-shot sets are
# the first k of its seed-123 shuffle, whatever the run's seed). When the draw seed equals the
# data seed this is exactly ATTEMPT's ``get("train", n_obs=k)``.


def randperm(n: int, seed: int) -> List[int]:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()`` on CPU,
    ATTEMPT's ``shuffled_indices`` (A:62-66). ATTEMPT pins no torch version (setup.py), so
    the permutation is that of the installed torch; ``tests/test_text2text_splits.py`` pins
    a few values to notice a change."""
    import torch

    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(n, generator=generator).tolist()


def attempt_parts(task: TaskSpec, pools: Pools, protocol: Protocol) -> Dict[str, Tuple[str, List[int]]]:
    """ATTEMPT's train/dev/test parts before any cap: part -> (raw pool, positions in it, in
    ATTEMPT's order). Dev and test never share a position of the same pool."""
    rule = task.extra.get("attempt_split")
    if rule not in ("small", "large", "given"):
        raise DataError(f"task {task.name}: no ATTEMPT split rule (scheme {protocol.scheme} needs one)")
    seed = effective_data_seed(protocol)
    if rule == "small":
        n = len(pools.test)
        perm = randperm(n, seed)
        return {"train": ("train", list(range(len(pools.train)))), "dev": ("test", perm[:n // 2]),
                "test": ("test", perm[n // 2:])}
    if rule == "large":
        perm = randperm(len(pools.train), seed)
        hold = protocol.dev_holdout if protocol.dev_holdout is not None else ATTEMPT_DEV_HOLDOUT
        return {"train": ("train", perm[hold:]), "dev": ("train", perm[:hold]),
                "test": ("test", list(range(len(pools.test))))}
    if pools.dev is None:
        raise DataError(f"task {task.name}: its source gives no dev split (ATTEMPT rule 'given')")
    return {"train": ("train", list(range(len(pools.train)))), "dev": ("dev", list(range(len(pools.dev)))),
            "test": ("test", list(range(len(pools.test))))}


def effective_data_seed(protocol: Protocol) -> int:
    return protocol.data_seed if protocol.data_seed is not None else DEFAULT_DATA_SEED[protocol.scheme]


def effective_caps(protocol: Protocol) -> Dict[str, Optional[int]]:
    compt = protocol.scheme == "compt"
    return {"dev": protocol.dev_cap if protocol.dev_cap is not None else (COMPT_CAPS["dev"] if compt else None),
            "test": protocol.test_cap if protocol.test_cap is not None else (COMPT_CAPS["test"] if compt else None)}


def _capped(task: TaskSpec, rule: str, part: str, positions: List[int], cap: Optional[int], seed: int) -> List[int]:
    """``subsample(dataset, n_obs, indices)`` (A:68-81): the first ``cap`` of the part's
    order; a "given" split, and a large task's test split, are permuted first (A:138-140)."""
    if cap is None or cap >= len(positions):
        return positions
    if rule == "given" or (rule == "large" and part == "test"):
        positions = [positions[i] for i in randperm(len(positions), seed)]
    return positions[:cap]


def draw_attempt(task: TaskSpec, pools: Pools, shot, seed: int, protocol: Protocol) -> dict:
    """The manifest of one (task, shot, seed) under ATTEMPT's ("attempt") or ComPT's
    ("compt") scheme. ``shot`` "full" keeps the whole train part. Every part records the
    raw pool it came from (``manifest["pools"]``)."""
    parts = attempt_parts(task, pools, protocol)
    data_seed = effective_data_seed(protocol)
    rule = task.extra["attempt_split"]
    caps = effective_caps(protocol)
    train_pool, train_pos = parts["train"]
    if shot != FULL:
        if shot < 1:
            raise ValueError("shot must be positive")
        draw_seed = seed if protocol.scheme == "attempt" else data_seed
        if rule == "large" and draw_seed == data_seed:
            order = train_pos  # ATTEMPT's own order: perm[1000:]
        else:
            held = set(parts["dev"][1]) if parts["dev"][0] == train_pool and rule == "large" else set()
            order = [i for i in randperm(len(pools.train), draw_seed) if i not in held]
        if len(order) < shot:
            raise DataError(f"task {task.name}: shot {shot} needs {shot} training examples; the train part has "
                            f"{len(order)}")
        train_pos = order[:shot]
    dev_pool, dev_pos = parts["dev"]
    test_pool, test_pos = parts["test"]
    dev_pos = _capped(task, rule, "dev", dev_pos, caps["dev"], data_seed)
    test_pos = _capped(task, rule, "test", test_pos, caps["test"], data_seed)

    def examples(pool: str, positions: List[int]) -> List[Example]:
        items = getattr(pools, pool)
        return [items[i] for i in positions]

    chosen = {"train": examples(train_pool, train_pos), "dev": examples(dev_pool, dev_pos),
              "test": examples(test_pool, test_pos)}
    if dev_pool == test_pool and set(dev_pos) & set(test_pos):
        raise AssertionError(f"task {task.name}: dev and test share examples")  # never: disjoint halves
    return _manifest(task, shot, seed, protocol, chosen, {
        "pools": {"train": train_pool, "dev": dev_pool, "test": test_pool},
        "pool_sizes": {name: len(getattr(pools, name)) for name in ("train", "dev", "test")
                       if getattr(pools, name) is not None}})
