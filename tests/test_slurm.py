"""The tiny DAG on a real single-node SLURM cluster with accounting (.ci/slurm-cluster.sh),
through the profiles as the README says to run them.

Needs root and the Debian packages slurm-wlm, munge, slurmdbd and mariadb-server (CI's
.ci/run installs them); elsewhere the tests skip and say why.
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from conftest import HANG_GUARD_S, REPO, TINY_CONFIG

CLUSTER = REPO / ".ci" / "slurm-cluster.sh"
DAEMONS = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sbatch", "sacct")


def _why_not() -> str:
    missing = [d for d in DAEMONS if shutil.which(d) is None and not os.path.exists(f"/usr/sbin/{d}")]
    if missing:
        return f"SLURM is not installed here (no {', '.join(missing)}): `.ci/slurm-cluster.sh install` (CI runs it)"
    if os.geteuid() != 0:
        return "starting a SLURM cluster needs root"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    return ""


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "ok")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True,
                             timeout=HANG_GUARD_S)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1",
               "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/sbin" + os.pathsep + os.environ["PATH"]}
        yield env
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", str(state)], capture_output=True, timeout=HANG_GUARD_S)


def run_profile(tmp_path, env, profile, cfg):
    """`snakemake --profile profiles/<profile> table3 --configfile <config>` (README), from a
    working directory of its own so that the SLURM logs land there."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile",
                           str(REPO / "profiles" / profile), "table3", "--configfile", str(config)],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=HANG_GUARD_S)


def sacct(env, job_id):
    done = subprocess.run(["sacct", "-n", "-P", "-X", "-j", job_id, "--format=State,AllocTRES,Partition,Account"],
                          capture_output=True, text=True, env=env, timeout=HANG_GUARD_S)
    return done.stdout.strip()


def tiny(tmp_path, methods):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["grid"].update(tasks=["bbc-topic"], methods=list(methods))
    cfg["methods"] = {m: c for m, c in cfg["methods"].items() if m in methods}
    return cfg


def test_the_gpu_profile_sends_its_resources_to_sbatch(tmp_path, cluster):
    cfg = tiny(tmp_path, ["pt", "ptv2"])
    done = run_profile(tmp_path, cluster, "slurm", cfg)
    assert done.returncode == 0, done.stderr[-4000:]
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    train = profile["set-resources"]["train"]
    for method in ("pt", "ptv2"):
        for seed in (8, 13):
            cell = json.loads((tmp_path / f"results/cells/tiny-bert/bbc-topic/shot8/{method}/seed{seed}.json")
                              .read_text())
            job = cell["provenance"]["cluster"]
            assert cell["status"] == "ok" and job["scheduler"] == "slurm" and job["node"] and job["job_id"]
            state, tres, partition, account = sacct(cluster, job["job_id"]).split("|")
            assert state == "COMPLETED" and partition == profile["default-resources"]["slurm_partition"]
            assert account == profile["default-resources"]["slurm_account"] == job["account"]
            assert f"gres/gpu={train['gpu']}" in tres and f"mem={train['mem_mb']}M" in tres
            assert f"cpu={train['cpus_per_task']}" in tres
    assert (tmp_path / "results" / "tables" / "mp2_table3.md").exists()
    # split, table and target rules ran on the submit host: only training went through sbatch
    submitted = sorted(p.name for p in (tmp_path / "results" / "logs" / "slurm").iterdir())
    assert submitted == ["rule_train"]


def test_a_failing_job_is_retried_and_reported_with_its_cause(tmp_path, cluster):
    cfg = tiny(tmp_path, ["pt", "ptv2"])
    # P-tuning v2 with an absurd learning rate: every seed diverges, so its job fails
    cfg["methods"]["ptv2"].update(lr=1e6, head_lr=1e6, diverge_factor=1.5, epochs=3)
    done = run_profile(tmp_path, cluster, "slurm-cpu", cfg)
    assert done.returncode != 0
    attempts = sorted((tmp_path / "results" / "logs" / "slurm" / "rule_train" / "tiny-bert_bbc-topic_8_ptv2").iterdir())
    profile = yaml.safe_load((REPO / "profiles" / "slurm-cpu" / "config.yaml").read_text())
    assert len(attempts) == 1 + profile["retries"]
    for log in attempts:
        assert "FAILED" in sacct(cluster, log.stem).split("|")[0]
    assert "replicate: seeds [8, 13] of [8, 13] failed" in done.stdout + done.stderr  # the job's own log
    for seed in (8, 13):  # the failure records stay (keep-incomplete), with the reason
        failed = json.loads((tmp_path / f"results/cells/tiny-bert/bbc-topic/shot8/ptv2/seed{seed}.json").read_text())
        assert failed["status"] == "failed" and failed["error"].startswith("diverged at epoch")
        ok = json.loads((tmp_path / f"results/cells/tiny-bert/bbc-topic/shot8/pt/seed{seed}.json").read_text())
        assert ok["status"] == "ok" and ok["provenance"]["cluster"]["partition"] == "cpu"
        assert "gres/gpu" not in sacct(cluster, ok["provenance"]["cluster"]["job_id"])


# --- a cancelled cluster job (issue 23) ---


def test_a_cancelled_job_ends_the_wait_and_is_named(tmp_path, cluster):
    """sacct says "CANCELLED by 0" after scancel, which the plugin alone never takes for an end
    (profiles/slurm/bin/sacct): the run must end, failed, naming the job, not wait forever. No
    claim on how soon: the only bound is the hang guard, which a run without the shim hits."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny(tmp_path, ["pt"])))
    log = tmp_path / "snakemake.log"
    # polls every 2 s at first (the profile's 10 s would only slow the test); no resubmission,
    # so the cancelled job is the run's last word
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile",
               str(REPO / "profiles" / "slurm-cpu"), "table3", "--configfile", str(config), "--retries", "0",
               "--seconds-between-status-checks", "2", "--slurm-init-seconds-before-status-checks", "2"]
    with log.open("w") as out:
        run = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=cluster)
        try:
            job_id = ""
            deadline = time.monotonic() + HANG_GUARD_S  # the loop ends when the job runs
            while not job_id and time.monotonic() < deadline and run.poll() is None:
                queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True,
                                       text=True, env=cluster, timeout=HANG_GUARD_S).stdout.split()
                job_id = queue[0] if queue else ""
                time.sleep(0.2)
            assert job_id, "no job ran: " + log.read_text()[-3000:]
            subprocess.run(["scancel", job_id], check=True, env=cluster, timeout=HANG_GUARD_S)
            try:
                # it ends at the next status check; without the shim it never ends: the guard
                # tells a hang from a slow machine, it times nothing
                returncode = run.wait(timeout=HANG_GUARD_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"Snakemake hangs after `scancel {job_id}` (still waiting after the {HANG_GUARD_S} s "
                            "hang guard): " + log.read_text()[-3000:])
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    text = log.read_text()
    assert sacct(cluster, job_id).split("|")[0].startswith("CANCELLED")
    assert returncode != 0, text[-3000:]
    assert f"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED'" in text, text[-3000:]
