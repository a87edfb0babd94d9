"""Conditional GANs, augmentation and R1 wired into training; class accuracy and per-class FID."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.errors import ConfigError
from ganarena.tasks import GenerativeTask, load_task
from ganarena.train import train

from .conftest import MNIST_IMAGES, MNIST_LABELS, compose_train, needs_mnist

pytestmark = pytest.mark.filterwarnings(
    "ignore:Scoring only:UserWarning", "ignore:eval.kid_subset_size:UserWarning"
)


def scalars(run_dir, tag: str) -> list[float]:
    values = []
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        values += [e.value for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []
    return values


# -- training --------------------------------------------------------------------------------------
def test_conditional_mlp_trains_and_grid_has_one_row_per_class(tmp_path):
    out = tmp_path / "run"
    cfg = compose_train(out, ["model.conditional=true", "callbacks.samples.nrow=4"])
    train(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["conditional"] is True
    module, saved = load_task(out / "checkpoints" / "last.ckpt")
    assert saved.model.num_classes == 10 and module.num_classes == 10
    # 10 classes x nrow 4: the fixed grid holds 40 samples, row r asks for class r.
    assert module.fixed_y.tolist() == [r for r in range(10) for _ in range(4)]
    (png,) = sorted((out / "samples").glob("step_*.png"))[-1:]
    w, h = Image.open(png).size
    assert (w, h) == (4 * 30 + 2, 10 * 30 + 2)  # make_grid: 28 px + 2 px padding per cell
    # Labels change the samples: the same latents asked for two classes differ.
    z = torch.randn(5, module.latent_dim)
    a = module.decode(z, torch.zeros(5, dtype=torch.long))
    b = module.decode(z, torch.ones(5, dtype=torch.long))
    assert not torch.allclose(a, b)
    # sample(): class-balanced by default, refuses labels for an unconditional model.
    x, x_labels = module.sample(12, seed=0)
    labels = torch.arange(12) % 10
    y, _ = module.sample(12, seed=0, labels=labels)
    assert x.shape == (12, 1, 28, 28) and torch.equal(x, y) and torch.equal(x_labels, labels)
    # items of the stream depend on their index only: the second half alone is the same
    tail, tail_labels = module.sample(7, seed=0, start=5)
    assert torch.allclose(tail, x[5:], atol=1e-6) and torch.equal(tail_labels, labels[5:])


@pytest.mark.parametrize("loss", ["minimax", "lsgan", "wgan", "wgan_gp", "hinge"])
def test_conditional_training_works_with_every_loss(tmp_path, loss):
    out = tmp_path / "run"
    overrides = ["model.conditional=true", f"loss={loss}", "trainer.max_steps=1", "logger=none"]
    train(compose_train(out, overrides))
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"


def test_unconditional_module_refuses_labels(tmp_path):
    out = tmp_path / "run"
    train(compose_train(out))
    module, _ = load_task(out / "checkpoints" / "last.ckpt")
    assert module.num_classes is None and not hasattr(module, "fixed_y")
    with pytest.raises(ConfigError, match="unconditional"):
        module.sample(2, seed=0, labels=torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.conditional=maybe"], "model.conditional must be true or false"),
        (["model.num_classes=10"], "model.conditional=false"),
        (["model.conditional=true", "model.num_classes=7"], "does not match the 10 classes"),
        (["regularizer=[r1]", "regularizer.r1.gamma=-1"], "regularizer.r1.gamma must be >= 0"),
        (["regularizer=[r1]", "regularizer.r1.interval=0"], "regularizer.r1.interval must be > 0"),
        (["model=dcgan", "model.d_norm=batch", "regularizer=[r1]"], "invalid with batch norm"),
        (["augment=diffaugment", "augment.strength=-1"], "augment.strength"),
    ],
)
def test_bad_conditional_and_stabiliser_settings(tmp_path, overrides, message):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        train(compose_train(out, overrides))
    assert not (out / "checkpoints").exists()


def test_conditional_on_unlabelled_data_is_refused(tmp_path):
    from .test_data import write_idx

    images = (np.random.default_rng(0).random((64, 28, 28)) * 255).astype(np.uint8)
    path = write_idx(tmp_path / "images", images)
    overrides = ["dataset=idx", f"dataset.images={path}", "model.conditional=true"]
    with pytest.raises(ConfigError, match="needs class labels"):
        train(compose_train(tmp_path / "run", overrides))


class Spy:
    """An augmentation that records which tensors it saw (and adds nothing)."""

    def __init__(self, applies_to: str):
        self.applies_to = applies_to
        self.calls: list[bool] = []  # requires_grad of each input: fakes in the G step have it

    def __call__(self, x):
        self.calls.append(x.requires_grad)
        return x


@pytest.mark.parametrize(("applies_to", "per_step"), [("real", 1), ("both", 3)])
def test_augmentation_is_applied_where_it_belongs(tmp_path, monkeypatch, applies_to, per_step):
    spy = Spy(applies_to)
    monkeypatch.setattr("ganarena.gan.augment.build_augment", lambda cfg: spy)
    train(compose_train(tmp_path / "run", ["augment=classic"]))
    # 3 generator steps, n_critic=1: reals once per D step; with "both" also the detached fakes
    # in the D step and the fakes in the G step (the only input carrying G's graph).
    assert len(spy.calls) == 3 * per_step
    assert sum(spy.calls) == (3 if applies_to == "both" else 0)


def test_diffaugment_and_r1_train_a_conditional_dcgan(tmp_path):
    out = tmp_path / "run"
    overrides = [
        "model=dcgan", "model.width=8", "model.conditional=true", "model.spectral_norm=true",
        "augment=diffaugment", "regularizer=[r1]", "regularizer.r1.interval=2", "model.d_norm=none",
        "trainer.max_steps=4",
    ]  # fmt: skip
    train(compose_train(out, overrides))
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
    # Lazy R1 runs at D steps 0 and 2 of 4; logs flush every step, so 2 values, both positive.
    r1 = scalars(out, "train/r1")
    assert len(r1) == 2 and all(v > 0 and np.isfinite(v) for v in r1)
    assert scalars(compose_and_train(tmp_path / "off", overrides[:-4]), "train/r1") == []


def compose_and_train(out, overrides):
    train(compose_train(out, overrides + ["trainer.max_steps=2"]))
    return out


# -- conditional evaluation ------------------------------------------------------------------------
class RealDigits(GenerativeTask):
    """A stand-in conditional task whose samples are real test digits of the requested class
    (item i of class c -> image i of that class in a pool), optionally with labels shifted by one."""

    def __init__(self, images, labels, shift: int = 0):
        super().__init__()
        self.num_classes = 10
        self.shift = shift
        self.pool = [images[labels == c] for c in range(10)]

    def sample(self, n, seed, labels=None, start=0):
        labels = self.default_labels(n, start) if labels is None else labels
        picks = [(int(c) + self.shift) % 10 for c in labels]
        images = [self.pool[c][(start + i) % len(self.pool[c])] for i, c in enumerate(picks)]
        return torch.stack(images), labels


@pytest.fixture(scope="module")
def labelled_mnist():
    from ganarena.data import IdxDataModule

    dm = IdxDataModule(
        images=str(MNIST_IMAGES), labels=str(MNIST_LABELS), name="idx", image_size=28,
        channels=1, batch_size=64,
    )  # fmt: skip
    dm.setup("fit")
    return dm


@pytest.mark.slow
@needs_mnist
def test_class_accuracy_and_per_class_fid(labelled_mnist, cache_dir):
    from ganarena.metrics import build_evaluator

    cfg = {"backbone": "domain", "n_samples": 2000, "per_class_fid": True}
    ev = build_evaluator(cfg, labelled_mnist, str(cache_dir), device="cpu")
    assert "-pc-" in ev.settings["reference_file"] and ev.settings["per_class_fid"]
    x, y = labelled_mnist.images, labelled_mnist.labels
    right = ev.score_module(RealDigits(x, y))
    wrong = ev.score_module(RealDigits(x, y, shift=1))
    # The classifier (99% held-out accuracy) recognises real digits of the asked-for class...
    assert right["class_acc"] >= 0.97
    # ...and none when every sample shows the next class (up to its ~1% errors).
    assert wrong["class_acc"] <= 0.03
    # Per-class FID: each class's fakes against that class's reals. Right classes: small;
    # shifted: every class compared with another digit, an order of magnitude larger.
    assert len(right["fid_per_class"]) == 10
    assert max(right["fid_per_class"]) * 5 < min(wrong["fid_per_class"])
    assert right["fid_class_mean"] == pytest.approx(np.mean(right["fid_per_class"]))
    # The pooled FID barely sees the label shift (the same digits overall, shifted labels).
    assert right["fid"] == pytest.approx(wrong["fid"], rel=0.5)
    # Coverage per class (real images of class c whose 5-NN ball holds a fake; 2,000 fakes
    # against 10,000 reals cover 0.41-0.93 of each class): a generator that draws 4s when asked
    # for 3s leaves the 3s bare (0.005).
    assert len(right["coverage_per_class"]) == 10 and right["coverage_class_min"] > 0.3
    no_threes = RealDigits(x, y)
    no_threes.pool[3] = no_threes.pool[4]
    missing = ev.score_module(no_threes)["coverage_per_class"]
    assert missing[3] < 0.1 and min(missing[:3] + missing[4:]) > 0.3, missing
    # Unconditional modules get neither score.
    plain = ev.score_images(x[:1000])
    assert "class_acc" not in plain and "fid_per_class" not in plain
