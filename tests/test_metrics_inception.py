"""The Inception backbone, exercised with a randomly initialised weights file (the real one
cannot be downloaded here): lookup order, loading, errors, and scoring."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from ganarena.data.protocol import RealImages
from ganarena.errors import GanarenaError
from ganarena.metrics import build_backbone, build_evaluator
from ganarena.metrics.backbones import INCEPTION_FILE, file_sha256, find_inception_weights

# Small-n warnings are expected here; tests that check them use pytest.warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Scoring only:UserWarning", "ignore:eval.kid_subset_size:UserWarning"
)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    """A state dict of the right architecture with random values, saved to a temporary file."""
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    with pytest.MonkeyPatch.context() as mp:  # the constructor insists on loading weights
        mp.setattr(
            FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None
        )
        torch.manual_seed(0)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(empty))
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_offline_without_weights_is_a_clear_error(empty_hub):
    with pytest.raises(GanarenaError) as e:
        build_backbone({"backbone": "inception"}, None, "unused")
    msg = str(e.value)
    assert INCEPTION_FILE in msg and str(empty_hub / "checkpoints") in msg
    assert "eval.inception_weights" in msg and "eval.backbone=domain" in msg and "\n" not in msg
    with pytest.raises(GanarenaError, match="eval.inception_weights=/no/such.pth"):
        build_backbone(
            {"backbone": "inception", "inception_weights": "/no/such.pth"}, None, "unused"
        )


def test_hub_cache_is_searched(empty_hub, random_weights):
    target = empty_hub / "checkpoints" / INCEPTION_FILE
    target.parent.mkdir(parents=True)
    target.symlink_to(random_weights)
    assert find_inception_weights(None, allow_download=False) == target
    assert find_inception_weights(str(random_weights), allow_download=False) == random_weights


def test_corrupt_or_mismatched_weights(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(GanarenaError, match="corrupt"):
        build_backbone({"backbone": "inception", "inception_weights": str(bad)}, None, "unused")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(GanarenaError, match="does not hold FID Inception"):
        build_backbone({"backbone": "inception", "inception_weights": str(wrong)}, None, "unused")


class TinyDM:
    """Stand-in datamodule (the part of the data protocol the image evaluator reads): 4
    labelled 28x28 grayscale images."""

    name = resolved = "tiny"
    num_classes = 2
    scored_as = "images"

    def setup(self, stage=None):
        pass

    def real(self, purpose):
        g = torch.Generator().manual_seed(0)
        images = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
        return RealImages.of(images, torch.arange(4) % 2, "train", "ab" * 32)


def test_inception_scores_with_random_weights(random_weights, tmp_path):
    cfg = {
        "backbone": "inception",
        "inception_weights": str(random_weights),
        "n_samples": 3,
        "batch_size": 4,
        "kid_subset_size": 1000,
    }
    ev = build_evaluator(cfg, TinyDM(), str(tmp_path))
    s = ev.settings
    assert s["backbone"] == "inception-v3-compat" and s["feature_dim"] == 2048
    assert s["weights_sha256"] == file_sha256(random_weights) and s["inception_standard"] is False
    assert s["n_real"] == 4 and Path(s["reference_file"]).is_file()
    assert f"inception-{s['weights_sha256'][:12]}" in s["reference_file"]
    fake = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with pytest.warns(UserWarning):  # small n and a clamped KID subset
        scores = ev.score_images(fake)
    assert set(scores) == {"fid", "is", "is_std", "kid", "kid_std"}  # no classes: no mode scores
    assert all(math.isfinite(v) for v in scores.values()) and scores["fid"] > 0
