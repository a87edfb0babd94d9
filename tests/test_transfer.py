"""Transfer learning (init_from, freeze_d) and class-restricted / long-tailed data
(dataset.class_counts): what is loaded, what stays fixed, and what is refused."""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from ganarena.data import MNISTSampleDataModule
from ganarena.errors import CheckpointError, ConfigError
from ganarena.tasks import read_checkpoint
from ganarena.train import train
from tests.conftest import compose_train

DCGAN = ["model=dcgan", "model.conditional=false", "logger=none"]
MLP = ["logger=none"]  # FAST's MLP: D is three Linear layers


def sample(**kwargs) -> MNISTSampleDataModule:
    dm = MNISTSampleDataModule(batch_size=8, **kwargs)
    dm.setup("fit")
    return dm


def test_class_counts_take_a_seeded_subset_of_the_named_classes():
    dm = sample(class_counts={3: 20, 7: 5})
    assert torch.bincount(dm.labels, minlength=10).tolist() == [0, 0, 0, 20, 0, 0, 0, 5, 0, 0]
    assert dm.num_classes == 10  # from the full set: a conditional model keeps its label space
    images, labels, _ = dm.reference()
    # the real data to match: every image of those classes (natural frequencies), not the subset
    assert torch.bincount(labels, minlength=10).tolist() == [0, 0, 0, 500, 0, 0, 0, 500, 0, 0]
    pool, pool_labels, digest = dm.classifier_data()  # the domain classifier learns from the same
    assert torch.equal(pool, images) and torch.equal(pool_labels, labels)
    assert digest != dm.fingerprint()
    again = sample(class_counts={3: 20, 7: 5})
    assert torch.equal(again.images, dm.images)  # seeded: the same subset every time
    other = sample(class_counts={3: 20, 7: 5}, seed=1)
    assert not torch.equal(other.images, dm.images)
    fractions = sample(class_counts={3: 0.5, 7: 1.0, 9: 0.001})  # of each class's 500 images
    assert torch.bincount(fractions.labels, minlength=10)[[3, 7, 9]].tolist() == [250, 500, 1]


LONG_TAIL = {c: round(500 * 0.1 ** (c / 9)) for c in range(10)}  # 500 zeros ... 50 nines: 10:1


def drawn(dm, batches: int) -> list[int]:
    """How often each class is drawn in the first `batches` training batches."""
    idx = [i for batch in islice(dm.sampler, batches) for i in batch]
    return torch.bincount(dm.labels[idx], minlength=10).tolist()


def test_balance_draws_every_class_of_a_long_tail_equally_often_and_resumes_exactly():
    plain = sample(class_counts=LONG_TAIL)
    counts = torch.bincount(plain.labels).tolist()
    assert counts[0] == 500 and counts[9] == 50
    seen = drawn(plain, len(plain.sampler))  # one epoch: each image once, the tail as it is
    assert seen[0] / seen[9] > 8
    dm = sample(class_counts=LONG_TAIL, balance=True)
    seen = drawn(dm, 300)  # 2,400 draws: 240 per class expected
    assert max(seen) / min(seen) < 1.5, seen
    # the order is a function of the batches consumed, as without balancing (resume)
    first = list(islice(sample(class_counts=LONG_TAIL, balance=True).sampler, 40))
    again = sample(class_counts=LONG_TAIL, balance=True)
    again.seek(25)
    assert list(islice(again.sampler, 15)) == first[25:]


def test_balance_is_refused_without_labels_or_as_a_non_boolean():
    with pytest.raises(ConfigError, match="must be true or false"):
        sample(balance="yes")
    with pytest.raises(ConfigError, match="has no class labels. Drop dataset.balance"):
        DigitsNoLabels(batch_size=8, balance=True).setup("fit")


class DigitsNoLabels(MNISTSampleDataModule):
    """The digits without their labels (as a folder of images would be)."""

    def load(self):
        images, _ = super().load()["train"]
        return {"train": (images, None)}


@pytest.mark.parametrize(
    ("counts", "extra", "needle"),
    [
        ({12: 5}, {}, "has no class 12 (its classes: 0..9)"),
        ({3: 501}, {}, "asks for 501 images of class 3, but dataset 'mnist_sample' has 500"),
        ({3: 0}, {}, "every count must be an integer >= 1"),
        ({3: 1.5}, {}, "or a fraction in (0, 1] (of the class's images), got 1.5 for class 3"),
        ({"three": 5}, {}, "every class must be an integer >= 0"),
        ([3, 7], {}, "must map classes to image counts"),
        ({3: 5}, {"limit": 100}, "class_counts and dataset.limit both choose a subset"),
    ],
)
def test_bad_class_counts_are_refused(counts, extra, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        sample(class_counts=counts, **extra)


def test_init_from_loads_the_weights_with_fresh_counters_and_freeze_d_keeps_d_layers(tmp_path):
    source = tmp_path / "source"
    train(compose_train(source, [*MLP, "trainer.max_steps=3"]))
    tuned = tmp_path / "tuned"
    cfg = compose_train(
        tuned,
        [*MLP, "trainer.max_steps=2", f"init_from={source}/checkpoints/last.ckpt", "freeze_d=1",
         "+dataset.class_counts={5:64,6:64}", "dataset.limit=null"],
    )  # fmt: skip
    train(cfg)
    a = read_checkpoint(source / "checkpoints" / "last.ckpt")
    b = read_checkpoint(tuned / "checkpoints" / "last.ckpt")
    assert b["ganarena"]["g_step"] == 2  # counted from 0: a new run, not a resume
    d_keys = [k for k in a["state_dict"] if k.startswith("discriminator.") and "weight" in k]
    first, rest = d_keys[0], d_keys[1:]
    assert torch.equal(a["state_dict"][first], b["state_dict"][first])  # frozen: as loaded
    assert any(not torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in rest)
    # the fixed sample latents came with the weights; Adam's state starts empty (2 G steps)
    assert torch.equal(a["state_dict"]["fixed_z"], b["state_dict"]["fixed_z"])
    opt_g = b["optimizer_states"][0]["state"]
    assert all(int(s["step"]) == 2 for s in opt_g.values())
    with pytest.raises(ConfigError, match="its last one must learn"):  # the MLP D: 3 Linear
        init = f"init_from={source}/checkpoints/last.ckpt"
        train(compose_train(tmp_path / "all", [*MLP, "freeze_d=3", init]))


def test_incompatible_init_from_and_freeze_d_without_it_are_refused(tmp_path):
    mlp = tmp_path / "mlp"
    train(compose_train(mlp, ["logger=none"]))
    cfg = compose_train(tmp_path / "b", [*DCGAN, f"init_from={mlp}/checkpoints/last.ckpt"])
    with pytest.raises(CheckpointError, match="does not fit this model.*drop init_from"):
        train(cfg)
    with pytest.raises(ConfigError, match="add init_from="):
        train(compose_train(tmp_path / "c", [*DCGAN, "freeze_d=1"]))
    with pytest.raises(CheckpointError, match="Checkpoint not found"):
        train(compose_train(tmp_path / "e", [*DCGAN, "init_from=nope.ckpt"]))


def test_freeze_d_works_on_stylegan2s_own_layers():
    """StyleGAN2's discriminator is built of equalised-lr layers, not nn.Conv2d/nn.Linear: FreezeD
    counts the layers the model declares (issue #33: it found 0 and was unusable)."""
    from ganarena.models.stylegan2 import Conv2dLayer, StyleGAN2Discriminator
    from ganarena.tasks.loading import freeze_layers

    d = StyleGAN2Discriminator(image_size=16, channels=1)
    layers = [m for m in d.modules() if isinstance(m, d.freezable_layers)]
    assert len(layers) >= 4
    frozen = freeze_layers(d, 2)
    assert len(frozen) >= 2 and all(not p.requires_grad for p in layers[0].parameters())
    assert isinstance(layers[0], Conv2dLayer)
    assert all(p.requires_grad for p in layers[-1].parameters())
    with pytest.raises(ConfigError, match=f"Freeze at most {len(layers) - 1}"):
        freeze_layers(StyleGAN2Discriminator(image_size=16, channels=1), len(layers))
