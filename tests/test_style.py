"""The workflow's own files keep the Snakemake catalog's formatting: snakefmt at the project's
settings ([tool.snakefmt] in pyproject.toml), checked here so that CI runs it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_snakefile_and_rules_are_snakefmt_formatted():
    done = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", "Snakefile", "rules"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"snakefmt would reformat (run `snakefmt Snakefile rules`):\n{done.stdout[-3000:]}"
