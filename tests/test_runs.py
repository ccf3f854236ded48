"""What a run holds while it runs: one results_dir per run, one GPU per job, and the thread
count in what a cell is."""

import subprocess
import sys

import pytest
import yaml

from replicate.config import Group, cell_settings, check_config, config_hash
from replicate.devices import claim_gpu, resolve_device
from replicate.errors import ConfigError, DataError
from replicate.io import lock_directory

from conftest import REPO
from test_workflow import ENV, snakemake


def test_a_second_run_on_the_same_results_dir_stops_in_one_line(tmp_path, tiny_config):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    held = lock_directory(tiny_config["results_dir"])  # another run, from another working directory
    workdir = tmp_path / "other-clone"
    workdir.mkdir()
    done = snakemake("-s", str(REPO / "Snakefile"), "--cores", "1", "table3", "--configfile", str(config),
                     cwd=workdir)
    assert done.returncode != 0 and "replicate: another run is writing" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "results" / "splits").exists()
    held.close()  # the lock goes with the handle (or with its process, kill -9 included)
    again = lock_directory(tiny_config["results_dir"])
    with pytest.raises(DataError, match="another run is writing"):
        lock_directory(tiny_config["results_dir"])
    again.close()


def test_the_lock_dies_with_its_process(tmp_path):
    # holds the lock until it is killed (it reads stdin, which stays open until then: no sleep to outlast)
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from replicate.io import lock_directory; "
                               f"h = lock_directory({str(tmp_path)!r}); print('held', flush=True); sys.stdin.read()"],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(DataError, match=f"pid {holder.pid}"):
        lock_directory(tmp_path)
    holder.kill()  # as kill -9
    holder.wait()
    lock_directory(tmp_path).close()


def test_jobs_on_a_multi_gpu_workstation_claim_distinct_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_GPU_LOCK_DIR", str(tmp_path))
    fake = ["0", "1"]  # two visible GPUs
    other = subprocess.Popen([sys.executable, "-c", "import sys; from replicate.devices import resolve_device; "
                              f"d, h = resolve_device('auto', {fake!r}); print(d, flush=True); sys.stdin.read()"],
                             cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**ENV, "REPLICATE_GPU_LOCK_DIR": str(tmp_path)})
    first = other.stdout.readline().strip()
    mine, handle = resolve_device("auto", fake)
    assert {first, mine} == {"cuda:0", "cuda:1"}
    with pytest.raises(ConfigError, match="no free GPU"):
        claim_gpu(fake, timeout_s=0.2, poll_s=0.05)
    other.kill()
    other.wait()
    # the killed job's GPU is free again, at the first try (timeout 0: no waiting for it)
    position, again = claim_gpu(fake, timeout_s=0)
    assert f"cuda:{position}" == first
    handle.close()
    again.close()


def test_a_cpu_machine_and_a_single_gpu_lock_nothing(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("REPLICATE_GPU_LOCK_DIR", str(tmp_path))
    assert resolve_device("auto", []) == ("cpu", None)
    assert resolve_device("auto", ["3"]) == ("cuda:0", None)  # a SLURM job sees only its own GPU
    # an explicit GPU is taken as given (checked against the GPUs torch sees, not claimed)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1", ["0", "1"]) == ("cuda:1", None)
    assert list(tmp_path.iterdir()) == []


def test_the_thread_count_is_part_of_a_cells_config(tiny_config):
    one = cell_settings(check_config(tiny_config), Group("pt", "tiny-bert", "bbc-topic", 8))
    two = cell_settings(check_config(dict(tiny_config, threads_per_job=2)), Group("pt", "tiny-bert", "bbc-topic", 8))
    assert one["threads"] == 1 and two["threads"] == 2 and config_hash(one) != config_hash(two)
