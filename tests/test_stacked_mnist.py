"""Stacked MNIST (dataset=stacked_mnist): the data (three digits as R, G, B; fresh or fixed
triples, exact resume) and the 1,000-mode score (modes covered, KL to uniform, confidence)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from ganarena.data import StackedMNISTDataModule
from ganarena.data.stacked import triple_codes
from ganarena.errors import ConfigError
from ganarena.metrics.stacked import StackedMNISTEvaluator, stacked_mode_scores
from ganarena.train import train
from tests.conftest import compose_train


def stacked(**kw) -> StackedMNISTDataModule:
    kw = {"digits": "mnist_sample", "n_train": 640, "n_reference": 26_000, **kw}
    dm = StackedMNISTDataModule(**kw)
    dm.configure(shuffle_seed=kw.get("seed", 0) + 7)
    dm.setup()
    return dm


def digits_of(codes: torch.Tensor) -> torch.Tensor:
    return torch.stack([codes // 100, codes // 10 % 10, codes % 10], dim=1)


def test_mode_scores_of_uniform_real_triples_and_of_one_triple():
    dm = stacked()
    real = stacked_mode_scores(digits_of(dm.real("reference").labels))  # 26,000 real triples
    assert real["modes_covered"] >= 990 and 0 <= real["mode_kl"] < 0.05
    one = stacked_mode_scores(torch.tensor([[3, 1, 4]]).repeat(26_000, 1), torch.ones(26_000, 3))
    assert one["modes_covered"] == 1 and one["mode_kl"] == pytest.approx(math.log(1000))
    assert one["digit_confidence"] == 1.0 and one["digit_confidence_per_channel"] == [1.0] * 3
    half = stacked_mode_scores(torch.tensor([[0, 0, 0], [9, 9, 9]]).repeat(50, 1))
    assert half["modes_covered"] == 2 and half["mode_kl"] == pytest.approx(math.log(500))


def test_images_stack_three_digits_and_train_unconditionally():
    dm = stacked()
    assert dm.resolved == "stacked_mnist_sample" and dm.num_classes is None
    assert dm.scored_as == "stacked_digits" and dm.real("classifier").shape == (1, 28, 28)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 3, 28, 28) and y.shape == (64,) and x.min() >= -1 and x.max() <= 1
    # every channel is one of the pool's digits, and the label is its triple of digit labels
    pool = dm.pool.flatten(1)
    for i in range(3):
        for c in range(3):
            match = (pool == x[i, c].flatten()).all(dim=1).nonzero().flatten()
            assert len(match) >= 1
            assert int(dm.pool_labels[match[0]]) == int(digits_of(y)[i, c])


@pytest.mark.parametrize("mode", ["fresh", "fixed"])
def test_batches_follow_the_seeds_and_resume_exactly(mode):
    a, b, other = stacked(mode=mode), stacked(mode=mode), stacked(mode=mode, seed=1)

    def two_epochs(dm):  # 10 batches each
        return [y for _ in range(2) for _, y in dm.train_dataloader()]

    first = two_epochs(a)
    assert len(first) == 20 and all(
        torch.equal(u, v) for u, v in zip(first, two_epochs(b), strict=True)
    )
    assert not torch.equal(first[0], next(iter(other.train_dataloader()))[1])
    assert not torch.equal(first[0], first[10])  # a new epoch: new triples / a new order
    resumed = stacked(mode=mode)
    resumed.seek(13)
    assert torch.equal(next(iter(resumed.train_dataloader()))[1], first[13])
    assert a.fingerprint() == b.fingerprint() != other.fingerprint()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "random"}, "dataset.mode must be 'fresh'"),
        ({"channels": 1}, "dataset.channels=3"),
        ({"digits": "idx"}, "without dataset.images"),
        ({"digits": "cifar10"}, "dataset.digits must be one of"),
        ({"n_train": 10}, "below dataset.batch_size"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StackedMNISTDataModule(**{"digits": "mnist_sample", **kwargs})


class LookupDigits(nn.Module):
    """A perfect digit classifier for the pool's own digits: exact image -> its label (by a
    random projection of the pixels, looked up in the pool's sorted projections)."""

    name, feature_dim, info, cache_id = "lookup", 4, {}, None

    def __init__(self, pool: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.w = torch.randn(pool[0].numel(), 4, dtype=torch.float64)  # exact sums of ints
        keys = self._keys(((pool + 1) * 127.5).round())
        self.keys, order = keys.sort()
        self.labels = labels[order]

    def _keys(self, x):
        return (x.flatten(1).double() @ self.w)[:, 0]

    def forward(self, x):
        keys = self._keys(x.float()).contiguous()
        at = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        labels = torch.where((self.keys[at] - keys).abs() < 1e-6, self.labels[at], 0)
        return (x.flatten(1).double() @ self.w).float(), nn.functional.one_hot(labels, 10) * 20.0


class OneTriple:
    """A generator that always draws the same stacked image (digits 3, 1, 4)."""

    num_classes = None

    def __init__(self, image):
        self.image = image

    def sample(self, n, seed, labels=None, start=0):
        return self.image.expand(n, -1, -1, -1), None


def test_the_evaluator_floor_and_a_collapsed_generator():
    """With a perfect digit reader: 8,000 real stacked images cover ~all modes (expected 999.7)
    with KL near its sampling floor (~0.06 at n = 8,000); their FID to themselves is 0; a
    generator of one triple covers 1 mode at KL ln 1000."""
    dm = stacked(n_reference=8000)
    reader = LookupDigits(dm.pool, dm.pool_labels)
    ev = StackedMNISTEvaluator({"n_samples": 8000, "batch_size": 4000}, dm, None, "cpu", reader)
    floor = ev.settings["real_floor"]
    assert floor["modes_covered"] >= 995 and floor["mode_kl"] < 0.1
    assert floor["digit_confidence"] == pytest.approx(1.0)
    real = ev.score_images(dm.real("reference")[torch.arange(8000)])
    assert real["fid"] == pytest.approx(0.0, abs=1e-3)
    assert real["modes_covered"] == floor["modes_covered"]
    pick = [int((dm.pool_labels == d).nonzero()[0]) for d in (3, 1, 4)]
    scores = ev.score_module(OneTriple(dm.stack(dm.pool, torch.tensor([pick]))))
    assert scores["modes_covered"] == 1 and scores["mode_kl"] == pytest.approx(math.log(1000))
    assert ev.settings["n_fake"] == 8000 and scores["fid"] > 1


def test_training_carries_the_1000_mode_scores(tmp_path):
    """dataset=stacked_mnist trains an image model unchanged, unconditionally (conditional=auto),
    and its metrics.json and TensorBoard carry modes_covered, mode_kl and the real floor."""
    from tests.test_train import events

    run = tmp_path / "run"
    cfg = compose_train(
        run,
        ["dataset=stacked_mnist", "dataset.digits=mnist_sample", "dataset.n_reference=300",
         "model=dcgan", "trainer.max_steps=2", "eval=domain", "eval.n_samples=64",
         "eval.classifier.epochs=1", "eval.every_n_steps=2"],
    )  # fmt: skip
    train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["conditional"] is False
    final = metrics["final"]
    assert 1 <= final["modes_covered"] <= 64 and 0 <= final["mode_kl"] <= math.log(1000) + 1e-9
    assert 0 < final["digit_confidence"] <= 1 and len(final["digit_confidence_per_channel"]) == 3
    ev = metrics["eval"]
    assert ev["dataset"] == "stacked_mnist_sample" and ev["backbone"] == "domain-mnist_sample-cnn"
    # the floor: the real reference scored alike (a 1-epoch classifier on 230 digits reads
    # little; test_the_evaluator_floor... has the values with a perfect reader)
    assert ev["n_real"] == 300 and 1 <= ev["real_floor"]["modes_covered"] <= 300
    tags = events(run).Tags()["scalars"]
    assert {"val/modes_covered", "val/mode_kl", "val/digit_confidence", "val/fid"} <= set(tags)


def test_other_backbones_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="digit classifier on each channel"):
        StackedMNISTEvaluator({"backbone": "inception"}, stacked(n_reference=10), tmp_path)


def test_triple_codes_are_100r_10g_b():
    assert triple_codes(torch.tensor([[1, 2, 3], [9, 0, 9]])).tolist() == [123, 909]
