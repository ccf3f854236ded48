"""`snakemake --report` (make report): every table, diff and figure a run built is in the report,
each with its caption; and the figures' copies in the top-level figures/ folder. One tiny run
(PT and shallow MP2, its pre-training of 2 steps) builds MP2 Table 3 and both MP2 figures, in a
working directory of its own, so that its relative results_dir gets the top-level copies."""

import copy
import html
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY_CONFIG
from test_workflow import snakemake


def tiny_mp2_config(results_dir):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = results_dir
    cfg["protocol"]["downstream_reserve"] = 0.5
    cfg["grid"].update(methods=["pt", "mp2-shallow"], tasks=["bbc-topic"])
    cfg["methods"] = {"pt": {"epochs": 1, "max_length": 48, "prompt_length": 3},
                      "mp2-shallow": {"epochs": 2, "stage1_epochs": 1, "max_length": 48, "prompt_length": 3,
                                      "n_prompts": 4}}
    cfg["pretraining"] = {"mp2-shallow": {"prompt": "shallow", "tasks": ["bbc-topic", "bbc-title-topic",
                                                                         "tweet-source"],
                                          "prompt_length": 3, "n_prompts": 4, "intrinsic_dim": 8, "steps": 2,
                                          "batch_size": 2, "eval_every": 2, "dev_cap": 4, "train_cap": 12,
                                          "max_length": 96}}
    return cfg


def write_config(path, cfg):
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def mp2_run(tmp_path_factory):
    """`snakemake table3` of the tiny MP2 config in its own working directory, results_dir
    `results` (relative, the default's): the working directory and the config file."""
    workdir = tmp_path_factory.mktemp("work")
    config = write_config(workdir / "tiny.yaml", tiny_mp2_config("results"))
    done = snakemake("-s", str(REPO / "Snakefile"), "--cores", "2", "table3", "--configfile", config, cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir, config


def text_of(caption):
    """A caption's HTML as one line of text."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", caption))).strip()


def report_results(zip_path):
    """The report's files as {file name: entry} (its caption as HTML and as text, its labels, its
    bytes inside the zip) and its workflow description: Snakemake's HTML report keeps them in its
    page's `var results = {...}` and `var workflow_desc = "..."`."""
    with zipfile.ZipFile(zip_path) as archive:
        folder = Path(zip_path).stem  # Snakemake's zip holds <its stem>/report.html and <its stem>/data/...
        page = archive.read(f"{folder}/report.html").decode("utf-8")
        results = json.loads(re.search(r"^\s*var results = (\{.*\});?$", page, re.M).group(1))
        entries = {Path(path).name: {**entry, "bytes": archive.read(f"{folder}/{entry['data_uri']}"),
                                     "text": text_of(entry["caption"])} for path, entry in results.items()}
    description = json.loads(re.search(r"^\s*var workflow_desc = (\".*\");?$", page, re.M).group(1))
    return entries, description


# What each caption (docs/report/*.rst, rendered) says first: the table or figure it is.
CAPTIONS = {"mp2_table3.csv": "MP2 Table 3, regenerated in the paper",
            "mp2_table3.diff.csv": "The cell-by-cell diff of MP2 Table 3 against the published numbers",
            "mp2_fig5.png": "MP2 Fig 5 (MP2 §4.3): the upstream tasks of the shallow pre-training",
            "mp2_fig3.png": "MP2 Fig 3: the dev score across MP2"}


@pytest.mark.slow
def test_the_report_holds_every_table_and_figure_the_run_built(mp2_run):
    workdir, config = mp2_run
    results = workdir / "results"
    done = snakemake("-s", str(REPO / "Snakefile"), "--report", "report.zip", "table3", "--configfile", config,
                     cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    entries, description = report_results(workdir / "report.zip")
    # every table and diff (as CSV) and every figure (as PNG) the run wrote, and nothing else
    built = {p.name: p for p in [*(results / "tables").glob("*.csv"), *(results / "figures").glob("*.png")]}
    assert set(built) == set(CAPTIONS) == set(entries)
    for name, path in built.items():
        assert entries[name]["bytes"] == path.read_bytes(), name
        assert entries[name]["text"].startswith(CAPTIONS[name]), (name, entries[name]["text"])
    # the captions read the run's config and the job: its name, seeds, pre-training
    assert "from the cells of run tiny (backbone tiny-bert, seeds 8, 13)" in entries["mp2_table3.csv"]["text"]
    assert "of run tiny, mean over the seeds 8, 13" in entries["mp2_fig3.png"]["text"]
    assert "shallow pre-training mp2-shallow clustered" in entries["mp2_fig5.png"]["text"]
    assert entries["mp2_table3.diff.csv"]["labels"] == {"file": "diff against the paper"}
    assert text_of(description).startswith("The tables and figures of run tiny (setup embedded")


@pytest.mark.slow
def test_figures_land_in_the_top_level_figures_folder(mp2_run):
    """Copies of each figure's PNG and PDF in figures/ for the results_dir `results`, in
    figures/<rest> for one under results/, none for one outside the working directory."""
    workdir, config = mp2_run
    images = sorted(p.name for p in (workdir / "results" / "figures").iterdir() if p.suffix in (".png", ".pdf"))
    assert images == ["mp2_fig3.pdf", "mp2_fig3.png", "mp2_fig5.pdf", "mp2_fig5.png"]
    copies = sorted(p.name for p in (workdir / "figures").iterdir())
    assert copies == images
    for name in images:
        assert (workdir / "figures" / name).read_bytes() == (workdir / "results" / "figures" / name).read_bytes()

    def copy_outputs(results_dir):
        other = write_config(workdir / "other.yaml", tiny_mp2_config(results_dir))
        done = snakemake("-s", str(REPO / "Snakefile"), "-n", "mp2_fig5", "--configfile", other, cwd=workdir)
        assert done.returncode == 0, done.stderr[-3000:]
        return sorted(re.findall(r"^rule figure_copy:\n(?:    .*\n)*?    output: (\S+)$", done.stdout, re.M))

    assert copy_outputs("results/showcase") == ["figures/showcase/mp2_fig5.pdf", "figures/showcase/mp2_fig5.png"]
    assert copy_outputs(str(workdir.parent / "elsewhere")) == []
