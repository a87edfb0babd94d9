"""ganarena-eval: checkpoint and folder modes, one JSON object on stdout, clean user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from ganarena.errors import ConfigError, DataError
from ganarena.evaluate import evaluate, load_image_folder
from ganarena.metrics import build_evaluator
from ganarena.run.files import to_uint8

from .conftest import MNIST_IMAGES as IMAGES
from .conftest import MNIST_LABELS as LABELS
from .conftest import MNIST_TEST as MNIST
from .conftest import needs_mnist, run_cli

IDX = ["dataset=idx", f"dataset.images={IMAGES}", f"dataset.labels={LABELS}"]
# Small-n warnings are expected here; tests that check them use pytest.warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Scoring only:UserWarning", "ignore:eval.kid_subset_size:UserWarning"
)


@pytest.fixture(scope="module")
def mnist(cache_dir):
    """The mnist-test datamodule, with its domain classifier already in the cache."""
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST} not present")
    from ganarena.data import IdxDataModule

    dm = IdxDataModule(images=str(IMAGES), labels=str(LABELS))
    dm.setup("fit")
    build_evaluator({"backbone": "domain"}, dm, str(cache_dir))
    return dm


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True)
    for i, x in enumerate(to_uint8(images)):
        Image.fromarray(x[0].numpy()).save(folder / f"{i:05d}.png")
    return folder


def compose_eval(overrides: list[str]):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def one_json(stdout: str) -> dict:
    """stdout must be exactly one JSON object (json.loads rejects trailing data)."""
    result = json.loads(stdout)
    assert isinstance(result, dict)
    return result


@pytest.mark.slow
@needs_mnist
def test_checkpoint_scores_are_reproducible(mnist, cache_dir, tmp_path, capsys):
    train = run_cli(
        ["ganarena.train", *IDX, "model=mlp", "eval=none", "trainer.max_steps=2", "dataset.batch_size=32",
         "trainer.enable_progress_bar=false", "logger=none"],
        cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    ckpt = next(tmp_path.glob("outputs/train/runs/*/checkpoints/last.ckpt"))
    args = [f"ckpt_path={ckpt}", "eval.n_samples=300", f"paths.cache_dir={cache_dir}"]
    proc = run_cli(["ganarena.evaluate", *args], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = one_json(proc.stdout)
    assert set(first["scores"]) == {
        "fid",
        "is",
        "is_std",
        "kid",
        "kid_std",
        "modes_covered",
        "class_kl",
        "precision",
        "recall",
        "density",
        "coverage",
        "coverage_per_class",  # labelled real data: coverage of each class's real images
        "coverage_class_min",
    }
    assert len(first["scores"]["coverage_per_class"]) == 10
    s = first["eval"]
    assert s["backbone"] == "domain-idx-cnn" and s["n_fake"] == 300 and s["n_real"] == 10000
    assert s["real_split"] == "train" and s["seed"] == 0 and s["classifier_accuracy"] >= 0.985
    assert first["inputs"]["step"] == 2
    assert json.loads(Path(first["file"]).read_text()) == first
    assert Path(first["file"]).parent == ckpt.parent

    # Again, in this process: identical numbers (the dataset comes from the checkpoint's config).
    evaluate(compose_eval(args))
    second = one_json(capsys.readouterr().out)
    assert second["scores"] == first["scores"]


@needs_mnist
def test_folders(mnist, cache_dir, tmp_path):
    real = write_pngs(tmp_path / "real", mnist.images[:300])
    fake = write_pngs(tmp_path / "fake", mnist.images[5000:5300])
    proc = run_cli(
        ["ganarena.evaluate", f"real={real}", f"fake={fake}", "eval.backbone=domain", *IDX,
         f"paths.cache_dir={cache_dir}"],
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = one_json(proc.stdout)
    assert result["eval"]["n_real"] == 300 and result["eval"]["n_fake"] == 300
    assert result["eval"]["real_split"] == str(real)
    assert 0 < result["scores"]["fid"] < 100 and result["scores"]["modes_covered"] == 10
    assert [p.name for p in fake.glob("eval_*.json")] == [Path(result["file"]).name]


def test_empty_fake_folder_is_a_user_error(tmp_path):
    (tmp_path / "fake").mkdir()
    write_pngs(tmp_path / "real", torch.zeros(2, 1, 8, 8))
    proc = run_cli(
        [
            "ganarena.evaluate",
            "real=real",
            "fake=fake",
            "eval=inception",
            "eval.inception_weights=/x",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "ganarena-eval: error: No images in fake=fake" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_image_folder_checks(tmp_path):
    with pytest.raises(DataError, match="No images"):
        load_image_folder(tmp_path, None, "fake")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match="2 different sizes"):
        load_image_folder(tmp_path, None, "fake")
    (tmp_path / "b.png").unlink()
    Image.fromarray(np.full((28, 28, 3), 200, np.uint8)).save(tmp_path / "c.jpg")
    x = load_image_folder(tmp_path, 1, "fake")
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.uint8
    assert load_image_folder(tmp_path, None, "fake").shape == (2, 3, 28, 28)


def test_bad_mode_combinations():
    with pytest.raises(ConfigError, match="ckpt_path"):
        evaluate(compose_eval([]))
    with pytest.raises(ConfigError, match="ckpt_path"):
        evaluate(compose_eval(["ckpt_path=x.ckpt", "real=a", "fake=b"]))
    with pytest.raises(ConfigError, match="eval=domain"):
        evaluate(compose_eval(["ckpt_path=x.ckpt", "eval=none"]))


@needs_mnist
def test_ema_false_scores_the_trained_generator(mnist, cache_dir, tmp_path, capsys):
    """ganarena-eval ema=false scores the trained G instead of its EMA copy: the same numbers as
    the evaluator gives a task whose EMA is off, different from the EMA's (decay 0.5, 4 steps)."""
    from ganarena.tasks import load_task
    from ganarena.train import train

    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("train", overrides=[
            *IDX, "model.width=8", "model.ema_decay=0.5", "trainer.max_steps=4", "eval=none",
            "logger=none", "trainer.enable_progress_bar=false", f"paths.output_dir={tmp_path}",
        ])  # fmt: skip
    train(cfg)
    capsys.readouterr()  # the run's own verdict line
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", "eval.n_samples=200", f"paths.cache_dir={cache_dir}"]
    results = {}
    for ema in ("true", "false"):
        evaluate(compose_eval([*args, f"ema={ema}"]))
        results[ema] = one_json(capsys.readouterr().out)
    assert results["true"]["inputs"]["generator"] == "ema"
    assert results["false"]["inputs"]["generator"] == "trained"
    assert results["true"]["scores"]["fid"] != results["false"]["scores"]["fid"]

    task, _ = load_task(str(ckpt))
    assert task.sampler is task.ema.module
    task.use_ema(False)
    assert task.sampler is task.generator
    evaluator = build_evaluator(
        compose_eval(args).eval, mnist, str(cache_dir)
    )  # the checkpoint's data, scored directly
    assert evaluator.score_module(task)["fid"] == pytest.approx(results["false"]["scores"]["fid"])

    with pytest.raises(ConfigError, match="ema must be true or false"):
        evaluate(compose_eval([*args, "ema=maybe"]))
