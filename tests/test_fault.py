"""SIGTERM keeps the work done; `ckpt_path=last` resumes the run folder; writes are atomic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from ganarena.checkpoint_io import AtomicCheckpointIO
from ganarena.module import read_checkpoint
from ganarena.train import train
from tests.conftest import compose_train


def test_sigterm_writes_interrupted_status_and_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "ganarena.train", "dataset=mnist_sample", "dataset.limit=512",
            "eval=none", "trainer.max_steps=100000", "trainer.log_every_n_steps=1",
            "trainer.enable_progress_bar=false", f"hydra.run.dir={run}"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "GANARENA_CACHE": str(tmp_path / "cache")})
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
    train(compose_train(run, ["dataset.limit=512", "ckpt_path=last",
                              f"trainer.max_steps={stopped_at + 3}"]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["steps"] == stopped_at + 3 and metrics["start_step"] == stopped_at


def test_ckpt_path_last_without_a_checkpoint_is_a_clear_error(tmp_path):
    from ganarena.errors import CheckpointError

    try:
        train(compose_train(tmp_path / "fresh", ["ckpt_path=last"]))
    except CheckpointError as e:
        assert "last.ckpt" in str(e) and "not found" in str(e)
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
