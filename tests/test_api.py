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
    assert api.config(["loss=wgan_gp"]).optim.n_critic == 5
    assert api.config(["n=3"], "generate").n == 3
    with pytest.raises(ConfigError, match="trainer.max_steps must be > 0"):
        api.train([*FAST, "trainer.max_steps=-1"], out=tmp_path / "bad")
    assert not (tmp_path / "bad" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="Pass either ckpt_path"):
        api.evaluate()


def test_fit_load_sample_compare_in_one_process(tmp_path):
    """The notebook path of the README: ganarena.fit -> load -> sample -> compare, no subprocess."""
    import torch

    import ganarena

    runs = tmp_path / "sweep"
    results = [
        ganarena.fit([*FAST, f"loss={loss}", "seed=1", "eval=domain", "eval.n_samples=64",
                      "eval.classifier.epochs=1", f"paths.cache_dir={tmp_path / 'cache'}"],
                     out=runs / str(i))
        for i, loss in enumerate(["nonsaturating", "hinge"])
    ]  # fmt: skip
    for r in results:
        assert r.status == "completed" and r.scores["fid"] == pytest.approx(r.value)
        assert isinstance(r.verdict, str) and r.verdict
    model = ganarena.load(results[0].checkpoint)
    images = model.sample(6, seed=3)
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(model.sample(6, seed=3), images)  # the same stream
    assert torch.allclose(
        model.sample(2, seed=3, start=4), images[4:], atol=1e-5
    )  # batch size: rounding
    assert not torch.equal(model.sample(6, seed=4), images)
    table = ganarena.compare([runs], group_by=["loss"])
    assert sorted(row["loss"] for row in table) == ["hinge", "nonsaturating"]
    assert "hinge" in table.markdown and all(p.exists() for p in table.files)
    with pytest.raises(ConfigError, match="unconditional"):
        model.sample(2, label=1)
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        model.sample(0)


def test_load_refuses_what_is_not_a_checkpoint(tmp_path):
    import ganarena
    from ganarena.errors import CheckpointError

    with pytest.raises(CheckpointError, match="Checkpoint not found"):
        ganarena.load(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="is a folder"):
        ganarena.load(tmp_path)
