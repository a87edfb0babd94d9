"""SIGTERM keeps the work done; `ckpt_path=last` resumes the run folder; writes are atomic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from ganarena.run.checkpoint_io import AtomicCheckpointIO
from ganarena.run.config import build
from ganarena.tasks import newest_checkpoint, read_checkpoint
from ganarena.train import train
from tests.conftest import compose_train, straight_and_resumed


def test_sigterm_writes_interrupted_status_and_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "ganarena.train",
        "model=mlp",
        "dataset=mnist_sample",
        "dataset.limit=512",
        "eval=none",
        "trainer.max_steps=100000",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run}",
    ]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GANARENA_CACHE": str(tmp_path / "cache")},
    )
    deadline = time.time() + 120
    while not list((run / "tensorboard").glob("events.*")) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # let it train a little
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["steps"] > 0
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    stopped_at = ckpt["ganarena"]["g_step"]
    assert stopped_at == metrics["steps"]

    # Resume in the same folder with ckpt_path=last: metrics.json is updated in place.
    train(
        compose_train(
            run, ["dataset.limit=512", "ckpt_path=last", f"trainer.max_steps={stopped_at + 3}"]
        )
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["steps"] == stopped_at + 3 and metrics["start_step"] == stopped_at


def test_ckpt_path_last_without_a_checkpoint_is_a_clear_error(tmp_path):
    from ganarena.errors import CheckpointError

    try:
        train(compose_train(tmp_path / "fresh", ["ckpt_path=last"]))
    except CheckpointError as e:
        assert "last.ckpt" in str(e) and "not found" in str(e) and "hydra.run.dir" in str(e)
    else:
        raise AssertionError("expected CheckpointError")


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"a": torch.ones(3)}, target)
    before = target.read_bytes()

    def dies(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies)
    try:
        io.save_checkpoint({"a": torch.zeros(3)}, target)
    except OSError:
        pass
    assert target.read_bytes() == before  # the old checkpoint survives a failed write


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    """5 steps + resume to 12 == 12 steps straight: weights, optimizer state, logged losses.
    256 images / batch 32 = 8 batches an epoch, so the stop is mid-epoch and the run crosses one."""
    common = ["trainer.deterministic=true", "seed=3", "model.ema_decay=0.9"]
    (straight, a), (part, b) = straight_and_resumed(tmp_path, common)
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pa, pb in zip(opt_a["state"].values(), opt_b["state"].values(), strict=True):
            assert torch.equal(pa["exp_avg"], pb["exp_avg"])
    from tests.test_train import events

    for tag in ("train/d_loss", "train/g_loss"):
        full = [e.value for e in events(straight).Scalars(tag)]
        resumed = [e.value for e in events(part).Scalars(tag)]
        assert resumed == full, tag  # steps 1..5 from the first part, 6..12 after the resume


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    """SIGKILL mid-run loses only the steps since the last periodic checkpoint; resuming from it
    (deterministic mode) ends with exactly the weights of a run that was never killed."""
    common = [
        "model=mlp",
        "dataset=mnist_sample",
        "dataset.limit=256",
        "dataset.batch_size=32",
        "eval=none",
        "seed=5",
        "trainer.deterministic=true",
        "callbacks.checkpoint.every_n_steps=2",
        "callbacks.checkpoint.keep=2",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ganarena.train",
            *common,
            "trainer.max_steps=100000",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={killed}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "GANARENA_CACHE": str(tmp_path / "cache")},
    )
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step_000006.ckpt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    read_checkpoint(killed / "checkpoints" / "last.ckpt")  # loads: never half-written
    at = read_checkpoint(newest_checkpoint(killed / "checkpoints"))["ganarena"]["g_step"]
    assert at >= 6 and at % 2 == 0
    # keep=2, plus the newest when the kill lands between writing it and removing the oldest
    # (a checkpoint is written before the one it replaces is deleted, never the other way)
    assert len(list((killed / "checkpoints").glob("step_*.ckpt"))) <= 3

    total = at + 4
    source = newest_checkpoint(killed / "checkpoints")
    train(compose_train(killed, [*common, f"trainer.max_steps={total}", "ckpt_path=last"]))
    # keep=2 again, beside the file the run resumed from, which Lightning never deletes
    # (ModelCheckpoint._should_remove_checkpoint); last.ckpt is a separate file
    kept = {p.name for p in (killed / "checkpoints").glob("step_*.ckpt")}
    newest = {f"step_{total - 2:06d}.ckpt", f"step_{total:06d}.ckpt"}
    assert kept == newest | ({source.name} - {"last.ckpt"})
    assert not list((killed / "checkpoints").glob(".*"))  # a half-written temp file is removed
    straight = tmp_path / "straight"
    train(compose_train(straight, [*common, f"trainer.max_steps={total}"]))
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(killed / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ddp_cpu_two_processes_train_and_write_once(tmp_path):
    """accelerator=ddp_cpu: 2 gloo processes train in lockstep; rank 0 alone writes the outputs;
    the final FID is computed over both ranks' samples and equals a single-process evaluation."""
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "ganarena.train",
        "model=mlp",
        "accelerator=ddp_cpu",
        "trainer.devices=2",
        "dataset=mnist_sample",
        "dataset.limit=512",
        "eval.n_samples=1000",  # 4 batches of 250: ranks 0 and 1 make two each
        "eval.batch_size=250",
        "eval.kid_subset_size=500",
        "eval.every_n_steps=0",
        "eval.classifier.epochs=1",
        "trainer.max_steps=4",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run}",
    ]
    env = {**os.environ, "GANARENA_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 4
    assert res.stderr.count("run folder:") == 1  # logged by rank 0 only
    from tests.test_train import events, scalar_steps

    assert scalar_steps(events(run), "train/g_loss") == [1, 2, 3, 4]  # one event per step
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["ganarena"]["g_step"] == 4
    assert scalar_steps(events(run), "val/fid") == [4]  # logged once
    # One process, the same checkpoint and settings: the same samples, so the same scores.
    from ganarena.metrics import build_evaluator
    from ganarena.tasks import load_task

    module, cfg = load_task(run / "checkpoints" / "last.ckpt")
    cfg.dataset.pop("resolved")  # recorded by ganarena-train, not a datamodule argument
    dm = build(cfg.dataset)
    ev = build_evaluator(cfg.eval, dm, str(tmp_path / "cache"), device="cpu")
    assert ev.reference_cached  # the classifier and statistics the DDP run made
    single = ev.score_module(module)
    final = metrics["final"]
    for key in ("fid", "kid", "is", "modes_covered"):
        assert final[key] == pytest.approx(single[key], rel=1e-6, abs=1e-9), key


# A SLURM job as submitit runs it, without SLURM: submitit's own SignalHandler holds SIGUSR2 (its
# preemption/timeout signal) with a job whose checkpoint() requeues the same call, as the Hydra
# launcher's does; "scontrol requeue" is replaced by a note of what the run folder held then.
SUBMITIT_JOB = """
import json, pathlib, signal, sys
from submitit.core.job_environment import SignalHandler
from submitit.core.utils import DelayedSubmission, JobPaths

note, run = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

class Job:  # stands for BaseSubmititLauncher: checkpoint() resubmits the same arguments
    def __call__(self):
        pass

    def checkpoint(self):
        return DelayedSubmission(self)

class Env:
    global_rank = 0

    def _requeue(self, countdown):
        metrics = json.loads((run / "metrics.json").read_text())
        ckpt = (run / "checkpoints" / "last.ckpt").is_file()
        note.write_text(json.dumps({"status": metrics["status"], "ckpt": ckpt, "left": countdown}))

delayed = DelayedSubmission(Job())
delayed.set_timeout(60, 3)
paths = JobPaths(note.parent / "submitit", job_id="1")
paths.folder.mkdir(parents=True, exist_ok=True)
signal.signal(signal.SIGUSR2, SignalHandler(Env(), paths, delayed).checkpoint_and_try_requeue)
sys.argv = ["ganarena-train", *sys.argv[3:]]
from ganarena.train import main
main()
"""


def test_requeued_job_resumes_with_ckpt_path_auto(tmp_path):
    """Preemption/timeout under submitit: SIGUSR2 stops training at a batch, last.ckpt and
    `status: interrupted` are written, and only then submitit's handler requeues the job. The
    requeue runs the very same command: ckpt_path=auto resumes it (and started it fresh)."""
    run, note = tmp_path / "run", tmp_path / "requeued.json"
    args = [
        sys.executable, "-c", SUBMITIT_JOB, str(note), str(run), "model=mlp",
        "dataset=mnist_sample", "dataset.limit=256", "dataset.batch_size=32", "eval=none",
        "logger=none", "trainer.max_steps=40", "trainer.enable_progress_bar=false",
        "callbacks.checkpoint.every_n_steps=2", "callbacks.checkpoint.keep=1",
        "ckpt_path=auto", f"hydra.run.dir={run}",
    ]  # fmt: skip
    env = {**os.environ, "GANARENA_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "step_000002.ckpt").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err[-2000:]
    first = json.loads((run / "metrics.json").read_text())
    assert first["status"] == "interrupted", err[-2000:]
    assert first["start_step"] == 0 and first["resumed_from"] is None  # auto: a fresh start
    stopped_at = first["steps"]
    assert 2 <= stopped_at < 40
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["ganarena"]["g_step"] == stopped_at
    # submitit requeued the job after the checkpoint was written, without using up a timeout.
    assert json.loads(note.read_text()) == {"status": "interrupted", "ckpt": True, "left": 3}

    # The requeued job: the same overrides again (in-process here, to save a start-up).
    train(compose_train(run, [*args[args.index("logger=none") :]]))
    second = json.loads((run / "metrics.json").read_text())
    assert second["status"] == "completed" and second["steps"] == 40
    assert second["start_step"] == stopped_at
    assert second["resumed_from"] == str(run / "checkpoints" / "last.ckpt")


def test_ckpt_path_auto_in_an_empty_run_folder_starts_fresh(tmp_path):
    run = tmp_path / "fresh"
    (run / "checkpoints").mkdir(parents=True)  # a folder without checkpoints: nothing to resume
    train(compose_train(run, ["ckpt_path=auto", "trainer.max_steps=2"]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["start_step"] == 0
    assert metrics["resumed_from"] is None


def test_stale_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    from ganarena.run.files import remove_stale_temps

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".last.{dead.pid}.tmp.ckpt"
    live = tmp_path / f".last.{os.getpid()}.tmp.ckpt"  # a writer still at work
    other = tmp_path / ".notes.txt"
    for p in (stale, live, other):
        p.write_text("x")
    assert remove_stale_temps(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
