"""End-to-end training: run folders, checkpoints, TensorBoard events, metrics.json, resume."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.gan.losses import LOSSES
from ganarena.tasks import load_task, read_checkpoint
from ganarena.train import train
from tests.conftest import compose_train


def events(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def scalar_steps(acc, tag):
    return [e.step for e in acc.Scalars(tag)]


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_model_and_loss_trains_end_to_end(tmp_path, model, loss):
    run = tmp_path / "run"
    cfg = compose_train(run, [f"model={model}", f"loss={loss}"])
    train(cfg)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["steps"] == 3
    assert metrics["config"]["model"] == model and metrics["config"]["loss"] == loss
    assert metrics["wall_s"] > 0 and metrics["imgs_per_s"] > 0
    assert {"final", "best", "eval"} <= set(metrics)

    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    n_critic = cfg.optim.n_critic
    assert ckpt["ganarena"]["g_step"] == 3
    assert ckpt["ganarena"]["d_step"] == 3 * n_critic
    # Lightning's global_step counts both optimizers; ours counts generator steps only.
    assert ckpt["global_step"] == 3 * (n_critic + 1)
    assert (run / "checkpoints" / "step_000002.ckpt").is_file()

    acc = events(run)
    prob = LOSSES[loss].prob  # D read as a probability, else raw critic scores: separate tags
    real, fake = (
        ("train/d_real_prob", "train/d_fake_prob")
        if prob
        else ("train/critic_real", "train/critic_fake")
    )
    for tag in ("train/d_loss", "train/g_loss", real, fake, "train/grad_norm_d", "train/lr_g"):
        assert scalar_steps(acc, tag) == [1, 2, 3], tag
    scalars = set(acc.Tags()["scalars"])
    other = "train/critic_real" if prob else "train/d_real_prob"  # one meaning per tag
    assert not {"train/d_real", "train/d_fake", other} & scalars
    assert {"val/samples", "val/real"} <= set(acc.Tags()["images"])
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step_000002.png",
        "step_000003.png",
    ]
    if loss == "wgan_gp":
        assert scalar_steps(acc, "train/gp") == [1, 2, 3]
    # Only a Lipschitz-constrained critic's score gap estimates W1 (not hinge's or LSGAN's).
    assert ("train/wasserstein" in scalars) == (loss in ("wgan", "wgan_gp"))
    if prob:
        assert all(0.0 <= e.value <= 1.0 for e in acc.Scalars(real))
    assert all(e.value > 0 for e in acc.Scalars("train/grad_norm_g"))
    assert [e.value for e in acc.Scalars("train/lr_d")] == pytest.approx([cfg.optim.d.lr] * 3)

    module, saved = load_task(run / "checkpoints" / "last.ckpt")
    assert saved.model.name == model and module.g_step == 3
    if loss == "wgan":  # weight clipping keeps every critic weight in [-c, c]
        values = torch.cat([p.flatten() for p in module.discriminator.parameters()])
        assert values.abs().max().item() <= 0.01 + 1e-8
    if loss == "wgan_gp":  # the critic follows the paper: no batch norm
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.discriminator.modules())


def test_resume_continues_counters_optimizers_and_logs(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    train(compose_train(first, ["trainer.max_steps=4"]))
    ckpt = first / "checkpoints" / "last.ckpt"
    train(compose_train(second, ["trainer.max_steps=8", f"ckpt_path={ckpt}"]))

    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["start_step"] == 4
    # 8 steps x batch 32 in all; the throughput counts only the 4 x 32 this session read
    assert metrics["real_images_seen"] == 8 * 32 and 0 < metrics["train_s"] <= metrics["wall_s"]
    assert metrics["imgs_per_s"] == pytest.approx(4 * 32 / metrics["train_s"], rel=0.02)
    state = read_checkpoint(second / "checkpoints" / "last.ckpt")
    assert state["ganarena"]["g_step"] == 8 and state["ganarena"]["d_step"] == 8
    # Adam's per-parameter step count continued from 4, i.e. the optimizer state was restored.
    g_opt, d_opt = state["optimizer_states"]
    assert next(iter(g_opt["state"].values()))["step"].item() == 8
    assert next(iter(d_opt["state"].values()))["step"].item() == 8
    # The resumed run logs steps 5..8 only: no duplicate step 0 or restart.
    assert scalar_steps(events(second), "train/g_loss") == [5, 6, 7, 8]
    # Same fixed latent batch, so sample grids stay comparable across the resume.
    before = read_checkpoint(ckpt)["state_dict"]["fixed_z"]
    assert torch.equal(before, state["state_dict"]["fixed_z"])


def test_ema_generator_is_kept_and_used_for_samples(tmp_path):
    run = tmp_path / "run"
    train(compose_train(run, ["model.ema_decay=0.5", "trainer.max_steps=4"]))
    module, _ = load_task(run / "checkpoints" / "last.ckpt")
    assert module.ema is not None and module.ema.n_averaged.item() == 4
    ema_w = next(module.ema.module.parameters())
    g_w = next(module.generator.parameters())
    assert not torch.allclose(ema_w, g_w)
    assert module.sampler is module.ema.module
    a, _ = module.sample(10, seed=3)
    b, _ = module.sample(10, seed=3)
    assert a.shape == (10, 1, 28, 28) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


def test_dcgan_sizes_itself_from_the_dataset(tmp_path):
    run = tmp_path / "run"
    train(
        compose_train(
            run,
            [
                "model=dcgan",
                "model.conditional=false",
                "dataset.image_size=32",
                "dataset.channels=3",
                "trainer.max_steps=2",
            ],  # fmt: skip
        )
    )
    module, _ = load_task(run / "checkpoints" / "last.ckpt")
    assert module.sample_fixed().shape == (64, 3, 32, 32)
