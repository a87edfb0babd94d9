"""experiment=stylegan2: the preset trains with every phase, and ganarena-generate's style-based
features (truncation, interpolation in W, style mixing) work through the task protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.errors import ConfigError
from ganarena.gan.sampling import interpolation_images, latent_endpoints, mixing_images
from ganarena.generate import generate
from ganarena.run.files import to_uint8
from ganarena.tasks import build_task, load_task, seeded_normal
from ganarena.train import train
from tests.conftest import compose_train, run_cli, save_untrained

STEPS = 5  # G steps: path length (every 4) fires at g_step 0 and 4, lazy R1 (every 16) at d_step 0
# The preset on the command line as a user gives it. The suite's FAST settings name model=mlp on
# the command line, which beats the preset's `override /model`, so the model is named again.
PRESET = ["experiment=stylegan2", "model=stylegan2"]
# The preset's recipe on networks small enough for a fast test (the algebra is the same).
SMALL = [
    *PRESET,
    "model.latent_dim=16",
    "model.w_dim=16",
    "model.channel_base=128",
    "model.channel_max=16",
    "dataset.limit=64",
    "dataset.batch_size=8",
    f"trainer.max_steps={STEPS}",
    f"callbacks.checkpoint.every_n_steps={STEPS}",
    f"callbacks.samples.every_n_steps={STEPS}",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 5-step experiment=stylegan2 run (small networks), logging every step."""
    out = tmp_path_factory.mktemp("sg2") / "run"
    train(compose_train(out, SMALL))
    return out


@pytest.fixture(scope="module")
def task(run):
    module, _ = load_task(run / "checkpoints" / "last.ckpt")
    return module


@pytest.fixture(scope="module")
def dcgan_ckpt(tmp_path_factory):
    """An untrained DCGAN in ganarena's checkpoint format (not style-based)."""
    root = tmp_path_factory.mktemp("dc")
    cfg = compose_train(root / "run", ["model=dcgan", "model.width=8"])
    return save_untrained(cfg, root / "dcgan.ckpt")


def gen_cfg(ckpt_path, out, *overrides):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("generate", overrides=[f"ckpt_path={ckpt_path}", f"out={out}", *overrides])


def read_png(path):
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im))


# -- the preset --------------------------------------------------------------------------------
def test_preset_composes_to_the_recipe(tmp_path):
    cfg = compose_train(tmp_path / "run", PRESET)
    assert cfg.model.name == "stylegan2" and cfg.loss.name == "nonsaturating"
    for opt in (cfg.optim.g, cfg.optim.d):
        assert opt.lr == 0.0025 and list(opt.betas) == [0.0, 0.99] and opt.eps == 1e-8
    assert cfg.regularizer.r1.gamma > 0 and cfg.regularizer.r1.interval == 16
    pl = cfg.regularizer.path_length
    assert (pl.weight, pl.interval, pl.decay, pl.batch_shrink) == (2.0, 4, 0.01, 2)
    assert cfg.model.style_mixing_prob == 0.9 and cfg.model.ema_decay is not None


def test_training_runs_every_phase_with_the_lazy_corrections(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    g, d = ckpt["ganarena"]["g_step"], ckpt["ganarena"]["d_step"]
    assert (g, d) == (STEPS, STEPS)  # n_critic 1
    # Lightning counts every optimizer step: G and D main steps, plus each lazy phase's own step
    # (due when the network's step count is a multiple of its interval, from 0).
    assert ckpt["global_step"] == g + d + math.ceil(g / 4) + math.ceil(d / 16)
    opt_g, opt_d = (s["param_groups"][0] for s in ckpt["optimizer_states"])
    for group, interval in ((opt_g, 4), (opt_d, 16)):
        ratio = interval / (interval + 1)  # StyleGAN2's mb_ratio
        assert group["lr"] == pytest.approx(0.0025 * ratio, rel=1e-12)
        assert group["betas"][0] == 0.0
        assert group["betas"][1] == pytest.approx(0.99**ratio, rel=1e-12)
        assert group["eps"] == 1e-8


def test_phase_and_generator_stats_are_logged(run, task):
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    scalars = {t: acc.Scalars(t) for t in acc.Tags()["scalars"]}
    for key in ("train/path_length", "train/pl_length", "train/r1", "train/w_avg_norm"):
        assert key in scalars, key
        assert all(math.isfinite(e.value) for e in scalars[key])
    assert [e.step for e in scalars["train/path_length"]] == [1, 5]  # g_step 0 and 4
    assert [e.step for e in scalars["train/w_avg_norm"]] == list(range(1, STEPS + 1))
    # StyleGAN2Generator.stats(): the norm of the tracked average w, as saved at the last step;
    # the EMA copy carries the same w_avg (buffers are copied, parameters averaged).
    w_avg = task.generator.mapping.w_avg
    assert scalars["train/w_avg_norm"][-1].value == pytest.approx(w_avg.norm().item(), rel=1e-5)
    assert w_avg.norm() > 0
    assert torch.equal(task.sampler.mapping.w_avg, w_avg)


# -- the task protocol -------------------------------------------------------------------------
def test_style_based_protocol(task):
    assert task.style_based
    z = seeded_normal(0, 0, 3, task.latent_dim)
    ws = task.map(z)
    assert ws.shape == (3, task.sampler.num_ws, 16)
    a, b = task.decode(z), task.synthesize(ws)
    assert torch.equal(a, b)  # decode = synthesize(map(.)), constant noise
    assert torch.equal(task.decode(z), a)  # deterministic
    truncated = task.map(z, psi=0.5)
    w_avg = task.sampler.mapping.w_avg
    torch.testing.assert_close(truncated, w_avg.lerp(ws, 0.5))


# -- ganarena-generate -------------------------------------------------------------------------
def test_psi_zero_gives_the_w_average_image_for_every_seed(run, task, tmp_path):
    ckpt = run / "checkpoints" / "last.ckpt"
    ws = task.sampler.mapping.w_avg.expand(1, task.sampler.num_ws, -1)
    average = to_uint8(task.synthesize(ws))[0, 0]
    for seed in (0, 7):
        out = tmp_path / f"seed{seed}"
        generate(gen_cfg(ckpt, out, "psi=0", "format=folder", "n=3", f"seed={seed}"))
        for i in range(3):
            assert torch.equal(read_png(out / f"{i:06d}.png"), average)
    plain = tmp_path / "plain"
    generate(gen_cfg(ckpt, plain, "format=folder", "n=2"))
    assert not torch.equal(read_png(plain / "000000.png"), read_png(plain / "000001.png"))


def test_w_interpolation_ends_at_the_two_latents_images(run, task, tmp_path):
    images, ws, _ = interpolation_images(task, steps=5, seed=3, space="w")
    z0, z1 = latent_endpoints(task.latent_dim, 3)
    ends = task.decode(torch.stack([z0, z1]))
    torch.testing.assert_close(images[0], ends[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(images[-1], ends[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(ws[2], (ws[0] + ws[-1]) / 2)  # straight line in W
    z_path, _, _ = interpolation_images(task, steps=5, seed=3, space="z")
    torch.testing.assert_close(z_path[0], images[0], atol=1e-5, rtol=0)  # same endpoints in z
    assert not torch.allclose(z_path[2], images[2])  # different paths in between

    out = tmp_path / "w.png"
    ckpt = run / "checkpoints" / "last.ckpt"
    paths = generate(gen_cfg(ckpt, out, "interpolate=true", "space=w", "steps=5", "seed=3"))
    assert paths == [out, tmp_path / "w.gif"]
    with Image.open(out) as im:
        assert im.size == (5 * 30 + 2, 32)


def test_style_mixing_figure(run, task, tmp_path):
    seeds = [2, 5, 9]
    figure = mixing_images(task, seeds, seeds).view(4, 4, 1, 28, 28)
    unmixed = task.decode(torch.cat([seeded_normal(s, 0, 1, task.latent_dim) for s in seeds]))
    assert (figure[0, 0] == -1).all()  # blank corner
    for i in range(3):
        torch.testing.assert_close(figure[0, i + 1], unmixed[i], atol=1e-5, rtol=0)  # top row
        torch.testing.assert_close(figure[i + 1, 0], unmixed[i], atol=1e-5, rtol=0)  # left column
        torch.testing.assert_close(figure[i + 1, i + 1], unmixed[i], atol=1e-5, rtol=0)  # diagonal
    assert not torch.allclose(figure[1, 2], unmixed[0], atol=1e-3)  # a real mix
    num_ws = task.sampler.num_ws
    rows_only = mixing_images(task, [2], [5], coarse=num_ws).view(2, 2, 1, 28, 28)
    cols_only = mixing_images(task, [2], [5], coarse=0).view(2, 2, 1, 28, 28)
    torch.testing.assert_close(rows_only[1, 1], unmixed[0], atol=1e-5, rtol=0)  # all styles of 2
    torch.testing.assert_close(cols_only[1, 1], unmixed[1], atol=1e-5, rtol=0)  # all styles of 5

    # ganarena-generate: (R+1) x (C+1) tiles of 28 px with make_grid's 2-px padding; a seed's
    # image is the first image of a plain grid of that seed
    out = tmp_path / "mix.png"
    ckpt = run / "checkpoints" / "last.ckpt"
    generate(gen_cfg(ckpt, out, "mix=true", "mix_rows=[2,5]", "mix_cols=[5,9,2]"))
    pixels = read_png(out)
    assert pixels.shape[:2] == (3 * 30 + 2, 4 * 30 + 2)
    for seed, (y, x) in ((9, (2, 62)), (2, (32, 2))):  # column seed 9; row seed 2, column 0
        generate(gen_cfg(ckpt, tmp_path / f"s{seed}", "format=folder", "n=1", f"seed={seed}"))
        tile = read_png(tmp_path / f"s{seed}" / "000000.png")  # 28 x 28, mode L
        assert torch.equal(pixels[y : y + 28, x : x + 28, 0], tile)
    with pytest.raises(ConfigError, match="overwrite=true"):
        generate(gen_cfg(ckpt, out, "mix=true"))
    with pytest.raises(ConfigError, match="mix_coarse"):
        generate(gen_cfg(ckpt, tmp_path / "bad.png", "mix=true", f"mix_coarse={num_ws + 1}"))


@pytest.mark.parametrize(
    "overrides",
    [["psi=0.7"], ["interpolate=true", "space=w"], ["mix=true"]],
    ids=["psi", "space_w", "mix"],
)
def test_refusals_for_a_generator_without_styles(dcgan_ckpt, tmp_path, overrides):
    out = tmp_path / "x.png"
    with pytest.raises(ConfigError, match="style-based generator") as err:
        generate(gen_cfg(dcgan_ckpt, out, *overrides))
    assert "model=dcgan" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_refusal_exit_code_and_path_length_needs_styles(dcgan_ckpt, tmp_path):
    proc = run_cli(
        ["ganarena.generate", f"ckpt_path={dcgan_ckpt}", f"out={tmp_path / 'x.png'}", "psi=0.5"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "style-based generator" in proc.stderr and "Traceback" not in proc.stderr
    cfg = compose_train(tmp_path / "run", ["model=dcgan", "regularizer=[path_length]"])
    with pytest.raises(ConfigError, match="style-based"):
        build_task(cfg)
