"""A task that lives outside the package trains, resumes, evaluates and generates through the
ordinary commands, with no change to ganarena (tests/extension/toy_task.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import run_cli, run_clis

EXT = Path(__file__).parent / "extension"


@pytest.mark.slow
def test_an_outside_task_works_with_every_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXT))
    run = tmp_path / "run"
    common = [
        "experiment=smoke",  # 256 digits, evaluation after every step on 64 images
        f"hydra.searchpath=[file://{EXT / 'conf'}]",
        "task=two_generators",
        f"hydra.run.dir={run}",
    ]
    res = run_cli(["ganarena.train", *common, "trainer.max_steps=2"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    first = json.loads((run / "metrics.json").read_text())
    assert first["status"] == "completed" and first["steps"] == 2
    assert first["config"]["task"] == "two_generators" and first["config"]["generators"] == 2
    assert (run / "samples" / "step_000002.png").is_file()

    res = run_cli(["ganarena.train", *common, "trainer.max_steps=4", "ckpt_path=last"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["start_step"] == 2
    assert metrics["final"]["modes_covered"] >= 0 and metrics["final"]["fid"] > 0
    with Image.open(run / "samples" / "step_000004.png") as im:
        assert im.size == (4 * 30 + 2, 4 * 30 + 2)  # 16 fixed samples, 4 per row

    ckpt = run / "checkpoints" / "last.ckpt"
    grid, strip = tmp_path / "grid.png", tmp_path / "interp.png"
    scored, drawn, interpolated = run_clis(
        [
            ["ganarena.evaluate", f"ckpt_path={ckpt}", "eval.n_samples=64",
             "eval.classifier.epochs=1"],
            ["ganarena.generate", f"ckpt_path={ckpt}", "n=8", "nrow=4", f"out={grid}"],
            ["ganarena.generate", f"ckpt_path={ckpt}", "interpolate=true", "steps=5",
             f"out={strip}"],
        ],
        tmp_path,
    )  # fmt: skip
    for res in (scored, drawn, interpolated):
        assert res.returncode == 0, res.stderr[-3000:]
    scores = json.loads(scored.stdout)["scores"]
    # the same task, sample stream and classifier as the run's final evaluation: the same scores
    assert scores["fid"] == pytest.approx(metrics["final"]["fid"], rel=1e-6)
    assert scores["is"] == pytest.approx(metrics["final"]["is"], rel=1e-6)
    with Image.open(grid) as im:
        assert im.size == (4 * 30 + 2, 2 * 30 + 2)
    assert strip.is_file() and strip.with_suffix(".gif").is_file()
