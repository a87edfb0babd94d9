"""The Python API (ganarena.api): the commands as functions, with the CLI's checks."""

from __future__ import annotations

import pytest

from ganarena import api
from ganarena.errors import ConfigError
from tests.conftest import FAST


def test_train_evaluate_and_generate_from_python(tmp_path):
    run = api.train(
        [*FAST, "eval=domain", "eval.n_samples=64", "eval.every_n_steps=3",
         "eval.classifier.epochs=1", f"paths.cache_dir={tmp_path / 'cache'}"],
        out=tmp_path / "run",
    )  # fmt: skip
    assert run.metrics["status"] == "completed" and run.metrics["steps"] == 3
    assert run.checkpoint.is_file() and run.value == pytest.approx(run.metrics["final"]["fid"])
    result = api.evaluate(
        run.checkpoint,
        ["eval.n_samples=64", "eval.classifier.epochs=1", f"eval.cache_dir={tmp_path / 'cache'}"],
    )
    # the same generator, sample stream and classifier as the run's last evaluation
    assert result["scores"]["fid"] == pytest.approx(run.metrics["final"]["fid"], rel=1e-6)
    (grid,) = api.generate(run.checkpoint, ["n=8", "nrow=4", f"out={tmp_path / 'grid.png'}"])
    assert grid.is_file()
    resumed = api.train([*FAST, "trainer.max_steps=5", "ckpt_path=last"], out=tmp_path / "run")
    assert resumed.metrics["start_step"] == 3 and resumed.metrics["steps"] == 5


def test_config_composes_as_the_cli_and_bad_input_raises_the_cli_error(tmp_path):
    assert api.config(["loss=wgan_gp"]).loss.n_critic == 5
    assert api.config(["n=3"], "generate").n == 3
    with pytest.raises(ConfigError, match="trainer.max_steps must be > 0"):
        api.train([*FAST, "trainer.max_steps=-1"], out=tmp_path / "bad")
    assert not (tmp_path / "bad" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="Pass either ckpt_path"):
        api.evaluate()
