"""Every job runs by hand, outside Snakemake, with the paths the Snakefile would use."""

import json
import subprocess
import sys

import pytest
import yaml

from replicate.config import Cell, check_config, result_path, split_path

from conftest import HANG_GUARD_S, REPO


def cli(*args):
    return subprocess.run([sys.executable, "-m", "replicate", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=HANG_GUARD_S)


@pytest.mark.slow
def test_split_train_aggregate_by_hand(tmp_path, tiny_config):
    tiny_config["grid"]["methods"] = ["pt"]
    tiny_config["grid"]["tasks"] = ["fine-foods"]
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    cfg = check_config(tiny_config)

    done = cli("split", "--config", str(config), "--task", "fine-foods", "--shot", "8", "--seeds", "8", "13")
    assert done.returncode == 0, done.stderr
    assert all((tmp_path / split_path(cfg, "fine-foods", 8, s)).exists() for s in (8, 13))

    done = cli("train", "--config", str(config), "--method", "pt", "--task", "fine-foods", "--shot", "8",
               "--seeds", "8", "13")
    assert done.returncode == 0, done.stderr
    result = json.loads(open(result_path(cfg, Cell("pt", "tiny-bert", "fine-foods", 8, 13))).read())
    assert result["status"] == "ok" and result["provenance"]["group_seeds"] == [8, 13]

    done = cli("aggregate", "--config", str(config), "--out-prefix", str(tmp_path / "t3"))
    assert done.returncode == 0, done.stderr
    assert "Prompt Tuning" in (tmp_path / "t3.md").read_text()

    # any paper table; by default under the run's results_dir
    done = cli("aggregate", "--config", str(config), "--paper", "mpt", "--table", "4")
    assert done.returncode == 0, done.stderr
    assert "Prompt Tuning (k=8)" in open(f"{cfg['results_dir']}/tables/mpt_table4.md").read()
    done = cli("aggregate", "--config", str(config), "--paper", "mpt", "--table", "5")
    assert done.returncode == 2 and done.stderr.strip().startswith("replicate: mpt has no results table '5'")


def test_job_without_its_paths_is_one_line_error():
    done = cli("train", "--settings", "{}", "--seeds", "8")
    assert done.returncode == 2 and done.stderr.strip() == "replicate: with --settings, give --data-dir, --out and --splits"
    done = cli("split", "--seeds", "8")
    assert done.returncode == 2 and "give --config FILE --task T --shot K" in done.stderr


def test_prefetch_reads_every_task_and_the_backbone(tmp_path, tiny_cpt_dir, capsys):
    import yaml

    from conftest import paper_files
    from replicate.cli import main

    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg.update(results_dir=str(tmp_path / "r"), backbone_dirs={"tiny-cpt": str(tiny_cpt_dir)},
               paper_data_files=paper_files("cmnli", "c3"))
    cfg["grid"].update(backbone="tiny-cpt", tasks=["c3"])
    for pre in cfg["pretraining"].values():  # the pre-trainings' upstream tasks are read too
        pre["tasks"] = ["cmnli"]
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    assert main(["prefetch", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("task cmnli: 90 train / 30 test examples cached") == 1 and "task c3: 70 train" in out
    assert "backbone tiny-cpt:" in out


def test_console_script_and_module_print_the_packages_version():
    """`replicate --version` (the console script pyproject declares) and `python -m replicate
    --version` print the installed distribution's version, which is the package's."""
    import subprocess
    import sys
    from importlib.metadata import version
    from pathlib import Path

    import replicate

    script = Path(sys.executable).parent / "replicate"
    for command in ([str(script), "--version"], [sys.executable, "-m", "replicate", "--version"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
        assert done.returncode == 0, done.stderr
        installed = version("softprompt-replicate")
        assert done.stdout.strip() == f"replicate {replicate.__version__}" == f"replicate {installed}"
