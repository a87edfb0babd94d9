"""Evaluation metrics: FID against a closed form, the domain backbone on real MNIST, caching."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision.transforms.functional as TF

from ganarena.data.protocol import RealImages
from ganarena.errors import ConfigError, DataError, DivergedError
from ganarena.metrics import build_evaluator, frechet_distance
from ganarena.metrics.backbones import DomainBackbone, DomainClassifier
from ganarena.metrics.evaluator import Evaluator, mode_scores, reference_stats
from ganarena.metrics.prdc import PRDC
from ganarena.run.files import to_uint8
from ganarena.tasks import GenerativeTask
from tests.conftest import MNIST_TEST as MNIST
from tests.conftest import needs_mnist

# Small-n warnings are expected here; tests that check them use pytest.warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Scoring only:UserWarning", "ignore:eval.kid_subset_size:UserWarning"
)


def mnist_datamodule():
    from ganarena.data import IdxDataModule

    return IdxDataModule(
        images=str(MNIST / "t10k-images-idx3-ubyte.gz"),
        labels=str(MNIST / "t10k-labels-idx1-ubyte.gz"),
        name="idx",
        image_size=28,
        channels=1,
        batch_size=64,
    )


@pytest.fixture(scope="module")
def mnist():
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST} not present")
    dm = mnist_datamodule()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def evaluator(mnist, cache_dir):
    return build_evaluator({"backbone": "domain", "n_samples": 5000}, mnist, str(cache_dir))


@pytest.fixture(scope="module")
def halves(mnist, evaluator):
    """Evaluator whose reference is the first 5,000 test digits, the last 5,000, and their scores."""
    x = mnist.images
    ev = evaluator.with_reference(x[:5000], "first5k")
    return ev, x[5000:], ev.score_images(x[5000:])


# -- exact arithmetic -------------------------------------------------------------------------
def gaussian_with_moments(n: int, mean: np.ndarray, cov: np.ndarray, rng) -> torch.Tensor:
    """n samples whose sample mean and (unbiased) sample covariance are exactly mean and cov."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whiten exactly
    return torch.from_numpy(mean + z @ np.linalg.cholesky(cov).T)


def test_fid_matches_closed_form():
    rng = np.random.default_rng(0)
    d = 8
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.5 * np.eye(d)
    x1 = gaussian_with_moments(3000, mu1, s1, rng)
    x2 = gaussian_with_moments(2000, mu2, s2, rng)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(x1, x2) == pytest.approx(expected, rel=1e-4)
    assert frechet_distance(x1, x1) == pytest.approx(0.0, abs=1e-6)


def test_to_uint8_matches_png_rounding():
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(u.float() / 127.5 - 1), u)  # datamodule images round-trip exactly
    x = torch.tensor([-1.0, -2.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5)
    assert to_uint8(x).flatten().tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(DivergedError):
        to_uint8(torch.tensor([float("nan")]).view(1, 1, 1, 1))


def test_mode_scores():
    p_real = torch.full((10,), 0.1, dtype=torch.float64)
    one = torch.zeros(10, dtype=torch.float64)
    one[3] = 1
    assert mode_scores(p_real, p_real, 0.5) == {"modes_covered": 10, "class_kl": 0.0}
    r = mode_scores(one, p_real, 0.5)
    assert r["modes_covered"] == 1 and r["class_kl"] == pytest.approx(math.log(10))


# -- a random-weight domain backbone: fast checks that need no data --------------------------
@pytest.fixture(scope="module")
def random_evaluator():
    torch.manual_seed(0)
    model = DomainClassifier(1, 10, width=8, features=16)
    backbone = DomainBackbone(
        model, (1, 28, 28), "domain-test-cnn", {"classifier_sha256": "0" * 64}
    )
    real = torch.rand(300, 1, 28, 28) * 2 - 1
    ref = reference_stats(backbone, real, "test", 100)
    cfg = {"n_samples": 200, "batch_size": 64, "kid_subset_size": 100, "seed": 0}
    return Evaluator(backbone, cfg, ref)


def test_small_n_is_refused_or_warned(random_evaluator):
    with pytest.raises(ConfigError, match="at least 2"):
        random_evaluator.score_images(torch.zeros(1, 1, 28, 28))
    with pytest.warns(UserWarning, match="kid_subset_size"):
        scores = random_evaluator.score_images(torch.rand(20, 1, 28, 28) * 2 - 1)
    assert random_evaluator.settings["kid_subset_size"] == 20
    assert random_evaluator.settings["n_fake"] == 20
    assert all(math.isfinite(v) for v in scores.values())


def test_wrong_image_shape_is_a_clear_error(random_evaluator):
    with pytest.raises(DataError, match="eval.backbone=inception"):
        random_evaluator.score_images(torch.zeros(4, 3, 32, 32))


def test_scoring_is_streamed_and_reproducible(random_evaluator):
    class Sampler(GenerativeTask):  # the protocol's sample stream over a fixed "generator"
        latent_dim = 28 * 28
        calls: list[int] = []

        def decode(self, z, labels=None):
            self.calls.append(len(z))
            return torch.tanh(z).view(-1, 1, 28, 28)

    s = Sampler()
    first = random_evaluator.score_module(s)
    assert max(s.calls) <= random_evaluator.batch_size and sum(s.calls) == 200
    assert random_evaluator.score_module(s) == first


def test_backbone_none_and_unlabelled(mnist_like_unlabelled, tmp_path):
    assert build_evaluator({"backbone": "none"}, mnist_like_unlabelled, str(tmp_path)) is None
    with pytest.raises(ConfigError, match="eval.backbone=inception"):
        build_evaluator({"backbone": "domain"}, mnist_like_unlabelled, str(tmp_path))
    with pytest.raises(ConfigError, match="domain, inception or none"):
        build_evaluator({"backbone": "vgg"}, mnist_like_unlabelled, str(tmp_path))


@pytest.fixture
def mnist_like_unlabelled():
    class DM:  # the part of the data protocol the image evaluator reads
        name = resolved = "unlabelled"
        num_classes = None
        scored_as = "images"

        def setup(self, stage=None):
            pass

        def real(self, purpose):
            return RealImages.of(torch.zeros(10, 1, 28, 28), None, "train", "f" * 64)

    return DM()


# -- the domain backbone on the real MNIST test split ------------------------------------------
@needs_mnist
def test_classifier_accuracy(evaluator):
    s = evaluator.settings
    print(
        f"classifier accuracy {s['classifier_accuracy']:.4f}, trained in {s['classifier_train_s']} s"
    )
    assert s["classifier_accuracy"] >= 0.985
    assert s["classifier_n_heldout"] == 1000
    assert len(s["classifier_sha256"]) == 64
    assert s["backbone"] == "domain-idx-cnn" and s["n_real"] == 10000 and s["image_size"] == 28


@needs_mnist
def test_fid_real_halves_noise_blur_uniform(halves):
    ev, rest, base = halves
    # The degradation ladders use 2,000 of the last digits (against the first 5,000), each step
    # compared with the undegraded 2,000 so that all points share the same sample size.
    x = rest[:2000]
    g = torch.Generator().manual_seed(1)
    clean = ev.score_images(x)["fid"]
    noise = [
        ev.score_images((x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1))["fid"]
        for s in (0.1, 0.2, 0.4)
    ]
    blur = [ev.score_images(TF.gaussian_blur(x, 7, s))["fid"] for s in (0.5, 1.0, 2.0)]
    uniform = ev.score_images(torch.rand(x.shape, generator=g) * 2 - 1)["fid"]
    print(
        f"FID first/last 5k {base['fid']:.3f}; 2k: clean {clean:.3f}, noise {noise}, "
        f"blur {blur}, uniform {uniform:.1f}"
    )
    assert 0 < base["fid"] < 20
    assert clean < noise[0] < noise[1] < noise[2]
    assert clean < blur[0] < blur[1] < blur[2]
    assert uniform > 100 * max(clean, base["fid"])
    assert base["modes_covered"] == 10 and base["class_kl"] < 0.01


@needs_mnist
def test_kid_of_random_halves_is_zero_within_2_std(mnist, evaluator):
    perm = torch.randperm(len(mnist.images), generator=torch.Generator().manual_seed(0))
    a, b = mnist.images[perm[:5000]], mnist.images[perm[5000:]]
    cfg = {"n_samples": 5000, "fid_infinity": True}
    scores = evaluator.with_reference(a, "half", cfg).score_images(b)
    print(
        f"KID random halves {scores['kid']:.4g} +- {scores['kid_std']:.4g}, "
        f"FID {scores['fid']:.3f}, FID-infinity {scores['fid_inf']:.3f}"
    )
    assert abs(scores["kid"]) < 2 * scores["kid_std"]
    # Same distribution: extrapolating away the finite-sample bias brings FID closer to 0.
    assert abs(scores["fid_inf"]) < scores["fid"]


@needs_mnist
def test_inception_score_real_and_collapsed(halves):
    ev, rest, real = halves
    one = ev.score_images(rest[:1].expand(2000, -1, -1, -1))
    print(f"IS real {real['is']:.3f} +- {real['is_std']:.3f}; IS one digit {one['is']:.4f}")
    assert real["is"] > 9.0
    assert one["is"] == pytest.approx(1.0, abs=0.05)
    assert one["modes_covered"] == 1 and one["class_kl"] > 2.0


@needs_mnist
def test_same_images_score_identically(evaluator, mnist):
    x = mnist.images[:1000]
    assert evaluator.score_images(x) == evaluator.score_images(x)


@needs_mnist
def test_caches_are_reused(evaluator, mnist, cache_dir):
    s = evaluator.settings
    files = [Path(s["classifier_file"]), Path(s["reference_file"])]
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = build_evaluator({"backbone": "domain", "n_samples": 5000}, mnist, str(cache_dir))
    assert again.reference_cached
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    volatile = ("n_fake", "kid_subset_size")  # describe the last scoring
    assert {k: v for k, v in again.settings.items() if k not in volatile} == {
        k: v for k, v in s.items() if k not in volatile
    }
    x = mnist.images[:1000]
    assert again.score_images(x) == evaluator.score_images(x)
    # Another n_real is another reference file; the classifier is shared.
    sub = build_evaluator({"backbone": "domain", "n_real": 2000}, mnist, str(cache_dir))
    assert not sub.reference_cached and sub.settings["n_real"] == 2000
    assert sub.settings["classifier_file"] == s["classifier_file"]


@needs_mnist
def test_precision_recall_density_coverage_real_and_collapsed(halves, mnist):
    """In the domain classifier's features: the last 5,000 test digits against the first 5,000
    score high on all four; the 3s alone keep their fidelity and lose recall and coverage."""
    ev, rest, real = halves
    threes = ev.score_images(rest[mnist.labels[5000:] == 3])
    print({k: (round(real[k], 3), round(threes[k], 3)) for k in PRDC})
    # measured: real P 0.873, R 0.792, D 0.848, C 0.811 (k = 3 and 5 in 128 dimensions at 5k vs
    # 5k stay below 1 for the same distribution); the 3s: P 0.761, R 0.088, C 0.082
    assert real["precision"] > 0.75 and real["recall"] > 0.7
    assert 0.75 < real["density"] < 1.25 and real["coverage"] > 0.7
    assert threes["precision"] > 0.7
    assert threes["recall"] < 0.15 and threes["coverage"] < 0.15
    assert ev.settings["prdc_k"] == {"precision_recall": 3, "density_coverage": 5}
