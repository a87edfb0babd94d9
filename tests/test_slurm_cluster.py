"""hydra/launcher=slurm against a real Slurm: a one-node cluster on localhost (tests/slurm_cluster.py:
slurm-wlm + munge, installed with apt-get where missing, every daemon on the loopback address).

One cluster per session, shared by the xdist workers: the first one starts the daemons, the last
one to finish stops them, and each test that submits holds the cluster's lock, so tests never run
two sweeps at once (`pytest -n 2 --dist worksteal` may put them on either worker). Skipped, with
the reason, where Slurm cannot be started (not Linux, not root, no apt-get, a Slurm of the
machine's own). About 50 s in all once the daemons are up (under a second to start them).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from ganarena.report import verdict as v
from tests import slurm_cluster
from tests.conftest import WORKER

pytestmark = pytest.mark.slow
TIMEOUT_S = 300


def _ganarena(name: str) -> list[str]:
    """The console script (as the README runs it) beside this Python, else `python -m`."""
    script = Path(sys.executable).with_name(f"ganarena-{name}")
    return [str(script)] if script.is_file() else [sys.executable, "-m", f"ganarena.{name}"]


@pytest.fixture(scope="session")
def slurm(tmp_path_factory, cache_dir):
    """The running cluster (started here or by the other xdist worker), or a skip."""
    root = tmp_path_factory.getbasetemp()
    shared = (root.parent if WORKER else root) / "slurm-cluster"
    shared.mkdir(exist_ok=True)
    lock, users, failed = FileLock(shared / "lock"), shared / "users", shared / "failed"
    with lock:
        if failed.is_file():
            pytest.skip(failed.read_text())
        reason = slurm_cluster.why_not() or slurm_cluster.install()
        cluster = None
        if reason is None:
            try:
                cluster = slurm_cluster.attach(shared / "c") or slurm_cluster.start(shared / "c")
            except RuntimeError as e:
                reason = f"the test cluster did not start: {e}"
        if cluster is None:
            failed.write_text(f"no Slurm test cluster: {reason}")
            pytest.skip(failed.read_text())
        users.write_text(str(int(users.read_text() or 0) + 1 if users.is_file() else 1))
    cluster.env["GANARENA_CACHE"] = str(cache_dir)
    cluster.env["HYDRA_FULL_ERROR"] = "0"
    cluster.lock = lock
    yield cluster
    with lock:
        left = int(users.read_text()) - 1
        users.write_text(str(left))
        if left == 0:
            cluster.stop()


def shared_sweep(slurm, tmp_path_factory, name: str, drive) -> dict:
    """Run `drive(slurm, folder)` once per session (whichever worker comes first; the cluster's
    lock held) and hand its result, a dict, to every test that asks."""
    root = tmp_path_factory.getbasetemp()
    folder = (root.parent if WORKER else root) / "slurm-sweeps" / name
    done = folder / "result.json"
    with slurm.lock:
        if not done.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            try:
                result = drive(slurm, folder)
            except Exception as e:  # noqa: BLE001 - kept for the tests that share the sweep
                result = {"error": f"{type(e).__name__}: {e}"}
            result["seconds"] = round(time.monotonic() - t0, 1)
            done.write_text(json.dumps(result))
    result = json.loads(done.read_text())
    if "error" in result:
        pytest.fail(f"the {name} sweep broke: {result['error']}")
    return result


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def summary_line(stdout: str, num: int) -> str:
    return next(ln for ln in stdout.splitlines() if ln.strip().startswith(f"#{num} "))


# -- (a) the README's CPU-cluster command -----------------------------------------------------------
README_CPU = ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=cpu", "experiment=smoke",
              "seed=1,2"]  # fmt: skip


def run_readme_sweep(slurm, folder: Path) -> dict:
    sweep = folder / "sweep"
    proc = subprocess.run(
        [*_ganarena("train"), *README_CPU, f"hydra.sweep.dir={sweep}"], cwd=folder,
        env=slurm.env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    compare = subprocess.run(
        [*_ganarena("compare"), str(sweep), "--out", str(folder / "cmp")], cwd=folder,
        env=slurm.env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    return {"sweep": str(sweep), "rc": proc.returncode, "out": proc.stdout, "err": proc.stderr,
            "compare_rc": compare.returncode, "compare_err": compare.stderr[-3000:]}  # fmt: skip


def test_readme_cpu_command_runs_a_two_job_sweep_that_compare_reads(slurm, tmp_path_factory):
    r = shared_sweep(slurm, tmp_path_factory, "readme", run_readme_sweep)
    assert r["rc"] == 0, r["err"][-3000:]
    assert "Traceback" not in r["err"]
    sweep = Path(r["sweep"])
    for num in (0, 1):
        m = metrics(sweep / str(num))
        assert m["status"] == "completed" and m["steps"] == 2, m
        assert summary_line(r["out"], num).endswith("completed, 2 steps, health unreliable")
    assert "2 jobs" in r["out"] and "2 completed" in r["out"]
    # Pending and running were announced while the command waited.
    assert re.search(r"slurm: #0 seed=1, #1 seed=2: pending", r["err"]), r["err"][-2000:]
    assert "slurm: #0 seed=1, #1 seed=2: running" in r["err"]
    assert r["compare_rc"] == 0, r["compare_err"]
    assert (sweep.parent / "cmp" / "comparison.md").is_file()
    # A CPU job: no GPU asked for, 1 CPU and 3 GB (smoke's 256 images), threads capped to 1.
    (script,) = sweep.glob(".submitit/*/*_submission.sh")
    text = script.read_text()
    assert "--cpus-per-task=1" in text and "--mem=3GB" in text and "gpu" not in text
    (log,) = sweep.glob(".submitit/*_0/*_0_0_log.out")
    assert "ganarena: 1 thread(s) per process" in log.read_text()


# -- (b) + (c): one sweep, one job requeued by SIGUSR2, the other cancelled --------------------------
MAX_STEPS = 100
REQUEUE_CANCEL = ["-m", "hydra/launcher=slurm", "experiment=smoke", "model=mlp",
                  f"trainer.max_steps={MAX_STEPS}", "callbacks.checkpoint.every_n_steps=10",
                  "eval.every_n_steps=0", "hydra.launcher.poll_s=1", "seed=1,2"]  # fmt: skip


def wait_for(what: str, test, timeout_s: float = 90, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = test()
        if got:
            return got
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}")


def run_requeue_and_cancel(slurm, folder: Path) -> dict:
    """Job 0 gets SIGUSR2 (as before a time limit) once it has a checkpoint, job 1 scancel."""
    sweep, err = folder / "sweep", folder / "stderr.txt"
    with err.open("w") as err_file:
        proc = subprocess.Popen(
            [*_ganarena("train"), *REQUEUE_CANCEL, f"hydra.sweep.dir={sweep}"], cwd=folder,
            env=slurm.env, stdout=subprocess.PIPE, stderr=err_file, text=True,
        )  # fmt: skip
        try:
            array = wait_for("the submission", lambda: re.findall(
                r"submitted as (\d+)_", err.read_text()))[0]  # fmt: skip
            for num in (0, 1):
                wait_for(f"job {num}'s first checkpoint",
                         lambda n=num: list((sweep / str(n) / "checkpoints").glob("step_*.ckpt")))  # fmt: skip
            slurm.run("scancel", "--signal=USR2", f"{array}_0")
            slurm.run("scancel", f"{array}_1")
            # Slurm holds a requeued job (BeginTime; here AuthInfo cred_expire=10 s, 120 s by
            # default) and starts it at a later scheduling pass: release it now, as a user may.
            wait_for("the requeued job to wait", lambda: "BeginTime" in slurm.run(
                "squeue", "-h", "-j", f"{array}_0", "-o", "%r").stdout)  # fmt: skip
            slurm.run("scontrol", "update", f"JobId={array}_0", "StartTime=now")
            out, _ = proc.communicate(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                slurm.run("scancel", array, check=False)
    return {"sweep": str(sweep), "rc": proc.returncode, "out": out, "err": err.read_text()}


def test_sigusr2_requeues_a_job_that_resumes_to_its_last_step_in_its_folder(
    slurm, tmp_path_factory
):
    r = shared_sweep(slurm, tmp_path_factory, "requeue_cancel", run_requeue_and_cancel)
    job = Path(r["sweep"]) / "0"
    m = metrics(job)
    assert m["status"] == "completed" and m["steps"] == MAX_STEPS, m
    # Resumed from the checkpoint the interrupted attempt saved, in its own folder.
    assert m["resumed_from"] == str(job / "checkpoints" / "last.ckpt")
    assert 0 < m["start_step"] < MAX_STEPS
    log = (job / "train.log").read_text()
    assert "SIGUSR2 received" in log
    assert f"interrupted at generator step {m['start_step']}" in log
    assert "slurm: #0 seed=1: requeued" in r["err"], r["err"][-2000:]
    assert summary_line(r["out"], 0).endswith("requeued 1x"), r["out"]


def test_a_cancelled_job_ends_the_sweep_with_a_per_job_summary_and_no_traceback(
    slurm, tmp_path_factory
):
    r = shared_sweep(slurm, tmp_path_factory, "requeue_cancel", run_requeue_and_cancel)
    assert r["rc"] == 0, r["err"][-3000:]  # one job completed, and strict is off
    assert "Traceback" not in r["err"] and "UncompletedJobError" not in r["err"]
    assert "2 jobs" in r["out"] and "1 completed, 1 did not" in r["out"]
    m = metrics(Path(r["sweep"]) / "1")
    assert m["status"] == "interrupted"  # scancel = SIGTERM: it saved before it stopped
    assert m["verdict"].startswith("run interrupted before its first evaluation")
    line = summary_line(r["out"], 1)
    assert "CANCELLED" in line and f"metrics.json: interrupted at step {m['steps']}" in line
    assert "last.ckpt kept" in line


# -- (d) a request the partition can never run ----------------------------------------------------
def test_an_impossible_request_is_refused_before_submission(slurm, tmp_path):
    before = slurm.run("scontrol", "-o", "show", "job").stdout.count("JobId=")
    sweep = tmp_path / "sweep"
    with slurm.lock:
        proc = subprocess.run(
            [*_ganarena("train"), *README_CPU, "hydra.launcher.cpus_per_task=64",
             "hydra.launcher.mem_gb=4096", f"hydra.sweep.dir={sweep}"],
            cwd=tmp_path, env=slurm.env, capture_output=True, text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "can never start" in err and "64 CPUs" in err and "4096 GB memory" in err
    assert "partition 'cpu' offers at most 1 node(s), 0 of which fit" in err
    assert f"its largest node has {slurm.cpus} CPUs" in err
    assert f"RealMemory {slurm.memory_mb} MB" in err
    assert not (sweep / ".submitit").exists()  # nothing was submitted
    assert slurm.run("scontrol", "-o", "show", "job").stdout.count("JobId=") == before


# -- no cluster needed ------------------------------------------------------------------------------
def test_an_interrupted_runs_verdict_says_so_not_eval_none():
    domain = {"backbone": "domain-mnist-cnn", "classifier_accuracy": 0.99}
    word, text = v.verdict("interrupted", None, domain)
    assert word == "unscored" and "eval=none" not in text
    assert (
        text.startswith("run interrupted before its first evaluation") and "ckpt_path=last" in text
    )
    assert "(eval=none)" in v.verdict("completed", None, None)[1]  # eval=none still says so
    scores = {"fid": 5.0, "is": 9.0, "modes_covered": 10, "class_kl": 0.01}
    word, text = v.verdict("interrupted", scores, {**domain, "real_floor_fid": 4.0})
    assert word == "healthy" and text.startswith("run interrupted (resume it with ckpt_path=last)")


def test_the_test_cluster_listens_on_loopback_only(slurm):
    conf = Path(slurm.env["SLURM_CONF"]).read_text()
    assert "SlurmctldHost=localhost(127.0.0.1)" in conf and "NodeAddr=127.0.0.1" in conf
    bound = slurm.listening()
    assert set(bound) == {"munged", "slurmctld", "slurmd"}
    assert bound["munged"] == []  # a unix socket in the cluster's folder only
    for daemon in ("slurmctld", "slurmd"):
        assert bound[daemon] and all(a.startswith("127.0.0.1:") for a in bound[daemon]), bound
