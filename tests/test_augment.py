"""DiffAugment (differentiable, identity at strength 0) and classic augmentation of real images."""

import importlib.resources
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ganarena.errors import ConfigError
from ganarena.gan.augment import (
    AUGMENT_FNS,
    AdaptiveAugment,
    ClassicAugment,
    DiffAugment,
    build_augment,
    rand_brightness,
    rand_contrast,
    rand_cutout,
    rand_saturation,
    rand_translation,
)

CONF = Path(importlib.resources.files("ganarena.conf")) / "augment"
OPS = [rand_brightness, rand_saturation, rand_contrast, rand_translation, rand_cutout]


def images(b=8, c=1, size=28, seed=0):
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_yaml_configs_build():
    assert build_augment(OmegaConf.load(CONF / "none.yaml")) is None
    assert build_augment(None) is None
    classic = build_augment(OmegaConf.load(CONF / "classic.yaml"))
    assert isinstance(classic, ClassicAugment) and classic.applies_to == "real"
    diff = build_augment(OmegaConf.load(CONF / "diffaugment.yaml"))
    assert isinstance(diff, DiffAugment) and diff.applies_to == "both"
    assert diff.policy == ("color", "translation", "cutout") and diff.strength == 1.0
    # a list policy, as `augment.policy=[translation,cutout]` gives on the command line
    cfg = OmegaConf.merge(
        OmegaConf.load(CONF / "diffaugment.yaml"),
        OmegaConf.from_dotlist(["policy=[translation,cutout]", "strength=0.5"]),
    )
    assert build_augment(cfg).policy == ("translation", "cutout")
    ada = build_augment(OmegaConf.load(CONF / "ada.yaml"))
    assert isinstance(ada, AdaptiveAugment) and ada.applies_to == "both"
    assert (ada.target, ada.interval, ada.speed_kimg, ada.p.item()) == (0.6, 4, 100.0, 0.0)


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "mixup"},
        {"name": "diffaugment", "policy": "color,flip"},
        {"name": "diffaugment", "strength": -1},
        {"name": "diffaugment", "strength": float("nan")},
        {"name": "classic", "rotation": 200},
        {"name": "classic", "crop": 1.0},
        {"name": "classic", "noise": "high"},
        {"name": "classic", "blur": 1.0},
        {"name": "ada", "target": 1.5},
        {"name": "ada", "speed_kimg": 0},
        {"name": "ada", "p": 2.0},
    ],
)
def test_bad_configs_raise_config_error(cfg):
    with pytest.raises(ConfigError, match="augment"):
        build_augment(OmegaConf.create(cfg))


# -- DiffAugment -------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_gradients_flow_to_fake(policy):
    torch.manual_seed(0)
    fake = images(4, 3, 16).requires_grad_(True)
    out = DiffAugment(policy)(fake)
    assert out.shape == fake.shape
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()
    assert fake.grad.abs().sum() > 0


def test_diffaugment_gradcheck():
    # With its randomness fixed, every op is linear in x: autograd must match finite differences.
    x = images(2, 3, 6).double().requires_grad_(True)

    def fn(t):
        torch.manual_seed(1)
        return DiffAugment("color,translation,cutout")(t)

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)


def test_diffaugment_identity_at_strength_zero():
    x = images(4, 3, 16)
    assert torch.equal(DiffAugment(strength=0)(x), x)
    assert torch.equal(DiffAugment(policy="")(x), x)
    for op in OPS:  # each op is the identity at strength 0 on its own, too
        assert torch.equal(op(x, 0.0), x), op.__name__


def test_diffaugment_strength_scales_the_change():
    x = images(16, 3, 16)
    changes = []
    for s in (0.25, 1.0):
        torch.manual_seed(0)
        changes.append((DiffAugment("color", s)(x) - x).abs().mean().item())
    assert 0 < changes[0] < changes[1]


def test_diffaugment_ops_match_reference_semantics():
    torch.manual_seed(0)
    x = images(16, 3, 16)
    # brightness: one offset per image, |offset| <= 0.5
    d = rand_brightness(x) - x
    per_image = d.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert per_image.abs().max() <= 0.5
    # contrast keeps each image's mean; saturation keeps each pixel's channel mean
    assert torch.allclose(rand_contrast(x).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-5)
    assert torch.allclose(rand_saturation(x).mean(1), x.mean(1), atol=1e-5)
    # translation moves pixels (zero-filled) by at most 1/8 of the size: values come from x or 0
    t = rand_translation(x)
    for i in range(len(x)):
        allowed = torch.cat([x[i].flatten(), torch.zeros(1)])
        assert torch.isin(t[i], allowed).all()
    # cutout zeroes at most a (size/2)^2 square per image and keeps everything else
    xc = x + 5  # no zeros in the input
    c = rand_cutout(xc)
    zeros = (c == 0).all(1).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 8 * 8).all()
    kept = c != 0
    assert torch.equal(c[kept], xc[kept])


def test_diffaugment_shapes_range_and_determinism():
    x = images(8, 1, 28)
    torch.manual_seed(3)
    a = DiffAugment()(x)
    torch.manual_seed(3)
    b = DiffAugment()(x)
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.isfinite(a).all()
    # geometric ops never leave [-1, 1] (they move or zero pixels); colour ops may, as in the paper
    geo = DiffAugment("translation,cutout")(x)
    assert geo.min() >= -1 and geo.max() <= 1
    # fresh draws per image and per call
    assert not torch.equal(DiffAugment()(x), DiffAugment()(x))
    assert set(AUGMENT_FNS) == {"color", "translation", "cutout"}


# -- classic -----------------------------------------------------------------------------------
def test_classic_range_shape_and_determinism():
    x = images(16, 3, 32)
    aug = ClassicAugment(rotation=30, scale=0.2, crop=0.2, contrast=0.5, noise=0.1)
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    b = aug(x)
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.allclose(a, x)


def test_classic_draws_parameters_per_image():
    x = images(1, 1, 28).expand(6, -1, -1, -1).contiguous()
    torch.manual_seed(0)
    out = ClassicAugment(rotation=20, scale=0.1, crop=0.1, contrast=0, noise=0)(x)
    assert all(not torch.allclose(out[0], out[i]) for i in range(1, 6))


def test_classic_off_is_identity_and_each_transform_acts():
    x = images(4, 1, 28)
    off = dict(rotation=0, scale=0, crop=0, contrast=0, noise=0)
    assert torch.equal(ClassicAugment(**off)(x), x)
    for key, value in [("rotation", 15), ("scale", 0.2), ("crop", 0.2), ("contrast", 0.3)]:
        torch.manual_seed(0)
        out = ClassicAugment(**{**off, key: value})(x)
        assert not torch.allclose(out, x, atol=1e-3), key
    torch.manual_seed(0)
    noisy = ClassicAugment(**{**off, "noise": 0.05})(torch.zeros(64, 1, 28, 28))
    assert noisy.std().item() == pytest.approx(0.05, rel=0.05)


def test_classic_warp_geometry():
    aug = ClassicAugment(rotation=90, scale=0.5, crop=0.5, contrast=0, noise=0)
    x = images(2, 1, 8)
    neutral = torch.tensor([[0.5, 0.5, 0.0, 0.5, 0.5]]).expand(2, -1)
    assert torch.allclose(aug.warp(x, neutral), x, atol=1e-5)
    # +90 degrees on a square image is an exact pixel permutation
    out = aug.warp(x, torch.tensor([[1.0, 0.5, 0.0, 0.5, 0.5]]).expand(2, -1))
    assert any(torch.allclose(out, torch.rot90(x, k, dims=(2, 3)), atol=1e-5) for k in (1, -1))
    # bilinear sampling reproduces a linear ramp exactly, so the geometry can be checked in
    # closed form on f(u, v) = u / 2 + v / 4 (u, v: normalised column / row coordinates)
    c = (torch.arange(8) + 0.5) / 8 * 2 - 1
    ramp = (c[None, :] / 2 + c[:, None] / 4).expand(2, 1, 8, 8)
    # the largest zoom, 1 + scale = 1.5, about the centre: out(p) = f(p / 1.5)
    big = aug.warp(ramp, torch.tensor([[0.5, 1.0, 0.0, 0.5, 0.5]]).expand(2, -1))
    assert torch.allclose(big, ramp / 1.5, atol=1e-5)
    # a crop of half the side in the top-left corner, resized back: out(p) = f(p / 2 - 1 / 2)
    tl = aug.warp(ramp, torch.tensor([[0.5, 0.5, 1.0, 0.0, 0.0]]).expand(2, -1))
    # (the outermost row/column lies half a pixel outside the image and blends with the fill)
    expected = ramp / 2 - (0.5 / 2 + 0.5 / 4)
    assert torch.allclose(tl[..., 1:, 1:], expected[..., 1:, 1:], atol=1e-5)
    # zooming out fills the border with black (-1)
    small = aug.warp(x, torch.tensor([[0.5, 0.0, 0.0, 0.5, 0.5]]).expand(2, -1))
    assert torch.allclose(small[:, :, 0, :], torch.full_like(small[:, :, 0, :], -1), atol=1e-5)


# -- ADA (Karras et al. 2020's controller over DiffAugment's ops) ----------------------------
def test_ada_applies_each_op_to_each_image_with_probability_p():
    """p = 0: identity. Otherwise op k replaces image i where its own U[0, 1) draw is below p:
    the same as drawing the mask and applying the op by hand with the same generator state."""
    x = images(b=16)
    ada = AdaptiveAugment(policy="color,translation,cutout")
    assert torch.equal(ada(x), x)
    ada.p.fill_(0.5)
    torch.manual_seed(3)
    out = ada(x)
    torch.manual_seed(3)
    expected, changed = x, []
    for op in OPS:
        mask = torch.rand(16, 1, 1, 1) < 0.5
        expected = torch.where(mask, op(expected, 1.0), expected)
        changed.append(int(mask.sum()))
    assert torch.equal(out, expected) and 0 < min(changed) and max(changed) < 16
    fake = x.clone().requires_grad_(True)  # differentiable, as DiffAugment: G learns through it
    ada(fake).sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_ada_controller_moves_p_by_images_over_speed_toward_the_target():
    """stylegan2-ada's rule: every `interval` D steps p += sign(r_t - target) * N / (kimg * 1000),
    N the real images of those steps, r_t = E[sign(D(x_real))] over them; p stays in [0, 1]."""
    ada = AdaptiveAugment(target=0.6, interval=2, speed_kimg=0.1)  # 100 images: p 0 -> 1
    ada.observe(torch.tensor([1.0, 2.0, -1.0, 3.0]), images=10)  # signs 1, 1, -1, 1
    assert ada.p.item() == 0.0 and int(ada.steps) == 1  # not yet: interval 2
    ada.observe(torch.tensor([1.0, 1.0, 1.0, 1.0]), images=10)  # r_t = 6/8 = 0.75 > 0.6
    assert ada.p.item() == pytest.approx(0.2) and ada.rt.item() == pytest.approx(0.75)
    assert int(ada.steps) == 0 and ada.sums.abs().sum() == 0  # new sums
    for _ in range(2):
        ada.observe(torch.tensor([-1.0, 1.0]), images=15)  # r_t = 0 < 0.6
    assert ada.p.item() == 0.0  # 0.2 - 30/100 clamps at 0
    ada.p.fill_(0.95)
    for _ in range(2):
        ada.observe(torch.ones(4), images=50)
    assert ada.p.item() == 1.0 and set(ada.state_dict()) == {"p", "rt", "sums", "steps"}
    assert set(ada.stats()) == {"train/ada_p", "train/ada_rt"}
