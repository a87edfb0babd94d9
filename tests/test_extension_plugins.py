"""A loss and a discriminator-input transform that live outside the package (tests/extension/),
used from the command line through a config search path with no change to ganarena."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.losses import Loss
from ganarena.train import train
from tests.conftest import compose_train, run_cli, run_clis

EXT = Path(__file__).parent / "extension"
SEARCH = f"hydra.searchpath=[file://{EXT / 'conf'}]"


def outside(module: str):
    """A module of tests/extension, imported as a user's PYTHONPATH would find it."""
    import importlib
    import sys

    sys.path.insert(0, str(EXT))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(EXT))


def test_ragan_matches_its_closed_form():
    """Jolicoeur-Martineau 2018, eq. 11-12, computed by hand from sigmoids of logit differences."""
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.5])
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    r_mean, f_mean = real.mean().item(), fake.mean().item()
    d = (
        -sum(math.log(sig(r - f_mean)) for r in real.tolist()) / 3
        - sum(math.log(1 - sig(f - r_mean)) for f in fake.tolist()) / 2
    )
    g = (
        -sum(math.log(sig(f - r_mean)) for f in fake.tolist()) / 2
        - sum(math.log(1 - sig(r - f_mean)) for r in real.tolist()) / 3
    )
    loss = outside("relativistic").RaGAN()
    assert loss.d(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.g(real, fake).item() == pytest.approx(g, rel=1e-6)
    assert loss.g_uses_real and isinstance(loss, Loss)


class Recording(Loss):
    """Non-saturating, recording what each side was handed (set as loss.objective._target_)."""

    prob, g_uses_real, seen = True, True, []

    def d(self, real, fake, **kwargs):
        Recording.seen.append(("d", real.shape, fake.shape))
        return (
            torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()
        )

    def g(self, real, fake):
        Recording.seen.append(("g", None if real is None else real.shape, fake.shape))
        return torch.nn.functional.softplus(-fake).mean()


def test_the_generator_side_sees_real_and_fake_logits(tmp_path):
    """A loss with g_uses_real gets D's logits on the real batch in the G step, batch-sized."""
    Recording.seen.clear()
    cfg = compose_train(
        tmp_path / "run",
        ["model=mlp", "eval=none", "trainer.max_steps=2", "dataset.batch_size=16",
         "loss.objective._target_=tests.test_extension_plugins.Recording"],
    )  # fmt: skip
    train(cfg)
    g_calls = [s for s in Recording.seen if s[0] == "g"]
    assert len(g_calls) == 2 and all(r == (16,) and f == (16,) for _, r, f in g_calls)


def scalars(run: Path, tag: str) -> list[float]:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


@pytest.mark.slow
def test_an_outside_loss_and_d_input_transform_train_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXT))
    run = tmp_path / "run"
    common = ["experiment=smoke", SEARCH, "eval=none"]
    trained, refused_cond, refused_loss, unpacked = run_clis(
        [
            ["ganarena.train", *common, "loss=ragan", "d_input=[pack2]", f"hydra.run.dir={run}"],
            ["ganarena.train", *common, "d_input=[pack2]", "model.conditional=true",
             f"hydra.run.dir={tmp_path / 'r2'}"],
            ["ganarena.train", *common, "loss.objective._target_=nowhere.Loss",
             f"hydra.run.dir={tmp_path / 'r3'}"],
            # D built for 2 channels without the packing: the transform is what feeds it
            ["ganarena.train", *common, "model.discriminator.channels=2", "model.conditional=false",
             f"hydra.run.dir={tmp_path / 'r4'}"],
        ],
        tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    assert metrics["config"]["loss"] == "ragan" and metrics["config"]["d_input"] == "pack2"
    g_loss = scalars(run, "train/g_loss")
    assert len(g_loss) == 2 and all(math.isfinite(v) for v in g_loss)
    for res, words in (
        (refused_cond, "class-conditional"),
        (refused_loss, "nowhere.Loss"),
    ):
        assert res.returncode == 2, res.stderr[-2000:]
        assert words in res.stderr and "Traceback" not in res.stderr
    assert unpacked.returncode != 0  # a 2-channel D cannot read 1-channel digits unpacked


def test_pack_stacks_consecutive_samples_along_channels():
    Pack = outside("pack").Pack
    x = torch.arange(5 * 1 * 2 * 2, dtype=torch.float32).reshape(5, 1, 2, 2)
    out = Pack(2)(x, real=True)
    assert out.shape == (2, 2, 2, 2)  # the fifth image is dropped: packs are whole
    assert torch.equal(out[1, 0], x[2, 0]) and torch.equal(out[1, 1], x[3, 0])


def test_the_search_path_adds_the_outside_loss_to_the_group(tmp_path):
    """loss=ragan resolves through the search path, its yaml inheriting nonsaturating's settings."""
    res = run_cli(["ganarena.train", SEARCH, "loss=ragan", "--cfg", "job"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "relativistic.RaGAN" in res.stdout and "lr: 0.0002" in res.stdout
