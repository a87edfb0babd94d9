"""model=r3gan: R3GAN's residual networks (Huang et al. 2024) - shapes, no normalisation, the
fix-up init, [1, 2, 1] resampling, and R3GAN's recipe trained end to end on them."""

from __future__ import annotations

import json
import math

import hydra
import pytest
import torch
from omegaconf import OmegaConf, open_dict
from torch import nn

from ganarena.errors import ConfigError
from ganarena.models import R3GANDiscriminator, R3GANGenerator
from ganarena.models.r3gan import ACTIVATION_GAIN, Resample, ResidualBlock, lowpass_kernel
from tests.conftest import compose_train

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _nets(size: int, classes: int | None) -> tuple[R3GANGenerator, R3GANDiscriminator]:
    torch.manual_seed(0)
    return (
        R3GANGenerator(image_size=size, num_classes=classes),
        R3GANDiscriminator(image_size=size, num_classes=classes),
    )


@pytest.mark.parametrize("classes", [None, 10])
@pytest.mark.parametrize("size", [28, 32])
def test_shapes_range_and_attributes(size, classes):
    g, d = _nets(size, classes)
    assert (g.latent_dim, g.num_classes) == (64, classes)
    assert g.s0 == d.s0 == {28: 7, 32: 4}[size]
    y = None if classes is None else torch.tensor([0, 3, 9])
    z = torch.randn(3, g.latent_dim)
    x = g(z, y)
    assert x.shape == (3, 1, size, size)
    raw = g(100 * z, y)  # training mode: R3GAN's linear output, not squashed
    sample = g.eval()(100 * z, y)  # the task samples in eval mode: clamped to [-1, 1]
    assert raw.abs().max() > 1
    torch.testing.assert_close(sample, raw.clamp(-1, 1))
    logits = d(x, y)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="labels"):  # conditional needs y, unconditional refuses it
        d(x, None if classes else torch.tensor([0, 1, 2]))


def test_no_normalisation_layers_in_either_network():
    for net in _nets(28, 10):
        assert not [m for m in net.modules() if isinstance(m, NORMS)]
    assert R3GANDiscriminator.ignores_norm is True  # what the config checks read


def test_fixup_init_every_block_starts_as_the_identity():
    g, d = _nets(28, None)
    for net in (g, d):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 3  # one per stage at 28 px: 7, 14, 28
        scale = ACTIVATION_GAIN * len(blocks) ** (-1 / 4)  # L^(-1/(2m-2)), m = 3 layers
        for block in blocks:
            assert torch.count_nonzero(block.conv3.weight) == 0
            x = torch.randn(2, block.conv1.in_channels, 7, 7)
            torch.testing.assert_close(block(x), x, rtol=0, atol=0)
            for conv in (block.conv1, block.conv2):
                fan_in = conv.weight[0].numel()
                assert conv.weight.std().item() == pytest.approx(
                    scale / math.sqrt(fan_in), rel=0.15
                )
    # every block the identity: at init G is linear in z (basis * linear map, linear resampling)
    z = torch.randn(2, g.latent_dim)
    pre = lambda z: g.to_image(g.stages(g.basis * g.basis_linear(z).view(2, -1, 1, 1)))  # noqa: E731
    torch.testing.assert_close(pre(2 * z), 2 * pre(z), rtol=1e-4, atol=1e-5)


def test_resampling_a_constant_image_stays_constant_inside_its_border():
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    torch.testing.assert_close(lowpass_kernel(), torch.outer(taps, taps) / 64)
    x = torch.full((2, 3, 8, 8), 0.7)
    up, down = Resample(up=True)(x), Resample(up=False)(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], torch.full_like(up[..., 1:-1, 1:-1], 0.7))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7))
    # the border: zero padding, as R3GAN's (and upfirdn2d's): 3/4 (up) and 7/8 (down) per side
    assert up[0, 0, 0, 5].item() == pytest.approx(0.7 * 3 / 4)
    assert down[0, 0, 0, 2].item() == pytest.approx(0.7 * 7 / 8)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="cardinality"):
        R3GANGenerator(widths=24, cardinality=5)
    with pytest.raises(ConfigError, match="at least 3"):
        R3GANDiscriminator(image_size=28, widths=[64, 32])
    with pytest.raises(ConfigError, match="spectral"):
        R3GANDiscriminator(spectral_norm=True)
    # a longer list is trimmed from its start: the full-resolution stage is the last entry
    g = R3GANGenerator(image_size=28, widths=[64, 48, 32, 16], cardinality=[8, 6, 4, 2])
    assert g.to_image.in_channels == 16 and g.basis.shape[0] == 48


@pytest.mark.parametrize(("dataset", "size", "channels"), [("mnist", 28, 1), ("cifar10", 32, 3)])
def test_the_config_composes_and_builds_both_networks(tmp_path, dataset, size, channels):
    from ganarena.run.config import resolve_auto, validate_train

    cfg = compose_train(tmp_path, ["model=r3gan", "experiment=r3gan", f"dataset={dataset}"])
    validate_train(cfg)  # R1 + R2 with this D: no batch norm to refuse
    resolve_auto(cfg)
    assert (cfg.model.name, cfg.model.d_norm) == ("r3gan", "none")
    with open_dict(cfg):
        cfg.model.num_classes = 10  # what ganarena-train fills in for conditional=auto
    g = hydra.utils.instantiate(cfg.model.generator)
    d = hydra.utils.instantiate(cfg.model.discriminator)
    y = torch.tensor([1, 2])
    x = g(torch.randn(2, cfg.model.latent_dim), y)
    assert x.shape == (2, channels, size, size) and d(x, y).shape == (2,)


def test_r3gan_recipe_trains_end_to_end(tmp_path):
    from ganarena.train import train

    run = tmp_path / "run"
    train(compose_train(run, ["model=r3gan", "experiment=r3gan", "trainer.max_steps=2"]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["steps"] == 2
    assert metrics["config"]["model"] == "r3gan"


def test_the_stacked_mnist_r3gan_row_is_the_r3gan_preset_on_the_tables_data(tmp_path):
    """scripts/reproduce_mode_collapse.py's R3GAN row spells out experiment=r3gan's overrides (one
    experiment= per run): composed, it trains what the preset trains, on the table's data."""
    import sys

    from hydra import compose, initialize_config_module

    from ganarena.run.config import validate_train
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import reproduce_mode_collapse as repro
    finally:
        sys.path.remove(str(REPO / "scripts"))
    args = repro.job_args("small_d", "quarter", "r3gan", 1, 10, tmp_path / "run")
    args = [a for a in args if not a.startswith(("dataset.", "hydra."))]  # the MNIST files' paths
    out = [f"paths.output_dir={tmp_path}"]
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        row = compose("train", overrides=[*args, *out])
        preset = compose(
            "train", overrides=["experiment=r3gan", "model=r3gan", "dataset=stacked_mnist", *out]
        )
    validate_train(row)
    for key in ("loss", "regularizer", "optim", "task.schedule", "model"):
        a, b = (
            OmegaConf.to_container(OmegaConf.select(c, key), resolve=True) for c in (row, preset)
        )
        assert a == b, key
    assert (row.dataset.name, row.dataset.mode, row.dataset.batch_size) == (
        "stacked_mnist",
        "fresh",
        128,
    )
