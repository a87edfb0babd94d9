"""Shapes, layer sizes, init, errors and Hydra instantiation of the model zoo."""

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import ganarena
from ganarena.errors import ConfigError
from ganarena.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    init_weights,
)

# conf/ lives in the package (the repo-root conf/ links to it); accept either layout.
CONF = next(
    p
    for p in (
        Path(ganarena.__file__).parent / "conf" / "model",
        Path(__file__).resolve().parents[1] / "conf" / "model",
    )
    if p.is_dir()
)
PAIRS = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
}


def linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_shapes_and_range(name, size, channels):
    torch.manual_seed(0)
    g_cls, d_cls = PAIRS[name]
    g = g_cls(image_size=size, channels=channels)
    d = d_cls(image_size=size, channels=channels)
    assert g.latent_dim == 100
    z = torch.randn(3, g.latent_dim)
    x = g(z)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1.0 and x.max() <= 1.0
    logits = d(x)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()
    g.eval()
    assert g(z[:1]).shape == (1, channels, size, size)  # batch of one in eval mode


def test_mlp_default_layer_sizes():
    assert linear_shapes(MLPGenerator()) == [(100, 256), (256, 512), (512, 784)]
    assert linear_shapes(MLPDiscriminator()) == [(784, 512), (512, 256), (256, 1)]
    g_acts = [type(m) for m in MLPGenerator().net]
    assert g_acts == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.Tanh]
    slopes = [m.negative_slope for m in MLPDiscriminator().modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2, 0.2]
    assert not any(isinstance(m, nn.Sigmoid) for m in MLPDiscriminator().modules())


def test_mlp_configurable_depth():
    g = MLPGenerator(latent_dim=8, hidden=[16, 32, 64], image_size=8, channels=3)
    assert linear_shapes(g) == [(8, 16), (16, 32), (32, 64), (64, 192)]
    d = MLPDiscriminator(hidden=[10], image_size=8, channels=3)
    assert linear_shapes(d) == [(192, 10), (10, 1)]


@pytest.mark.parametrize("norm", [None, "none", "batch", "layer"])
def test_mlp_accepts_and_ignores_norm(norm):
    d = MLPDiscriminator(norm=norm)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm)) for m in d.modules())


@pytest.mark.parametrize(
    ("size", "start", "widths"),
    [(28, 7, [128, 64]), (32, 4, [256, 128, 64]), (64, 4, [512, 256, 128, 64])],
)
def test_dcgan_layout(size, start, widths):
    g = DCGANGenerator(image_size=size, channels=3)
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs[0].kernel_size == (start, start)
    assert [c.out_channels for c in convs] == [*widths, 3]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs[1:])
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == len(widths)  # no BN on the output layer
    d = DCGANDiscriminator(image_size=size, channels=3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [*widths[::-1], 1]
    assert convs[-1].kernel_size == (start, start)
    assert isinstance(d.net[1], nn.LeakyReLU)  # first layer has no norm
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == len(widths) - 1


@pytest.mark.parametrize("size", [8, 16, 12])
def test_dcgan_small_and_uneven_sizes(size):
    g = DCGANGenerator(image_size=size, width=8)
    d = DCGANDiscriminator(image_size=size, width=8)
    x = g(torch.randn(2, 100))
    assert x.shape == (2, 1, size, size)
    assert d(x).shape == (2,)


@pytest.mark.parametrize(("norm", "norm_type"), [("layer", nn.GroupNorm), ("none", None)])
def test_dcgan_discriminator_norms(norm, norm_type):
    d = DCGANDiscriminator(image_size=32, norm=norm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    groups = [m for m in d.modules() if isinstance(m, nn.GroupNorm)]
    if norm_type is None:
        assert groups == []
    else:
        assert len(groups) == 2 and all(m.num_groups == 1 for m in groups)
    # layer norm is per sample: one sample's logit does not depend on the rest of the batch
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-5)


def test_init_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 256, 3), nn.BatchNorm2d(256), nn.Linear(4096, 64))
    init_weights(net)
    conv, bn, lin = net
    for w, mean in [(conv.weight, 0.0), (bn.weight, 1.0), (lin.weight, 0.0)]:
        assert abs(w.mean().item() - mean) < 0.005
        assert abs(w.std().item() - 0.02) < 0.002
    assert all(torch.count_nonzero(b) == 0 for b in (conv.bias, bn.bias, lin.bias))
    g = DCGANGenerator(image_size=32)
    assert abs(g.net[0].weight.std().item() - 0.02) < 0.002


@pytest.mark.parametrize("size", [0, 4, 7, 9, 27, -32])
def test_dcgan_bad_sizes(size):
    with pytest.raises(ConfigError, match="image_size"):
        DCGANGenerator(image_size=size)
    with pytest.raises(ConfigError, match="image_size"):
        DCGANDiscriminator(image_size=size)


@pytest.mark.parametrize(
    "build",
    [
        lambda: DCGANGenerator(width=0),
        lambda: DCGANDiscriminator(width=-1),
        lambda: DCGANGenerator(latent_dim=2.5),
        lambda: DCGANDiscriminator(norm="spectral"),
        lambda: MLPGenerator(latent_dim=0),
        lambda: MLPGenerator(hidden=[256, 0]),
        lambda: MLPGenerator(hidden=256),
        lambda: MLPDiscriminator(hidden=[True]),
        lambda: MLPDiscriminator(norm="instance"),
        lambda: MLPGenerator(channels="1"),
    ],
)
def test_bad_settings_raise_config_error(build):
    with pytest.raises(ConfigError):
        build()


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_gradients_flow_through_g_and_d(name):
    torch.manual_seed(0)
    g_cls, d_cls = PAIRS[name]
    g, d = g_cls(image_size=28), d_cls(image_size=28)
    d(g(torch.randn(4, 100))).mean().backward()
    for net in (g, d):
        for pname, p in net.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in g.parameters())


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_gradient_penalty_double_backward(name):
    # WGAN-GP differentiates D's input gradient; the "layer" critic must support that.
    _, d_cls = PAIRS[name]
    d = d_cls(image_size=28, norm="layer")
    x = torch.randn(4, 1, 28, 28, requires_grad=True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    # the output bias does not change the input gradient, so it alone gets no GP gradient
    last_bias = d.net[-1].bias
    assert all(p.grad is not None for p in d.parameters() if p is not last_bias)


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize(("size", "channels", "d_norm"), [(28, 1, "batch"), (32, 3, "layer")])
def test_hydra_instantiate_from_yaml(name, size, channels, d_norm):
    model_cfg = OmegaConf.load(CONF / f"{name}.yaml")
    root = OmegaConf.create(
        {
            "model": model_cfg,
            "dataset": {"image_size": size, "channels": channels},
            "loss": {"d_norm": d_norm},
        }
    )
    assert root.model.name == name
    g = hydra.utils.instantiate(root.model.generator)
    d = hydra.utils.instantiate(root.model.discriminator)
    assert (type(g), type(d)) == PAIRS[name]
    x = g(torch.randn(2, root.model.latent_dim))
    assert x.shape == (2, channels, size, size)
    assert d(x).shape == (2,)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    assert has_bn == (name == "dcgan" and d_norm == "batch")


def test_hydra_instantiate_literal_config():
    cfg = OmegaConf.create(
        {
            "_target_": "ganarena.models.MLPGenerator",
            "latent_dim": 100,
            "hidden": [256, 512],
            "image_size": 28,
            "channels": 1,
        }
    )
    g = hydra.utils.instantiate(cfg)
    assert linear_shapes(g) == [(100, 256), (256, 512), (512, 784)]
