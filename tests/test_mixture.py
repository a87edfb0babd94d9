"""dataset=gaussian_mixture: the 2-D ring/grid data, the VEEGAN/PacGAN scores, the scatter plots."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.data import GaussianMixtureDataModule
from ganarena.errors import ConfigError, DivergedError
from ganarena.evaluate import evaluate
from ganarena.metrics import build_backbone, build_evaluator
from ganarena.metrics.mixture import MixtureEvaluator, mixture_scores
from ganarena.run.config import build
from ganarena.train import train
from tests.conftest import compose_train

# Fraction of an isotropic 2-D Gaussian within radius 3 std (Rayleigh CDF): 1 - exp(-9/2).
WITHIN_3_STD = 1 - math.exp(-4.5)
EVAL = OmegaConf.create({"backbone": "domain", "n_samples": 2000, "seed": 0, "batch_size": 500})


def compose_eval(overrides: list[str]):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def mixture(layout="ring", **kw) -> GaussianMixtureDataModule:
    kw.setdefault("n_train", 2000)
    kw.setdefault("n_eval", 1000)
    dm = GaussianMixtureDataModule(layout=layout, **kw)
    dm.setup()
    return dm


class PointGenerator:
    """A stand-in for a generative task's `sample`: real mixture points drawn from the seed."""

    num_classes = None

    def __init__(self, dm):
        self.dm = dm

    def sample(self, n, seed, labels=None, start=0):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + start)
        return self.dm.to_images(self.dm.draw(n, gen)[0]), None


@pytest.mark.parametrize(("layout", "modes", "std"), [("ring", 8, 0.02), ("grid", 25, 0.05)])
def test_data_shapes_scaling_labels_and_geometry(layout, modes, std):
    dm = mixture(layout)
    assert dm.images.shape == (2000, 2, 1, 1) and dm.images.dtype == torch.float32
    assert dm.images.abs().max() < 0.9  # inside Tanh's range with room to spare
    assert dm.num_classes == modes and dm.std == std and dm.resolved == f"gaussian_{layout}"
    assert dm.labels.min() == 0 and dm.labels.max() == modes - 1
    points = dm.unscale(dm.images)
    # Every point sits near the centre of its label's mode, in the original units.
    dist = (points - dm.centres[dm.labels]).norm(dim=1)
    assert dist.max() < 6 * std
    if layout == "ring":
        assert torch.allclose(dm.centres.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    else:
        assert sorted(set(dm.centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    ref, ref_labels, split = dm.reference()
    assert split == "test" and ref.shape == (1000, 2, 1, 1) and len(ref_labels) == 1000
    assert not torch.equal(ref[:10], dm.images[:10])  # a separate draw


def test_data_is_deterministic_in_the_seed():
    a, b, c = mixture(), mixture(), mixture(seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert not torch.equal(a.images, c.images)
    assert torch.allclose(a.unscale(a.to_images(a.centres)), a.centres, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": "hexagon"}, r"dataset.layout.*'ring'.*'grid'"),
        ({"std": 0}, r"dataset.std must be a positive number"),
        ({"std": -0.1}, r"dataset.std must be a positive number"),
        ({"std": float("nan")}, r"dataset.std must be a positive number"),
        ({"std": "wide"}, r"dataset.std must be a positive number"),
        ({"std": 0.5}, r"dataset.std must be below 1/6 of the distance between modes"),
        ({"layout": "grid", "n_modes": 24}, r"dataset.n_modes must be a square number"),
        ({"n_modes": 0}, r"dataset.n_modes must be a positive integer"),
        ({"n_train": 0}, r"dataset.n_train must be a positive integer"),
        ({"image_size": 28}, r"image_size=1 and dataset.channels=2"),
        ({"channels": 1}, r"image_size=1 and dataset.channels=2"),
        ({"radius": 0}, r"dataset.radius must be a positive number"),
        ({"scale": -1.0}, r"dataset.scale must be a positive number or null"),
    ],
)
def test_bad_settings_raise_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GaussianMixtureDataModule(**kwargs)


def test_pacgan_layouts_served_in_their_own_units():
    """PacGAN's ring (radius 1, std 0.01) is the default ring's shape at half the size; scale=1
    serves points unscaled (for its linear-output G); the scores and the plot are unchanged."""
    ring = mixture(radius=1.0, std=0.01, scale=1.0)
    default = mixture()
    assert torch.allclose(ring.centres * 2, default.centres)
    assert torch.equal(ring.unscale(ring.images), ring.images.view(-1, 2).double())
    assert ring.images.abs().max() < 1.05 and ring.extent == pytest.approx(default.extent / 2)
    points, _ = ring.draw(40_000, torch.Generator().manual_seed(123))
    s = mixture_scores(points, ring.centres, ring.std)
    assert s["modes_covered"] == 8 and s["high_quality"] == pytest.approx(WITHIN_3_STD, abs=0.002)
    grid = mixture("grid", scale=1.0)
    assert float(grid.images.abs().max()) > 4  # {-4..4}^2 as PacGAN feeds them
    settings = MixtureEvaluator({"n_samples": 100}, ring).settings
    assert settings["radius"] == 1.0 and settings["scale"] == 1.0


def test_bad_layout_from_the_command_line_is_one_config_error(tmp_path):
    cfg = compose_train(tmp_path / "r", ["dataset=gaussian_mixture", "dataset.layout=hex"])
    with pytest.raises(ConfigError, match="Fix it in conf/dataset/gaussian_mixture.yaml"):
        build(cfg.dataset)


@pytest.mark.parametrize("layout", ["ring", "grid"])
def test_real_samples_cover_every_mode_with_the_closed_form_hq_rate(layout):
    dm = mixture(layout)
    points, _ = dm.draw(40_000, torch.Generator().manual_seed(123))
    s = mixture_scores(points, dm.centres, dm.std)
    assert s["modes_covered"] == dm.n_modes
    # Binomial standard error at n=40k is 0.0005: 4 of them.
    assert s["high_quality"] == pytest.approx(WITHIN_3_STD, abs=0.002)
    assert 0 <= s["class_kl"] < 0.005


def test_collapsed_and_far_away_points():
    dm = mixture("grid")
    one_mode = dm.centres[7] + dm.std * torch.randn(
        500, 2, generator=torch.Generator().manual_seed(0)
    )
    s = mixture_scores(one_mode, dm.centres, dm.std)
    assert s["modes_covered"] == 1
    assert s["class_kl"] == pytest.approx(math.log(25))
    far = torch.full((100, 2), 10.0, dtype=torch.float64)
    s = mixture_scores(far, dm.centres, dm.std)
    assert s["modes_covered"] == 0 and s["high_quality"] == 0.0 and math.isnan(s["class_kl"])
    # Half exactly on two modes, half half-way between modes: 50 % high quality, 2 modes.
    between = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(50, 2)
    mixed = torch.cat([dm.centres[:2].repeat(25, 1), between])
    s = mixture_scores(mixed, dm.centres, dm.std)
    assert s == {"modes_covered": 2, "high_quality": 0.5, "class_kl": pytest.approx(math.log(12.5))}


def test_the_3_std_boundary_counts_as_high_quality():
    centres = torch.zeros(1, 2, dtype=torch.float64)
    pts = torch.tensor([[0.3, 0.0], [0.0, -0.3], [0.3001, 0.0]], dtype=torch.float64)
    assert mixture_scores(pts, centres, 0.1)["high_quality"] == pytest.approx(2 / 3)


def test_evaluator_scores_model_output_in_original_units_deterministically():
    dm = mixture("ring")
    ev = build_evaluator(EVAL, dm, "unused-cache")  # by the data's scored_as, no isinstance
    assert isinstance(ev, MixtureEvaluator) and not ev.reference_cached
    assert build_evaluator(OmegaConf.create({"backbone": "none"}), dm, "unused") is None
    gen = PointGenerator(dm)
    s1, s2 = ev.score_module(gen), ev.score_module(gen)
    assert s1 == s2
    assert set(s1) == {"fid", "modes_covered", "high_quality", "class_kl"}
    assert s1["modes_covered"] == 8 and s1["high_quality"] > 0.97 and 0 <= s1["fid"] < 0.05
    settings = ev.settings
    assert settings["backbone"] == "mixture" and settings["n_fake"] == 2000
    assert settings["dataset"] == "gaussian_ring" and settings["std"] == 0.02
    # score_images takes generator output (model units); a shifted ring is far from every mode.
    shifted = dm.to_images(dm.unscale(dm.images) + 1.0)
    s = ev.score_images(shifted)
    assert s["high_quality"] < 0.01 and s["fid"] > 1.5
    with pytest.raises(DivergedError, match="diverged"):
        ev.score_images(torch.full((4, 2, 1, 1), float("nan")))


def test_training_writes_mode_scores_and_scatter_plots(tmp_path, capsys):
    run = tmp_path / "run"
    overrides = [
        "dataset=gaussian_mixture",
        "dataset.layout=grid",
        "dataset.n_eval=500",
        "eval=domain",
        "eval.n_samples=500",
        "eval.every_n_steps=2",
    ]
    train(compose_train(run, overrides))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 3
    final = metrics["final"]
    assert {"fid", "modes_covered", "high_quality", "class_kl"} <= set(final)
    assert 0 <= final["modes_covered"] <= 25 and 0.0 <= final["high_quality"] <= 1.0
    assert metrics["eval"]["backbone"] == "mixture" and metrics["eval"]["n_modes"] == 25
    assert metrics["config"]["dataset_resolved"] == "gaussian_grid"
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_000002.png",
        "step_000003.png",
    ]
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert "val/samples" in acc.Tags()["images"]
    assert [e.step for e in acc.Scalars("val/high_quality")] == [2, 3]

    # ganarena-eval scores the checkpoint with the same evaluator and the same numbers.
    ckpt = run / "checkpoints" / "last.ckpt"
    verdict = capsys.readouterr().out  # the run's one-line verdict, then eval's JSON alone
    assert verdict.startswith("ganarena-train: ") and "/25 modes" in verdict
    assert metrics["verdict"] in verdict and metrics["health"] in (
        "collapsed",
        "partial",
        "healthy",
    )
    evaluate(compose_eval([f"ckpt_path={ckpt}", "eval.n_samples=500"]))
    result = json.loads(capsys.readouterr().out)
    assert result["eval"]["backbone"] == "mixture"
    assert result["scores"] == pytest.approx(final, nan_ok=True)


def test_image_backbones_refuse_points():
    with pytest.raises(ConfigError, match="no image backbone.*ckpt_path"):
        build_backbone(EVAL, mixture(), "unused-cache")


def test_conditional_generators_get_class_accuracy():
    dm = mixture("ring")
    ev = MixtureEvaluator(EVAL, dm)

    class Conditional:
        num_classes = 8

        def sample(self, n, seed, labels=None, start=0):
            # Class i % 8 as asked, except every 4th point (classes 0 and 4), sent to the next mode.
            want = torch.arange(n) % 8
            got = (want + (torch.arange(n) % 4 == 0).long()) % 8
            return dm.to_images(dm.centres[got]), want

    s = ev.score_module(Conditional())
    assert s["class_acc"] == pytest.approx(0.75) and s["modes_covered"] == 6
