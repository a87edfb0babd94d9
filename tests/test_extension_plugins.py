"""A loss and a discriminator-input transform (instance noise) that live outside the package
(tests/extension/), used from the command line through a config search path with no change to
ganarena. PacGAN packing is in the package (ganarena.gan.packing, tests/test_packing.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.gan.losses import Loss
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


def test_ralsgan_matches_its_closed_form():
    """Jolicoeur-Martineau 2018, RaLSGAN, computed by hand from logit differences to the other
    side's mean: real mean 0.5, fake mean 0.75."""
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.5])
    # D: 1/2 mean((r - 0.75 - 1)^2) + 1/2 mean((f - 0.5 + 1)^2)
    d = 0.5 * (0.25**2 + 2.75**2 + 1.25**2) / 3 + 0.5 * (0.5**2 + 2.0**2) / 2
    # G: 1/2 mean((f - 0.5 - 1)^2) + 1/2 mean((r - 0.75 + 1)^2)
    g = 0.5 * (1.5**2 + 0.0**2) / 2 + 0.5 * (2.25**2 + 0.75**2 + 0.75**2) / 3
    loss = outside("relativistic").RaLSGAN()
    assert loss.d(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.g(real, fake).item() == pytest.approx(g, rel=1e-6)
    assert loss.g_uses_real and isinstance(loss, Loss)
    from ganarena.gan import losses  # not a duplicate of a built-in loss

    assert "RaLSGAN" not in dir(losses) and "ralsgan" not in losses.LOSSES


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
    noise = "d_input=[instance_noise]"
    trained, conditional, refused_loss, refused_noise = run_clis(
        [
            ["ganarena.train", *common, "loss=ralsgan", noise, f"hydra.run.dir={run}"],
            # instance noise keeps one D input per image: a class-conditional D takes it
            ["ganarena.train", *common, noise, "model.conditional=true",
             f"hydra.run.dir={tmp_path / 'r2'}"],
            ["ganarena.train", *common, "loss.objective._target_=nowhere.Loss",
             f"hydra.run.dir={tmp_path / 'r3'}"],
            ["ganarena.train", *common, noise, "d_input.instance_noise._target_=nowhere.Noise",
             f"hydra.run.dir={tmp_path / 'r4'}"],
        ],
        tmp_path,
    )  # fmt: skip
    for res, folder in ((trained, run), (conditional, tmp_path / "r2")):
        assert res.returncode == 0, res.stderr[-3000:]
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["steps"] == 2
        assert metrics["config"]["d_input"] == "instance_noise"
    assert json.loads((run / "metrics.json").read_text())["config"]["loss"] == "ralsgan"
    assert json.loads((tmp_path / "r2" / "metrics.json").read_text())["config"]["conditional"]
    g_loss = scalars(run, "train/g_loss")
    assert len(g_loss) == 2 and all(math.isfinite(v) for v in g_loss)
    for res, words in ((refused_loss, "nowhere.Loss"), (refused_noise, "nowhere.Noise")):
        assert res.returncode == 2, res.stderr[-2000:]
        assert words in res.stderr and "Traceback" not in res.stderr


def test_instance_noise_is_annealed_on_real_and_fake_inputs():
    """sigma x (1 - seen/steps) on both sides, counting real batches; the identity at the end."""
    noise = outside("instance_noise").InstanceNoise(sigma=0.5, steps=4)
    x = torch.zeros(20000, 1, 2, 2)
    torch.manual_seed(0)
    stds = []
    for _ in range(5):
        stds.append(float(noise(x, real=True).std()))  # 0.5, 0.375, 0.25, 0.125, 0
        assert float(noise(x, real=False).std()) == pytest.approx(noise.sigma, rel=0.02)
    assert stds[:4] == pytest.approx([0.5, 0.375, 0.25, 0.125], rel=0.02)
    assert stds[4] == 0.0 and noise(x, real=False) is x
    assert noise.keeps_batch


def test_the_search_path_adds_the_outside_loss_to_the_group(tmp_path):
    """loss=ralsgan resolves through the search path, its yaml inheriting lsgan's settings."""
    res = run_cli(["ganarena.train", SEARCH, "loss=ralsgan", "--cfg", "job"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "relativistic.RaLSGAN" in res.stdout and "lr: 0.0002" in res.stdout
