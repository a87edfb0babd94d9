"""StyleGAN2 networks (models/stylegan2.py) and the path length penalty, against references."""

import inspect
import math
from pathlib import Path

import hydra
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

import ganarena
from ganarena.errors import ConfigError
from ganarena.gan.penalties import PathLengthPenalty
from ganarena.models import DCGANDiscriminator, StyleGAN2Discriminator, StyleGAN2Generator
from ganarena.models.stylegan2 import (
    MinibatchStdLayer,
    conv2d_resample,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)

# conf/ may sit at the repository root or in the package (one links to the other).
CONF = next(
    p
    for p in (
        Path(__file__).resolve().parents[1] / "conf" / "model",
        Path(ganarena.__file__).parent / "conf" / "model",
    )
    if (p / "stylegan2.yaml").is_file()
)

# Small networks: the algebra is the same at any width, and the suite stays fast on 2 cores.
SMALL = dict(channel_base=128, channel_max=16)
SMALL_G = dict(latent_dim=16, w_dim=16, **SMALL)


def small_g(**kw) -> StyleGAN2Generator:
    return StyleGAN2Generator(**{**SMALL_G, **kw})


def small_d(**kw) -> StyleGAN2Discriminator:
    return StyleGAN2Discriminator(**{**SMALL, **kw})


# ---------------------------------------------------------------------------------------------
# Modulated convolution


def reference_modconv(x, weight, styles, demodulate, up):
    """One sample at a time with plain conv ops and the sample's own modulated weight."""
    f = setup_filter().to(x.dtype)
    outs = []
    for xi, si in zip(x, styles, strict=True):
        w = weight * si.view(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xi = xi[None]
        if up == 1:
            outs.append(F.conv2d(xi, w, padding=weight.shape[-1] // 2))
        else:  # ungrouped conv2d_resample: the grouped path must regroup the weights correctly
            outs.append(conv2d_resample(xi, w, f, up=2, padding=1))
    return torch.cat(outs)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_sample_reference(demodulate, up, fused):
    torch.manual_seed(0)
    x = torch.randn(5, 6, 8, 8)
    weight = torch.randn(7, 6, 3, 3)
    styles = torch.randn(5, 6) + 1.0
    out = modulated_conv2d(
        x, weight, styles, up=up, padding=1, resample_filter=setup_filter(),
        demodulate=demodulate, fused=fused,
    )  # fmt: skip
    ref = reference_modconv(x, weight, styles, demodulate, up)
    assert out.shape == (5, 7, 8 * up, 8 * up)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_demodulation_gives_unit_output_variance():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 24, 24)
    weight = torch.randn(32, 64, 3, 3) * 3.0
    styles = torch.randn(8, 64) * 2.0 + 0.5
    out = modulated_conv2d(x, weight, styles, padding=0, demodulate=True, fused=True)
    assert abs(out.std().item() - 1.0) < 0.05
    raw = modulated_conv2d(x, weight, styles, padding=0, demodulate=False, fused=True)
    assert raw.std().item() > 10  # without demodulation the scale follows weights and styles


def test_resampling_alignment():
    """Up- and downsampling convs agree in the interior with 'resample, then plain conv'."""
    torch.manual_seed(0)
    f = setup_filter().double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    up = conv2d_resample(x, w, f, up=2, padding=1)
    ref_up = F.conv2d(upsample2d(x, f), w.flip([2, 3]), padding=1)  # up=2 is a true convolution
    torch.testing.assert_close(up[..., 1:-1, 1:-1], ref_up[..., 1:-1, 1:-1])
    down = conv2d_resample(x, w, f, down=2, padding=1)
    blurred = F.conv2d(
        F.pad(F.conv2d(x, w, padding=1), [1, 2, 1, 2]), f.expand(4, 1, 4, 4), groups=4
    )
    torch.testing.assert_close(down[..., 1:-1, 1:-1], blurred[..., ::2, ::2][..., 1:-1, 1:-1])
    # the low-pass filter has unit DC gain: a constant stays constant away from the border
    ones = upsample2d(torch.ones(1, 1, 6, 6, dtype=torch.float64), f)
    torch.testing.assert_close(ones[..., 1:-1, 1:-1], torch.ones(1, 1, 10, 10, dtype=torch.float64))


def test_fused_and_unfused_synthesis_agree():
    torch.manual_seed(0)
    g = small_g(image_size=32, channels=3)
    ws = g.mapping(torch.randn(3, 16))
    a = g.synthesis(ws, noise_mode="const", fused=True)
    b = g.synthesis(ws, noise_mode="const", fused=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Mapping: truncation, w_avg, style mixing


def test_truncation_psi_zero_gives_the_w_avg_image():
    torch.manual_seed(0)
    g = small_g().eval()
    g.mapping.w_avg.copy_(torch.randn(g.w_dim))
    with torch.no_grad():
        out = g(torch.randn(4, 16), psi=0.0, noise_mode="const")
        ref = g.synthesis(g.mapping.w_avg.expand(1, g.num_ws, g.w_dim), noise_mode="const")
    torch.testing.assert_close(out, ref.expand_as(out), atol=1e-5, rtol=1e-5)
    assert (out - out[:1]).abs().max().item() < 1e-5
    # psi between 0 and 1 moves w part of the way; a cutoff leaves the later layers alone
    z = torch.randn(2, 16)
    w = g.mapping(z)
    half = g.mapping(z, psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(half[:, :3], g.mapping.w_avg.lerp(w[:, :3], 0.5))
    torch.testing.assert_close(half[:, 3:], w[:, 3:])


def test_w_avg_update_is_a_lerp_with_beta_in_training_only():
    torch.manual_seed(0)
    g = small_g(w_avg_beta=0.9, style_mixing_prob=1.0)
    z = torch.randn(6, 16)
    g.eval()
    w = g.mapping(z)[:, 0]  # eval: no update
    assert torch.count_nonzero(g.mapping.w_avg) == 0
    before = torch.randn(g.w_dim)
    g.mapping.w_avg.copy_(before)
    g.eval()
    g(z, noise_mode="const")
    torch.testing.assert_close(g.mapping.w_avg, before)  # eval forward leaves w_avg alone
    g.train()
    g(z, noise_mode="const")  # the style-mixing mapping (second z) must not update it
    torch.testing.assert_close(g.mapping.w_avg, w.mean(0).lerp(before, 0.9))


def test_style_mixing_in_training_mode_only():
    torch.manual_seed(0)
    g = small_g(image_size=32, style_mixing_prob=1.0).train()
    z = torch.randn(4, 16)

    def run(prob, train=True):
        g.style_mixing_prob = prob
        g.train(train)
        torch.manual_seed(1)
        with torch.no_grad():
            return g(z, noise_mode="const")

    mixed, plain = run(1.0), run(0.0)
    assert (mixed - plain).abs().max().item() > 1e-3
    torch.testing.assert_close(run(0.0), plain)  # no mixing: deterministic given z
    # eval mode never mixes: equal to synthesis(mapping(z)), whatever the probability
    ev = run(1.0, train=False)
    with torch.no_grad():
        ref = g.synthesis(g.mapping(z), noise_mode="const")
    torch.testing.assert_close(ev, ref)
    # the mixed ws: a prefix from z, the rest (from the crossover layer on) from a second latent
    g.train()
    ws = g.mapping(z, update_w_avg=False)
    mixed_ws = g.mix_styles(ws, z)
    same = (mixed_ws - ws).abs().amax(dim=(0, 2)) == 0
    k = int(same.int().argmin())
    assert 1 <= k < g.num_ws and same[:k].all() and not same[k:].any()


def test_conditional_mapping_uses_the_label():
    torch.manual_seed(0)
    g = small_g(num_classes=3).eval()
    z = torch.randn(2, 16).repeat(3, 1)
    ws = g.mapping(z, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert ws.shape == (6, g.num_ws, g.w_dim)
    assert (ws[0] - ws[2]).abs().max() > 1e-4 and (ws[2] - ws[4]).abs().max() > 1e-4


def test_noise_modes():
    torch.manual_seed(0)
    g = small_g().eval()
    for m in g.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 16)
    with torch.no_grad():
        r1, r2 = g(z), g(z)
        c1, c2 = g(z, noise_mode="const"), g(z, noise_mode="const")
        n1 = g(z, noise_mode="none")
    assert (r1 - r2).abs().max() > 1e-4
    torch.testing.assert_close(c1, c2)
    assert (c1 - n1).abs().max() > 1e-4
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, noise_mode="fixed")


# ---------------------------------------------------------------------------------------------
# Shapes, the 28 <-> 32 crop/pad, forward + backward, errors


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32])
def test_shapes_forward_backward(size, channels, conditional):
    torch.manual_seed(0)
    nc = 10 if conditional else None
    g = small_g(image_size=size, channels=channels, num_classes=nc)
    d = small_d(image_size=size, channels=channels, num_classes=nc)
    assert g.num_ws == 8 and g.latent_dim == 16 and g.num_classes == nc
    z = torch.randn(6, 16)  # 6: not a multiple of the mbstd group size 4
    y = torch.randint(0, 10, (6,)) if conditional else None
    img = g(z) if y is None else g(z, y)
    assert img.shape == (6, channels, size, size)
    logits = d(img) if y is None else d(img, y)
    ref = DCGANDiscriminator(image_size=size, channels=channels, width=4, num_classes=nc)
    assert logits.shape == ref(img.detach(), y).shape == (6,)
    logits.mean().backward()
    for net in (g, d):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert g.mapping.layers[0].weight.grad.abs().sum() > 0  # through D, synthesis and mapping


def test_28_px_is_the_center_of_32_px():
    torch.manual_seed(0)
    g28, g32 = small_g(image_size=28).eval(), small_g(image_size=32).eval()
    g32.load_state_dict(g28.state_dict())  # same architecture: both run at 32 px
    z = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            g28(z, noise_mode="const"), g32(z, noise_mode="const")[:, :, 2:30, 2:30]
        )
    d28, d32 = small_d(image_size=28), small_d(image_size=32)
    d32.load_state_dict(d28.state_dict())
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(d28(x), d32(F.pad(x, [2, 2, 2, 2], value=-1.0)))


def test_default_sizes():
    g, d = StyleGAN2Generator(), StyleGAN2Discriminator()
    assert (g.latent_dim, g.w_dim, g.num_ws, g.image_size, g.resolution) == (128, 128, 8, 28, 32)
    assert [b.conv1.weight.shape[0] for b in g.synthesis.blocks] == [128, 128, 64, 32]
    assert len(g.mapping.layers) == 2 and g.style_mixing_prob == 0.0
    assert d.fromrgb.weight.shape[0] == 32 and d.conv.weight.shape[0] == 128
    out = d(g(torch.randn(2, 128)))
    assert out.shape == (2,)


@pytest.mark.parametrize("n", [1, 3, 4, 6, 8])
def test_minibatch_stddev_any_batch(n):
    torch.manual_seed(0)
    x = torch.randn(n, 8, 4, 4)
    out = MinibatchStdLayer(group_size=4, num_channels=1)(x)
    assert out.shape == (n, 9, 4, 4)
    torch.testing.assert_close(out[:, :8], x)
    if n == 4:  # one group of 4: the mean over channels/pixels of the per-position stddev
        expected = x.std(dim=0, unbiased=False).mean()
        torch.testing.assert_close(out[:, 8], expected.expand(4, 4, 4), atol=1e-6, rtol=1e-5)


def test_spectral_norm_discriminator():
    torch.manual_seed(0)
    d = small_d(spectral_norm=True, num_classes=3)
    assert any(hasattr(m, "parametrizations") for m in d.modules())
    out = d(torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 0]))
    out.mean().backward()
    assert out.shape == (4,) and torch.isfinite(out).all()


def _one_paragraph(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg and len(msg) > 40
    return msg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 3}, "at least 4"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": "32"}, "image_size"),
        ({"channels": 0}, "channels"),
        ({"channels": 2.5}, "channels"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"channel_base": 16, "image_size": 32}, "channel_base"),
    ],
)
@pytest.mark.parametrize("net", ["G", "D"])
def test_bad_arguments_raise_config_error(net, kwargs, match):
    cls = small_g if net == "G" else small_d
    with pytest.raises(ConfigError, match=match) as err:
        cls(**kwargs)
    _one_paragraph(err)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"style_mixing_prob": 1.5}, "style_mixing_prob"),
        ({"w_avg_beta": -0.1}, "w_avg_beta"),
        ({"mapping_layers": 0}, "mapping_layers"),
        ({"latent_dim": 0}, "latent_dim"),
    ],
)
def test_bad_generator_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        small_g(**kwargs)
    _one_paragraph(err)


def test_bad_discriminator_arguments():
    with pytest.raises(ConfigError, match="mbstd_num_channels") as err:
        small_d(mbstd_num_channels=3)  # must divide the 16 channels at 4x4
    _one_paragraph(err)
    with pytest.raises(ConfigError, match="mbstd_group_size"):
        small_d(mbstd_group_size=0)


def test_bad_labels_and_inputs_at_call_time():
    """Labels go through the shared check_labels (ValueError, as every ganarena network)."""
    g, d = small_g(num_classes=10), small_d(num_classes=10)
    z, x = torch.randn(2, 16), torch.randn(2, 1, 28, 28)
    for bad in (torch.tensor([1.0, 2.0]), torch.tensor([1, 10]), torch.tensor([1]), None):
        with pytest.raises(ValueError, match="labels"):
            g(z, bad)
        with pytest.raises(ValueError, match="labels"):
            d(x, bad)
    with pytest.raises(ValueError, match="unconditional"):
        small_g()(z, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="shape"):
        d(torch.randn(2, 1, 32, 32), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="z must have shape"):
        g(torch.randn(2, 15), torch.tensor([1, 2]))


# ---------------------------------------------------------------------------------------------
# Path length penalty


def test_path_length_penalty_trains_generator_only():
    torch.manual_seed(0)
    g, d = small_g(), small_d()
    pl = PathLengthPenalty()
    penalty, mean_len = pl(g, torch.randn(4, 16))
    assert penalty.ndim == 0 and mean_len.ndim == 0 and not mean_len.requires_grad
    penalty.backward()
    for part in (g.mapping, g.synthesis):
        assert sum(p.grad.abs().sum() for p in part.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in d.parameters())


def test_path_length_mean_moves_by_decay():
    torch.manual_seed(0)
    g = small_g()
    pl = PathLengthPenalty(decay=0.01)
    assert pl.pl_mean.item() == 0.0 and "pl_mean" in pl.state_dict()
    _, m1 = pl(g, torch.randn(4, 16))
    assert pl.pl_mean.item() == pytest.approx(0.01 * m1.item(), rel=1e-6)
    old = pl.pl_mean.clone()
    _, m2 = pl(g, torch.randn(4, 16))
    assert pl.pl_mean.item() == pytest.approx((old + 0.01 * (m2 - old)).item(), rel=1e-6)
    assert not pl.pl_mean.requires_grad


class LinearGenerator(nn.Module):
    """ws = z viewed as (N, L, W); image = A @ flatten(ws): the Jacobian is A everywhere."""

    def __init__(self, num_ws=3, w_dim=4, shape=(2, 3, 3)):
        super().__init__()
        self.num_ws, self.w_dim, self.shape = num_ws, w_dim, shape
        self.a = nn.Parameter(torch.randn(math.prod(shape), num_ws * w_dim, dtype=torch.float64))
        self.one = nn.Parameter(torch.ones((), dtype=torch.float64))

    def mapping(self, z, y=None):
        return z.view(-1, self.num_ws, self.w_dim) * self.one  # in the graph, as a real mapping

    def synthesis(self, ws):
        return (ws.flatten(1) @ self.a.t()).view(-1, *self.shape)


def test_path_length_closed_form_on_a_linear_generator():
    torch.manual_seed(0)
    g = LinearGenerator()
    z = torch.randn(5, 12, dtype=torch.float64)
    pl = PathLengthPenalty(decay=0.1).double()
    pl.pl_mean.fill_(0.5)
    torch.manual_seed(123)
    penalty, mean_len = pl(g, z)
    torch.manual_seed(123)  # the penalty's only random draw: the image-space noise
    noise = torch.randn(5, *g.shape, dtype=torch.float64) / math.sqrt(3 * 3)
    grads = (noise.flatten(1) @ g.a.detach()).view(5, g.num_ws, g.w_dim)  # J^T y
    lengths = grads.square().sum(2).mean(1).sqrt()
    new_mean = 0.5 + 0.1 * (lengths.mean() - 0.5)
    assert mean_len.item() == pytest.approx(lengths.mean().item(), rel=1e-12)
    assert pl.pl_mean.item() == pytest.approx(new_mean.item(), rel=1e-12)
    assert penalty.item() == pytest.approx((lengths - new_mean).square().mean().item(), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Config


def test_yaml_defaults_match_the_classes():
    """conf/model/stylegan2.yaml and the constructors document the same defaults."""
    model = OmegaConf.load(CONF / "stylegan2.yaml")
    cfg = OmegaConf.create({"model": model, "dataset": {"image_size": 28, "channels": 1}})
    nodes = OmegaConf.to_container(cfg, resolve=True)["model"]
    for cls, node in ((StyleGAN2Generator, "generator"), (StyleGAN2Discriminator, "discriminator")):
        params = inspect.signature(cls).parameters
        for key, value in nodes[node].items():
            if key != "_target_":
                assert value == params[key].default, f"{cls.__name__}.{key}"


@pytest.mark.parametrize("conditional", [False, True])
def test_hydra_instantiate_from_yaml(conditional):
    model_cfg = OmegaConf.load(CONF / "stylegan2.yaml")
    assert model_cfg.name == "stylegan2" and "style_mixing_prob" in model_cfg
    assert "loss" not in OmegaConf.to_yaml(model_cfg)  # no ${loss.*} interpolation
    cfg = OmegaConf.create({"model": model_cfg, "dataset": {"image_size": 28, "channels": 1}})
    # small widths keep it fast; the wiring is what is under test
    cfg.model.merge_with({"latent_dim": 16, "w_dim": 16, **SMALL})
    if conditional:
        cfg.model.num_classes = 10
    g = hydra.utils.instantiate(cfg.model.generator)
    d = hydra.utils.instantiate(cfg.model.discriminator)
    assert isinstance(g, StyleGAN2Generator) and isinstance(d, StyleGAN2Discriminator)
    assert (g.latent_dim, g.w_dim, g.num_classes) == (16, 16, cfg.model.num_classes)
    y = torch.tensor([3, 7]) if conditional else None
    with torch.no_grad():
        img = g(torch.randn(2, 16), y)
        assert img.shape == (2, 1, 28, 28)
        assert d(img, y).shape == (2,)
