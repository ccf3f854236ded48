"""The sacct shim of the SLURM profiles (profiles/slurm/bin/sacct) without a cluster: a fake
sacct stands in for SLURM's, so this runs wherever bash does (tests/test_slurm.py runs the
shim on a real cluster)."""

import os
import subprocess

from replicate.io import put_sacct_shim_first

from conftest import REPO

SHIM_DIR = REPO / "profiles" / "slurm" / "bin"


def fake_sacct(folder, lines, code=0):
    folder.mkdir()
    sacct = folder / "sacct"
    quoted = " ".join(f"'{line}'" for line in lines)
    sacct.write_text(f"#!/usr/bin/env bash\nprintf '%s\\n' {quoted}\nexit {code}\n")
    sacct.chmod(0o755)
    return folder


def test_the_shim_reports_a_scancelled_job_as_cancelled_and_passes_the_rest_through(tmp_path):
    real = fake_sacct(tmp_path / "slurm", ["7|CANCELLED by 0", "8|COMPLETED", "9|CANCELLED+", "10|RUNNING"], code=3)
    env = {**os.environ, "PATH": f"{SHIM_DIR}{os.pathsep}{real}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["sacct", "-X", "--parsable2"], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["7|CANCELLED", "8|COMPLETED", "9|CANCELLED+", "10|RUNNING"]
    assert done.returncode == 3  # sacct's own exit status, through the pipe


def test_the_shim_goes_first_on_path_in_slurm_runs_only(tmp_path, monkeypatch):
    real = fake_sacct(tmp_path / "slurm", ["1|RUNNING"])
    monkeypatch.setenv("PATH", f"{real}{os.pathsep}{os.environ['PATH']}")
    assert not put_sacct_shim_first(str(SHIM_DIR), "local") and not put_sacct_shim_first(str(SHIM_DIR), None)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(real)
    assert put_sacct_shim_first(str(SHIM_DIR), "slurm")
    assert os.environ["PATH"].split(os.pathsep)[:2] == [str(SHIM_DIR), str(real)]
    monkeypatch.setenv("PATH", "/nonexistent")  # no sacct at all: the plugin queries squeue, no shim
    assert not put_sacct_shim_first(str(SHIM_DIR), "slurm") and os.environ["PATH"] == "/nonexistent"
