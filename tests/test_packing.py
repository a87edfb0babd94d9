"""PacGAN packing (ganarena.gan.packing, d_input=[pack<m>]): the transform, the discriminator built for
m x the channels, m = 1 exactly today's training, m = 2 on a 2-D and an image model."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from ganarena.errors import ConfigError
from ganarena.gan.packing import Pack, packed_discriminator
from ganarena.train import train
from tests.conftest import compose_train


def test_pack_stacks_consecutive_samples_along_channels():
    x = torch.arange(5 * 2 * 2 * 2, dtype=torch.float32).reshape(5, 2, 2, 2)
    out = Pack(2)(x, real=True)
    assert out.shape == (2, 4, 2, 2)  # the fifth image is dropped: packs are whole
    assert torch.equal(out[1, :2], x[2]) and torch.equal(out[1, 2:], x[3])
    assert Pack(1)(x, real=False) is x and not Pack(2).keeps_batch
    with pytest.raises(ConfigError, match="too few for one pack"):
        Pack(4)(x[:3], real=True)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="pack size m must be an integer >= 1"):
            Pack(bad)


def test_the_discriminator_is_built_for_m_times_the_channels():
    node = OmegaConf.create(
        {"_target_": "ganarena.models.MLPDiscriminator", "hidden": [8], "image_size": 4,
         "channels": 3, "norm": "none"}
    )  # fmt: skip
    d = packed_discriminator(node, 4)
    assert d(torch.zeros(5, 12, 4, 4)).shape == (5,)
    assert d.net[1].in_features == 12 * 16  # 4 x 3 channels of 4 x 4
    bare = OmegaConf.create({"_target_": "torch.nn.Identity"})
    with pytest.raises(ConfigError, match="no integer `channels` argument"):
        packed_discriminator(bare, 2)


def _weights(run) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_pack_of_one_is_exactly_the_unpacked_run(tmp_path):
    """m = 1 builds the same D from the same RNG and feeds it the same batches: identical weights."""
    plain = compose_train(tmp_path / "plain")
    packed = compose_train(tmp_path / "packed", ["d_input=[pack2]", "d_input.pack2.m=1"])
    for cfg in (plain, packed):
        train(cfg)
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "packed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (
        json.loads((tmp_path / "packed" / "metrics.json").read_text())["config"]["d_input"]
        == "pack2"
    )


@pytest.mark.parametrize(
    ("overrides", "first", "shape"),
    [
        # PacGAN's 2-D nets: D's first maxout layer reads 2 points x 2 coordinates
        (["model=pacgan_2d", "dataset=gaussian_mixture", "dataset.n_train=2000",
          "dataset.batch_size=40", "dataset.scale=1.0"],
         "discriminator.net.0.linear.weight", (1000, 4)),
        # an image model: DCGAN's first conv reads 2 digits
        (["model=dcgan"], "discriminator.net.0.weight", (32, 2, 4, 4)),
    ],
)  # fmt: skip
def test_pack_of_two_trains_a_2d_and_an_image_model(tmp_path, overrides, first, shape):
    cfg = compose_train(tmp_path / "run", [*overrides, "d_input=[pack2]", "trainer.max_steps=2"])
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["conditional"] is False
    assert tuple(_weights(tmp_path / "run")[first].shape) == shape


def test_packing_is_refused_with_a_conditional_discriminator(tmp_path):
    cfg = compose_train(
        tmp_path / "run", ["model=dcgan", "d_input=[pack2]", "model.conditional=true"]
    )
    with pytest.raises(ConfigError, match="class-conditional"):
        train(cfg)
