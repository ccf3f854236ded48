"""Tasks declared in YAML files, without Python (config key ``task_files``).

A task file (schema: config/task.schema.yaml; an example: config/tasks/example.yaml) names
the task, its label words, metric, licence, MRC template and its local data files, one or
more per pool (train, test), which ``datasets.load_dataset`` reads (CSV, JSON or JSON Lines).

Such a task must be registered in every process that looks it up, and jobs see their
``--settings`` only, never the config. So the Snakefile's process, and any process that
loads a config, registers the config's task files (``register_task_files``, called by
``config.check_config``); the settings of each job whose task is declared in YAML carry the
whole declaration (``declaration_of``: with the sha256 of every data file), and the job
registers it from there. Both are ``register_user_tasks``. The settings hash, so each cell's
config hash, thus covers the task's template, labels and data bytes: a changed task file
or data file reruns its cells, and a job finds a data file that changed after the DAG was
built (one line) instead of training on it.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError, DataError
from .base import Example, Pools, TaskSpec, Template, TextFormat

SCHEMA_PATH = Path(__file__).resolve().parent.parent.parent / "config" / "task.schema.yaml"
SUITE = "user"  # TaskSpec.suite of a YAML task: no pre-training reads it (pretrain_data.held_out_texts)
POOLS = ("train", "test")
TASK_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class UserSource:
    """The local data files of a YAML task, per pool, with the sha256 each had when the
    task file was read; ``load`` reads them with ``datasets`` and maps their columns."""

    task: str
    files: Mapping[str, Tuple[str, ...]]  # pool -> absolute paths
    sha256: Mapping[str, str]             # absolute path -> digest
    fmt: str
    columns: Mapping[str, str]            # text, label, and optionally text_b, id
    label_values: str                     # "words" or "indices"
    labels: Tuple[str, ...]
    declared_in: str

    fetched_files = ()  # nothing for the fetch_data rule to produce

    @property
    def provenance(self) -> str:
        return f"declared in {self.declared_in}"

    def check(self, data_dir: str) -> None:
        """Every data file is there and holds the bytes it held when the task file was read."""
        from ..io import sha256_file

        for pool, paths in self.files.items():
            for path in paths:
                if not os.path.isfile(path):
                    raise DataError(f"task {self.task}: {pool} file {path} is missing")
                if sha256_file(path) != self.sha256[path]:
                    raise DataError(f"task {self.task}: {pool} file {path} changed since the run's DAG was built "
                                    "(its sha256 differs); run snakemake again")

    def load(self, data_dir: str) -> Pools:
        import datasets  # imported here: loading is the job's work (and check_config's for local files)

        from datasets.utils import logging as datasets_logging

        self.check(data_dir)
        # no "Generating train split" bars in the Snakefile's output and the job logs: the files are small
        bars_were_on = datasets_logging.is_progress_bar_enabled()
        datasets_logging.disable_progress_bar()
        try:
            pools = {pool: self._examples(pool, self._rows(datasets, pool)) for pool in POOLS}
        finally:
            if bars_were_on:
                datasets_logging.enable_progress_bar()
        try:
            return Pools(train=pools["train"], test=pools["test"])
        except DataError as e:  # an id column that repeats an id
            raise DataError(f"task {self.task}: {e} ({self.columns['id']} column)") from None

    def _where(self, pool: str) -> str:
        return f"task {self.task}: {pool} data ({', '.join(self.files[pool])})"

    def _rows(self, datasets, pool: str):
        """The rows of one pool's files; DataError (one line) where datasets cannot read them.
        Any error of its readers is caught: each says what it found wrong in a user's file."""
        try:
            return datasets.load_dataset(self.fmt, data_files={pool: list(self.files[pool])}, split=pool)
        except Exception as e:  # noqa: BLE001 (pandas', pyarrow's and datasets' own errors)
            if "corresponds to no data" in str(e):  # a file of a header alone
                raise DataError(f"{self._where(pool)}: no rows; the {pool} pool must hold examples") from None
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DataError(f"{self._where(pool)}: not readable as {self.fmt}: {first}") from None

    def _examples(self, pool: str, rows) -> List[Example]:
        where = self._where(pool)
        missing = [c for c in self.columns.values() if c not in rows.column_names]
        if missing:
            raise DataError(f"{where}: no column {missing[0]!r} (its columns: {', '.join(rows.column_names)})")
        if len(rows) == 0:
            raise DataError(f"{where}: no rows; the {pool} pool must hold examples")
        out = []
        for i, row in enumerate(rows):
            texts = {key: row[self.columns[key]] for key in ("text", "text_b") if key in self.columns}
            for key, value in texts.items():
                if value is None:
                    raise DataError(f"{where}: row {i} has no {key} (column {self.columns[key]!r} is empty)")
            ex_id = row[self.columns["id"]] if "id" in self.columns else i  # as the Hub loaders: the row number
            if ex_id is None or str(ex_id).strip() == "":
                raise DataError(f"{where}: row {i} has no id (column {self.columns['id']!r} is empty)")
            out.append(Example(id=str(ex_id), text=str(texts["text"]),
                               text_b=str(texts["text_b"]) if "text_b" in texts else None,
                               label=self._label(row[self.columns["label"]], f"{where}: row {i}")))
        return out

    def _label(self, value: Any, where: str) -> int:
        if self.label_values == "words":
            if value is None or str(value) not in self.labels:
                raise DataError(f"{where}: label {value!r} is not one of the task's labels {list(self.labels)}")
            return self.labels.index(str(value))
        index = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            index = int(value)
        if index is None or not 0 <= index < len(self.labels):
            raise DataError(f"{where}: label {value!r} is not a label index 0..{len(self.labels) - 1} "
                            "(label_values: indices)")
        return index


def read_task_file(path: str) -> Dict[str, Any]:
    """The declaration in task file ``path``: validated against config/task.schema.yaml,
    defaults filled, data paths made absolute (relative ones are relative to the file's
    folder) with each file's sha256. ConfigError (one line) for anything wrong with it."""
    from ..config import _fill_defaults, _schema_errors, read_config_file
    from ..io import sha256_file

    where = f"task file {path}"
    if not os.path.isfile(path):
        raise ConfigError(f"config task_files: no task file {path}" + (" (a folder of none)" if os.path.isdir(path)
                                                                       else ""))
    raw = read_config_file(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping of the task's fields (config/task.schema.yaml)")
    schema = _task_schema()
    errors = _schema_errors(raw, schema)
    if errors:
        e = errors[0]
        raise ConfigError(f"{where}: {'/'.join(map(str, e.path)) or '(top level)'}: {e.message}")
    decl = dict(raw)
    _fill_defaults(decl, schema)
    data = dict(decl["data"])
    data["columns"] = {"text": "text", "label": "label", **(data.get("columns") or {})}
    data.setdefault("label_values", "words")
    folder = os.path.dirname(os.path.abspath(path))
    for pool in POOLS:
        given = [data[pool]] if isinstance(data[pool], str) else list(data[pool])
        data[pool] = [os.path.normpath(os.path.join(folder, p)) for p in given]
        for file in data[pool]:
            if not os.path.isfile(file):
                raise ConfigError(f"{where}: data/{pool}: no file {file}")
    shared = sorted(set(data["train"]) & set(data["test"]))
    if shared:
        raise ConfigError(f"{where}: data: {shared[0]} is both train and test data; the test pool must be apart")
    suffixes = {Path(p).suffix.lower() for pool in POOLS for p in data[pool]}
    if "format" not in data:
        formats = {{".csv": "csv", ".json": "json", ".jsonl": "json"}.get(s) for s in suffixes}
        if len(formats) != 1 or None in formats:
            raise ConfigError(f"{where}: data/format: give csv or json (the files' extensions {sorted(suffixes)} "
                              "do not say one)")
        data["format"] = formats.pop()
    data["sha256"] = {p: sha256_file(p) for pool in POOLS for p in data[pool]}
    decl["data"] = data
    decl["file"] = os.path.abspath(path)
    _check_template(decl, where)
    task_from_declaration(decl)  # TaskSpec's own checks (a format's targets per label)
    return decl


def _task_schema() -> dict:
    import yaml

    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _check_template(decl: Mapping[str, Any], where: str) -> None:
    """The template inserts {a}, and {b} exactly when a text_b column is given."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(decl["template"]) if name is not None}
    except ValueError as e:
        raise ConfigError(f"{where}: template: {e} (write a literal brace as {{{{ or }}}})") from None
    unknown = sorted(fields - {"a", "b"})
    if unknown:
        raise ConfigError(f"{where}: template: unknown field {{{unknown[0]}}}; it may insert {{a}} (the text) and "
                          "{b} (a pair's second text)")
    if "a" not in fields:
        raise ConfigError(f"{where}: template: it must insert the text, {{a}}")
    has_b = "text_b" in decl["data"]["columns"]
    if ("b" in fields) != has_b:
        raise ConfigError(f"{where}: template " + ("inserts {b} but data/columns names no text_b column" if not has_b
                                                   else "does not insert {b}, the text_b column's text"))


def task_from_declaration(decl: Mapping[str, Any]) -> TaskSpec:
    """The TaskSpec of a declaration (``read_task_file``); ConfigError for what TaskSpec refuses."""
    data = decl["data"]
    source = UserSource(task=decl["name"], files={pool: tuple(data[pool]) for pool in POOLS},
                        sha256=dict(data["sha256"]), fmt=data["format"], columns=dict(data["columns"]),
                        label_values=data["label_values"], labels=tuple(decl["labels"]), declared_in=decl["file"])
    try:
        return TaskSpec(
            name=decl["name"], kind=decl["kind"], labels=tuple(decl["labels"]), metric=decl["metric"],
            track=decl["track"], suite=SUITE,
            template=Template(decl["template"], truncate=decl["truncate"], option_separator=decl["option_separator"]),
            source=source, licence=decl["licence"], description=decl["description"], family=decl["family"],
            language=decl["language"],
            formats={lineage: TextFormat(fmt["input"], targets=tuple(fmt["targets"]), prefix=fmt.get("prefix", ""))
                     for lineage, fmt in (decl.get("formats") or {}).items()},
            extra={"declaration": dict(decl)},
        )
    except ValueError as e:
        raise ConfigError(f"task file {decl['file']}: {e}") from None


def register_declaration(decl: Mapping[str, Any]) -> TaskSpec:
    """Register a declared task. Registering it again is a no-op (each check_config does);
    a later declaration of the same name replaces an earlier YAML one (another config in
    the same process); a registered Python task's name is refused."""
    from . import TASKS

    name = decl["name"]
    if name in TASKS and TASKS.get(name).suite != SUITE:
        raise ConfigError(f"task file {decl['file']}: name {name!r} is a registered task's; choose another name")
    spec = task_from_declaration(decl)
    TASKS.replace(name, spec)
    return spec


def task_files_of(entries: Sequence[str]) -> List[str]:
    """The task files a config's ``task_files`` names: each entry a file, or a folder whose
    *.yaml and *.yml files are all task files (sorted by name)."""
    out = []
    for entry in entries:
        if os.path.isdir(entry):
            out += sorted(str(p) for p in Path(entry).iterdir() if p.suffix in TASK_FILE_SUFFIXES and p.is_file())
        else:
            out.append(entry)
    return out


def register_task_files(cfg: Mapping[str, Any]) -> List[str]:
    """Read and register every task file the config names (``task_files``); their names."""
    declared: Dict[str, str] = {}
    decls = []
    for path in task_files_of(cfg.get("task_files") or []):
        decl = read_task_file(path)
        if decl["name"] in declared:
            raise ConfigError(f"config task_files: task {decl['name']!r} is declared twice ({declared[decl['name']]} "
                              f"and {path})")
        declared[decl["name"]] = path
        decls.append(decl)
    for decl in decls:
        register_declaration(decl)
    return list(declared)


def register_user_tasks(cfg_or_settings: Mapping[str, Any]) -> None:
    """Register the YAML tasks a config names (``task_files``) or a job's settings carry
    (``user_task``: a split or train job's; ``user_tasks``: a task-set job's, by name). The
    one call of every process that looks tasks up: ``config.check_config`` (the Snakefile,
    and every command given --config) and the CLI's reading of --settings and --config-json."""
    register_task_files(cfg_or_settings)
    decls = ([cfg_or_settings["user_task"]] if cfg_or_settings.get("user_task") else []) + list(
        (cfg_or_settings.get("user_tasks") or {}).values())
    for decl in decls:
        register_declaration(decl)


def declaration_of(task: str) -> Optional[Dict[str, Any]]:
    """The declaration of a YAML task (what its jobs' settings carry), None for other tasks."""
    from . import TASKS

    spec = TASKS.get(task)
    return spec.extra["declaration"] if spec.suite == SUITE else None
