"""Shapes, layer sizes, init, errors and Hydra instantiation of the model zoo."""

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils import parametrize

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
    model_cfg.d_norm = d_norm  # what ganarena-train resolves model.d_norm=auto to
    root = OmegaConf.create(
        {"model": model_cfg, "dataset": {"image_size": size, "channels": channels}}
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


# -- conditional models, projection head, spectral norm -----------------------------------------
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
UNCONDITIONAL_KEYS = {
    "mlp": (
        ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight", "net.4.bias"],
        ["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias", "net.5.weight", "net.5.bias"],
    ),
    "dcgan": (
        ["net.0.weight"]
        + [f"net.1.{k}" for k in BN_KEYS]
        + ["net.3.weight"]
        + [f"net.4.{k}" for k in BN_KEYS]
        + ["net.6.weight", "net.6.bias"],
        ["net.0.weight", "net.0.bias", "net.2.weight"]
        + [f"net.3.{k}" for k in BN_KEYS]
        + ["net.5.weight", "net.5.bias"],
    ),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_unconditional_state_dict_keys_unchanged(name):
    # Checkpoints written before conditioning existed must still load.
    g_cls, d_cls = PAIRS[name]
    g_keys, d_keys = UNCONDITIONAL_KEYS[name]
    assert list(g_cls().state_dict()) == g_keys
    assert list(d_cls().state_dict()) == d_keys
    assert g_cls().num_classes is None and d_cls().num_classes is None


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3)])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_conditional_shapes_and_label_effect(name, size, channels):
    torch.manual_seed(0)
    g_cls, d_cls = PAIRS[name]
    g = g_cls(image_size=size, channels=channels, num_classes=10)
    d = d_cls(image_size=size, channels=channels, num_classes=10)
    assert g.num_classes == d.num_classes == 10
    z, y = torch.randn(4, 100), torch.tensor([0, 3, 9, 3])
    x = g(z, y)
    assert x.shape == (4, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x, y).shape == (4,)
    g.eval()
    same_z = z[:1].expand(2, -1)
    a, b = g(same_z, torch.tensor([1, 2]))
    assert not torch.allclose(a, b)  # the label changes the image
    d.eval()
    x1 = x[:1].expand(2, -1, -1, -1)
    l1, l2 = d(x1, torch.tensor([1, 2]))
    assert l1 != l2  # and the logit


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_conditional_gradients_reach_embeddings(name):
    torch.manual_seed(0)
    g_cls, d_cls = PAIRS[name]
    g, d = g_cls(num_classes=10), d_cls(num_classes=10)
    y = torch.arange(4)
    d(g(torch.randn(4, 100), y), y).mean().backward()
    for net in (g, d):
        for pname, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    emb = [m for m in g.modules() if isinstance(m, nn.Embedding)]
    assert emb and all(m.weight.grad[:4].abs().sum() > 0 for m in emb)
    assert all(m.weight.grad[4:].abs().sum() == 0 for m in emb)  # unused classes untouched


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_labels_required_and_checked(name):
    g_cls, d_cls = PAIRS[name]
    g, d = g_cls(num_classes=10), d_cls(num_classes=10)
    z, x = torch.randn(2, 100), torch.randn(2, 1, 28, 28)
    with pytest.raises(ValueError, match="conditional"):
        g(z)
    with pytest.raises(ValueError, match="conditional"):
        d(x)
    with pytest.raises(ValueError, match="int64"):
        g(z, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        d(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        g(z, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="unconditional"):
        g_cls()(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unconditional"):
        d_cls()(x, torch.tensor([0, 1]))


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True, "10"])
def test_bad_num_classes(bad):
    for cls in (MLPGenerator, MLPDiscriminator, DCGANGenerator, DCGANDiscriminator):
        with pytest.raises(ConfigError, match="num_classes"):
            cls(num_classes=bad)


def test_mlp_conditional_concatenates_embedding():
    g = MLPGenerator(num_classes=10)
    assert g.embed.weight.shape == (10, 10)  # embed_dim defaults to num_classes
    assert linear_shapes(g)[0] == (110, 256)
    d = MLPDiscriminator(num_classes=10, embed_dim=16)
    assert d.embed.weight.shape == (10, 16)
    assert linear_shapes(d)[0] == (784 + 16, 512)
    # D's first layer sees [flatten(x), embed(y)]: W [x; e] + b = W_x x + W_e e + b.
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([2, 5, 7])
    w, b = d.net[1].weight, d.net[1].bias
    pre = x.flatten(1) @ w[:, :784].T + d.embed.weight[y] @ w[:, 784:].T + b
    assert torch.allclose(d(x, y), d.net[2:](pre).view(3), atol=1e-5)


def test_dcgan_generator_concatenates_embedding():
    g = DCGANGenerator(image_size=32, num_classes=10, embed_dim=16)
    assert g.embed.weight.shape == (10, 16)
    assert g.net[0].in_channels == 100 + 16
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 3  # as unconditional
    g.eval()
    z, y = torch.randn(2, 100), torch.tensor([4, 7])
    h = torch.cat([z, g.embed(y)], dim=1)[:, :, None, None]
    assert torch.equal(g(z, y), g.net(h))
    assert DCGANGenerator(num_classes=10).embed.weight.shape == (10, 10)  # default embed_dim


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_projection_head_equals_inner_product(norm):
    torch.manual_seed(0)
    d = DCGANDiscriminator(image_size=28, num_classes=10, norm=norm).eval()
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 9, 1])
    h = d.features(x)
    assert h.shape == (5, 128, 7, 7)
    psi = d.net[-1](h).view(5)
    pooled = h.sum(dim=(2, 3))
    expected = psi + torch.stack([torch.dot(d.embed.weight[c], pooled[i]) for i, c in enumerate(y)])
    assert torch.allclose(d(x, y), expected, atol=1e-5)
    # psi alone is the unconditional discriminator's computation on the same weights
    with torch.no_grad():
        d.embed.weight.zero_()
    assert torch.allclose(d(x, y), psi, atol=1e-6)


def test_minibatch_stddev_map_feeds_the_final_conv():
    """model.mbstd=G: D's final conv sees the penultimate map plus ProGAN's minibatch-stddev map
    (the stddev over groups of G samples, averaged); the projection still pools the map without it."""
    torch.manual_seed(0)
    d = DCGANDiscriminator(image_size=28, num_classes=10, mbstd=4).eval()
    x, y = torch.randn(8, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5, 6, 9])
    h = d.features(x)
    assert h.shape == (8, 128, 7, 7) and d.net[-1].in_channels == 129
    groups = h.reshape(4, 2, 128, 7, 7)  # NVIDIA's strided groups: sample i in group i % 2
    std = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one per group
    stat = std.repeat(4)[:, None, None, None].expand(8, 1, 7, 7)
    psi = d.net[-1](torch.cat([h, stat], dim=1)).view(8)
    pooled = h.sum(dim=(2, 3))
    assert torch.allclose(d(x, y), psi + (d.embed(y) * pooled).sum(dim=1), atol=1e-5)
    # identical samples have no spread: the extra map is ~0 whatever the batch
    same = x[:1].expand(8, -1, -1, -1)
    assert d.mbstd(d.features(same))[:, -1].abs().max() < 1e-3
    with pytest.raises(ConfigError, match="mbstd"):
        DCGANDiscriminator(mbstd=-1)


def top_singular_value(w: torch.Tensor, iters: int = 200) -> float:
    """Largest singular value by float64 power iteration (torch.linalg's first call loads its
    solver library, and a dense SVD is slow on shared CPUs)."""
    w = w.double()
    v = torch.randn(w.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for _ in range(iters):
        u = nn.functional.normalize(w @ v, dim=0)
        v = nn.functional.normalize(w.T @ u, dim=0)
    return float(u @ w @ v)


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("conditional", [False, True])
def test_spectral_norm_unit_top_singular_value(name, conditional):
    torch.manual_seed(0)
    _, d_cls = PAIRS[name]
    n_classes = 10 if conditional else None
    small = {"width": 16} if name == "dcgan" else {"hidden": [64, 32]}  # same code, less work
    d = d_cls(spectral_norm=True, norm="none", num_classes=n_classes, **small)
    plain = d_cls(norm="none", num_classes=n_classes, **small)
    layers = (nn.Conv2d, nn.Linear) + ((nn.Embedding,) if name == "dcgan" else ())
    expected = sum(isinstance(m, layers) for m in plain.modules())
    normed = [m for m in d.modules() if parametrize.is_parametrized(m, "weight")]
    assert len(normed) == expected  # every conv/linear (+ the projection embedding)
    x = torch.randn(4, 1, 28, 28)
    y = torch.arange(4) if conditional else None
    for _ in range(20):  # one power iteration per training forward
        d(x) if y is None else d(x, y)
    for m in normed:
        sigma = top_singular_value(m.weight.detach().flatten(1))
        assert sigma == pytest.approx(1.0, abs=0.02)
    # R1/GP need double backward through the parametrization
    xr = x.clone().requires_grad_(True)
    out = d(xr) if y is None else d(xr, y)
    (grad,) = torch.autograd.grad(out.sum(), xr, create_graph=True)
    grad.pow(2).sum().backward()


def test_spectral_norm_off_keeps_plain_weights():
    for cls in (MLPDiscriminator, DCGANDiscriminator):
        assert not any(parametrize.is_parametrized(m) for m in cls().modules())


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_hydra_instantiate_conditional_spectral(name):
    model_cfg = OmegaConf.load(CONF / f"{name}.yaml")
    # dcgan: auto (conditional when the data has labels, resolved by ganarena-train); mlp: off
    assert model_cfg.conditional == ("auto" if name == "dcgan" else False)
    assert model_cfg.num_classes is None
    assert model_cfg.spectral_norm is False
    model_cfg.d_norm = "none"
    root = OmegaConf.create({"model": model_cfg, "dataset": {"image_size": 28, "channels": 1}})
    root.model.num_classes = 10  # what ganarena-train sets from the datamodule when conditional
    root.model.spectral_norm = True
    g = hydra.utils.instantiate(root.model.generator)
    d = hydra.utils.instantiate(root.model.discriminator)
    assert g.num_classes == d.num_classes == 10
    assert any(parametrize.is_parametrized(m) for m in d.modules())
    y = torch.tensor([3, 4])
    assert d(g(torch.randn(2, 100), y), y).shape == (2,)
