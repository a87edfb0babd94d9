"""The speed work changes no results; the benchmark script runs and emits valid JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.train import train
from tests.conftest import REPO, compose_train


def logged_losses(run_dir) -> dict[str, list[float]]:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [e.value for e in acc.Scalars(t)] for t in ("train/d_loss", "train/g_loss")}


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_optimisations_leave_the_first_50_steps_unchanged(tmp_path, model):
    base = [
        f"model={model}",
        "trainer.max_steps=50",
        "dataset.limit=640",
        "seed=7",
        "callbacks.checkpoint.every_n_steps=50",
        "callbacks.samples.every_n_steps=50",
    ]
    if model == "dcgan":  # keep the conv model quick on CPU
        base += ["model.width=8", "trainer.max_steps=25"]
    fast, plain = tmp_path / "fast", tmp_path / "plain"
    train(compose_train(fast, base))
    train(
        compose_train(plain, [*base, "speed.fused_optimizers=false", "speed.batched_loader=false"])
    )
    a, b = logged_losses(fast), logged_losses(plain)
    for tag in a:
        assert len(a[tag]) == len(b[tag]) == (50 if model == "mlp" else 25)
        assert torch.allclose(torch.tensor(a[tag]), torch.tensor(b[tag]), rtol=1e-4, atol=1e-5), tag


def test_benchmark_quick_emits_json(tmp_path):
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    kinds = [line["kind"] for line in lines]
    assert kinds.count("train") == 2 and kinds[-1] == "summary"
    summary = lines[-1]
    assert summary["baseline_imgs_per_s_median"] > 0 and summary["ganarena_imgs_per_s_median"] > 0
    assert summary["ratio_median"] == pytest.approx(
        summary["ganarena_imgs_per_s_median"] / summary["baseline_imgs_per_s_median"], rel=1e-2
    )


def test_benchmark_startup_rows(monkeypatch):
    """The startup rows' machinery on two of its commands (the full set: --startup)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import benchmark
    finally:
        sys.path.remove(str(REPO / "scripts"))
    picked = ["floor: python -c 'import torch'", "ganarena-train trainer.max_steps=-5 (bad value)"]
    monkeypatch.setattr(benchmark, "STARTUP", {k: benchmark.STARTUP[k] for k in picked})
    rows = benchmark.startup(repeats=1)
    assert [r["command"] for r in rows] == picked
    assert [r["exit_code"] for r in rows] == [0, 2]  # the bad value is refused
    assert all(r["kind"] == "startup" and r["median_s"] > 0 for r in rows)
