"""Issue #28's recipes: cosine schedules (R3GAN), the experiment=r3gan preset on every image model,
LeCam and ADA in training, what each refuses, and an exact resume of all their state."""

from __future__ import annotations

import math

import pytest
import torch

from ganarena.errors import ConfigError
from ganarena.gan.schedules import Schedule, cosine_ramp
from ganarena.run.config import validate_train
from ganarena.train import train
from tests.conftest import compose_train, straight_and_resumed


def test_cosine_ramp_matches_r3gans_closed_form():
    """start + (end - start) (1 - cos(pi t / T)) / 2, then end; a warm-up is a line from 0."""
    ramp = cosine_ramp(0.05, 0.005, steps=100)
    assert ramp(0) == 0.05 and ramp(100) == ramp(250) == 0.005
    assert ramp(50) == pytest.approx(0.0275)  # half-way: the mean of the two
    assert ramp(25) == pytest.approx(0.05 - 0.045 * (1 - math.cos(math.pi / 4)) / 2)
    warm = cosine_ramp(1.0, 0.25, steps=110, warmup=10)
    assert (warm(0), warm(5), warm(10)) == (0.0, 0.5, 1.0)
    assert warm(60) == pytest.approx(0.625)
    with pytest.raises(ConfigError, match="horizon"):
        cosine_ramp(1.0, 0.0, steps=0)


def test_schedule_node_ramps_lr_and_beta2_and_refuses_what_conflicts():
    s = Schedule.from_config({"lr_end_factor": 0.25, "beta2_end": 0.99}, 1000, None)
    assert (s.lr_factor(0), s.lr_factor(500), s.lr_factor(1000)) == (1.0, 0.625, 0.25)
    assert s.beta2(0.9, 500) == pytest.approx(0.945) and s.beta2(0.9, 2000) == 0.99
    assert Schedule.from_config(None, None, None).lr_factor(7) == 1.0  # off: no horizon needed
    assert Schedule.from_config({"steps": 10}, 1000, None).of(1.0, 0.0)(5) == pytest.approx(0.5)
    for cfg, words in (
        ({"lr_end_factor": 0.5}, "both schedule"),  # with decay_start
        ({"beta2_end": 1.5}, "beta2_end"),
        ({"lr_warmup": 10}, "lr_end_factor too"),
        ({"gamma_end": 0.1}, "no key"),
    ):
        with pytest.raises(ConfigError, match=words):
            Schedule.from_config(cfg, 1000, 0.5 if "lr_end_factor" in cfg else None)


def test_r3gan_preset_composes_rpgan_with_r1_and_r2_every_step(tmp_path):
    cfg = compose_train(tmp_path, ["experiment=r3gan", "model=dcgan"])
    assert cfg.loss.name == "rpgan" and cfg.model.d_norm == "none"
    assert (
        cfg.regularizer.r1.gamma,
        cfg.regularizer.r1.gamma_end,
        cfg.regularizer.r1.interval,
    ) == (0.05, 0.005, 1)
    r2 = cfg.regularizer.r2
    assert (r2.gamma, r2.gamma_end, r2.interval) == (0.05, 0.005, 1)
    assert list(cfg.optim.d.betas) == [0.0, 0.9] and cfg.optim.d.lr == 2e-4
    assert (cfg.task.schedule.lr_end_factor, cfg.task.schedule.beta2_end) == (0.25, 0.99)
    validate_train(cfg)
    with pytest.raises(ConfigError, match="per-sample"):
        validate_train(
            compose_train(tmp_path, ["experiment=r3gan", "model=dcgan", "model.d_norm=batch"])
        )


@pytest.mark.parametrize("model", ["mlp", "dcgan", "stylegan2"])
def test_r3gan_and_lecam_train_with_every_image_model(tmp_path, model):
    """Two steps of the preset plus LeCam: every term is logged, gamma and lr follow the ramp."""
    run = tmp_path / "run"
    extra = ["model.width=8"] if model == "dcgan" else []
    over = ["experiment=r3gan", f"model={model}", "regularizer=[r2,lecam]", *extra]
    cfg = compose_train(run, [*over, "regularizer.r2.gamma=0.05", "regularizer.r2.gamma_end=0.005",
                              "trainer.max_steps=2", "dataset.batch_size=8"])  # fmt: skip
    train(cfg)
    from tests.test_train import events

    acc = events(run)
    got = {t: [e.value for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    assert got["train/r1_gamma"] == pytest.approx([0.05, 0.0275])  # ramp at steps 0 and 1 of 2
    assert got["train/r2_weight"] == pytest.approx([0.025, 0.01375])
    assert got["train/lr_d"] == pytest.approx([2e-4, 1.25e-4])
    assert all(v >= 0 for v in got["train/lecam"] + got["train/r1"] + got["train/r2"])


def test_ada_trains_with_every_image_model_it_applies_to(tmp_path):
    for model, extra in (("mlp", []), ("dcgan", ["model.width=8"])):
        run = tmp_path / model
        train(compose_train(run, [f"model={model}", *extra, "augment=ada", "trainer.max_steps=2",
                                  "dataset.batch_size=8"]))  # fmt: skip
        from tests.test_train import events

        assert [e.value for e in events(run).Scalars("train/ada_p")] == [0.0, 0.0]


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["loss=rpgan", "augment=ada"], "up to a\nconstant|up to a constant"),
        (["loss=wgan", "augment=ada"], "decision"),
        (["loss=wgan", "task.schedule.beta2_end=0.99"], "has no betas"),
        (
            ["regularizer=[r1]", "regularizer.r1.gamma=0", "regularizer.r1.gamma_end=0.01"],
            "start value",
        ),
        (["experiment=cyclegan_digits", "regularizer=[lecam]"], "cannot apply to task=cyclegan"),
        (["dataset=gaussian_mixture", "augment=ada"], "points, not"),
    ],
)
def test_each_option_refuses_what_it_does_not_apply_to(tmp_path, overrides, words):
    with pytest.raises(ConfigError, match=words.replace("\n", " ")):
        train(compose_train(tmp_path / "run", overrides))


def test_resume_reproduces_ada_p_lecam_anchors_schedules_and_losses(tmp_path):
    """5 steps + resume to 12 == 12 steps straight (the pattern of tests/test_fault.py), with ADA
    moving p every 2 D steps, LeCam's anchors, R1 + R2 with gamma on a cosine pinned to 12 steps,
    and the lr and beta2 ramps: the same p, anchors, weights, optimizer state and logged values."""
    common = [
        "trainer.deterministic=true", "seed=3", "augment=ada", "augment.p=0.3",
        "augment.interval=2", "augment.speed_kimg=0.2", "regularizer=[r1,r2,lecam]",
        "regularizer.r2.gamma=0.2", "regularizer.r2.gamma_end=0.02", "regularizer.r1.gamma=0.2",
        "regularizer.r1.gamma_end=0.02", "regularizer.r1.interval=1", "task.schedule.steps=12",
        "task.schedule.lr_end_factor=0.25", "task.schedule.beta2_end=0.99",
        "optim.d.betas=[0.0,0.9]", "optim.g.betas=[0.0,0.9]",
    ]  # fmt: skip
    (straight, a), (part, b) = straight_and_resumed(tmp_path, common)
    assert {"augment.p", "penalties.lecam.alpha_real"} <= set(a["state_dict"])
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        assert opt_a["param_groups"][0]["betas"] == opt_b["param_groups"][0]["betas"]
        for pa, pb in zip(opt_a["state"].values(), opt_b["state"].values(), strict=True):
            assert torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])
    from tests.test_train import events

    tags = ["train/d_loss", "train/g_loss", "train/ada_p", "train/lecam", "train/r1_gamma",
            "train/lr_d"]  # fmt: skip
    for tag in tags:
        full = [e.value for e in events(straight).Scalars(tag)]
        resumed = [e.value for e in events(part).Scalars(tag)]
        assert resumed == full, tag  # steps 1..5 from the first part, 6..12 after the resume
    p = [e.value for e in events(straight).Scalars("train/ada_p")]
    assert len(set(p)) > 2  # p moved during the run, so the equality above means something
