"""ganarena-generate: grids, folders, interpolations, labels, determinism and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from ganarena.cli import run_cli as run_task
from ganarena.errors import CheckpointError, ConfigError
from ganarena.gan.sampling import (
    grid_labels,
    interpolate_latents,
    interpolation_images,
    latent_endpoints,
    run_generator,
    sample_stream,
    slerp,
)
from ganarena.generate import generate
from ganarena.run.files import to_uint8
from ganarena.tasks import load_task, seeded_normal
from ganarena.train import train
from tests.conftest import compose_train, run_cli, save_untrained


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A 2-step MLP run on 256 MNIST digits (seconds): an unconditional checkpoint."""
    run = tmp_path_factory.mktemp("gen") / "run"
    train(compose_train(run, ["trainer.max_steps=2"]))
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def cond_ckpt(tmp_path_factory):
    """An (untrained) conditional MLP saved in ganarena's checkpoint format."""
    root = tmp_path_factory.mktemp("gen_cond")
    cfg = compose_train(root / "run", ["model.conditional=true", "model.num_classes=10"])
    torch.manual_seed(0)
    return save_untrained(cfg, root / "cond.ckpt")


def gen_cfg(ckpt_path, out, *overrides):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("generate", overrides=[f"ckpt_path={ckpt_path}", f"out={out}", *overrides])


# -- latents -----------------------------------------------------------------------------------
def test_slerp_properties():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(64, generator=g), torch.randn(64, generator=g)
    path = interpolate_latents(z0, z1, 9)
    assert path.shape == (9, 64)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    # equal-norm endpoints: the path stays on the sphere, at constant angular speed
    z1s = z1 / z1.norm() * z0.norm()
    path = interpolate_latents(z0, z1s, 9)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(9), rtol=1e-5)
    unit = path / path.norm(dim=1, keepdim=True)
    angles = torch.arccos((unit[:-1] * unit[1:]).sum(1).clamp(-1, 1))
    assert torch.allclose(angles, angles.mean().expand(8), atol=1e-4)
    # orthogonal unit vectors: the midpoint is (e0 + e1) / sqrt(2), not the shorter (e0 + e1) / 2
    e0, e1 = torch.eye(2)
    mid = slerp(e0, e1, torch.tensor([0.5]))[0]
    assert torch.allclose(mid, torch.tensor([1.0, 1.0]) / math.sqrt(2), atol=1e-6)
    # parallel endpoints fall back to a straight line
    line = slerp(e0, 3 * e0, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(line[:, 0], torch.tensor([1.0, 2.0, 3.0])) and not line[:, 1].any()
    with pytest.raises(ConfigError, match="steps"):
        interpolate_latents(z0, z1, 1)


def test_label_layouts():
    assert grid_labels(6, 2, 10).tolist() == [0, 0, 1, 1, 2, 2]
    assert grid_labels(8, 2, 3).tolist() == [0, 0, 1, 1, 2, 2, 0, 0]


# -- outputs -----------------------------------------------------------------------------------
def test_grid_size_and_determinism(ckpt, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert generate(gen_cfg(ckpt, a, "n=12", "nrow=4", "seed=5")) == [a]
    generate(gen_cfg(ckpt, b, "n=12", "nrow=4", "seed=5"))
    generate(gen_cfg(ckpt, c, "n=12", "nrow=4", "seed=6"))
    with Image.open(a) as im:
        assert im.size == (4 * 30 + 2, 3 * 30 + 2)  # make_grid: 2-px padding around 28-px tiles
    assert a.read_bytes() == b.read_bytes()  # same seed -> same bytes
    assert a.read_bytes() != c.read_bytes()


def test_folder_counts_sizes_and_pixels(ckpt, tmp_path):
    out = tmp_path / "fake"
    generate(gen_cfg(ckpt, out, "format=folder", "n=12", "batch_size=5", "seed=3"))
    files = sorted(out.iterdir())
    assert [p.name for p in files] == [f"{i:06d}.png" for i in range(12)]
    module, _ = load_task(ckpt)
    expected = to_uint8(sample_stream(module, 12, seed=3, batch_size=5))
    for i, p in enumerate(files):
        with Image.open(p) as im:
            assert im.mode == "L" and im.size == (28, 28)  # grayscale stays one channel
            assert torch.equal(torch.from_numpy(np.array(im)), expected[i, 0])
    again = tmp_path / "again"
    generate(gen_cfg(ckpt, again, "format=folder", "n=12", "batch_size=5", "seed=3"))
    assert all((again / p.name).read_bytes() == p.read_bytes() for p in files)
    assert not list(tmp_path.glob(".*partial"))  # no temp folder left behind


def test_interpolation_endpoints_strip_and_gif(ckpt, tmp_path):
    module, _ = load_task(ckpt)
    images, z, label = interpolation_images(module, steps=6, seed=4)
    z0, z1 = latent_endpoints(module.latent_dim, 4)
    assert label is None and images.shape == (6, 1, 28, 28)
    assert torch.equal(z[0], z0) and torch.equal(z[-1], z1)
    ends = run_generator(module, torch.stack([z0, z1]))
    assert torch.allclose(images[0], ends[0], atol=1e-6)  # G(z0)
    assert torch.allclose(images[-1], ends[1], atol=1e-6)  # G(z1)
    assert not torch.allclose(images[0], images[-1])

    out = tmp_path / "interp.png"
    paths = generate(gen_cfg(ckpt, out, "interpolate=true", "steps=6", "seed=4"))
    gif = tmp_path / "interp.gif"
    assert paths == [out, gif]
    with Image.open(out) as im:
        assert im.size == (6 * 30 + 2, 32)
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (28, 28)
        im.seek(5)
        last = torch.from_numpy(np.array(im.convert("L")))
    assert torch.equal(last, to_uint8(images[-1])[0])
    # same seed -> same bytes, for the GIF too
    generate(gen_cfg(ckpt, tmp_path / "again.gif", "interpolate=true", "steps=6", "seed=4"))
    assert (tmp_path / "again.gif").read_bytes() == gif.read_bytes()
    assert (tmp_path / "again.png").read_bytes() == out.read_bytes()


# -- conditional models ------------------------------------------------------------------------
def test_conditional_label(cond_ckpt, tmp_path):
    module, _ = load_task(cond_ckpt)
    assert module.num_classes == 10
    out = tmp_path / "three.png"
    generate(gen_cfg(cond_ckpt, out, "label=3", "n=4", "nrow=4", "seed=0"))
    folder = tmp_path / "threes"
    generate(gen_cfg(cond_ckpt, folder, "format=folder", "label=3", "n=4", "seed=0"))
    z = seeded_normal(0, 0, 4, module.latent_dim)  # the latents of task.sample(4, seed=0)
    expected = to_uint8(run_generator(module, z, torch.full((4,), 3)))
    other = to_uint8(run_generator(module, z, torch.full((4,), 4)))
    assert not torch.equal(expected, other)
    for i in range(4):
        with Image.open(folder / f"{i:06d}.png") as im:
            pixels = torch.from_numpy(np.array(im))
        assert torch.equal(pixels, expected[i, 0])
    # without a label: a folder cycles through the classes 0..9, 0.. (as task.sample does for
    # ganarena-eval), so its images match the evaluation's samples
    generate(gen_cfg(cond_ckpt, tmp_path / "all", "format=folder", "n=12", "batch_size=6"))
    z = seeded_normal(0, 0, 12, module.latent_dim)
    y = torch.arange(12) % 10
    expected = to_uint8(run_generator(module, z, y))
    for i in range(12):
        with Image.open(tmp_path / "all" / f"{i:06d}.png") as im:
            assert torch.equal(torch.from_numpy(np.array(im)), expected[i, 0])
    # a grid shows one class per row; an interpolation uses a seeded class
    generate(gen_cfg(cond_ckpt, tmp_path / "rows.png", "n=20", "nrow=10"))
    _, _, label = interpolation_images(module, steps=3, seed=0)
    assert label in range(10)
    assert interpolation_images(module, steps=3, seed=0, label=7)[2] == 7


@pytest.mark.parametrize("label", [10, -1, "three"])
def test_conditional_bad_label(cond_ckpt, tmp_path, label):
    with pytest.raises(ConfigError, match="0 to 9"):
        generate(gen_cfg(cond_ckpt, tmp_path / "x.png", f"label={label}"))
    assert not (tmp_path / "x.png").exists()


def test_label_refused_on_unconditional(ckpt, tmp_path):
    with pytest.raises(ConfigError, match="unconditional"):
        generate(gen_cfg(ckpt, tmp_path / "x.png", "label=3"))


# -- refusals ----------------------------------------------------------------------------------
def test_refuses_to_overwrite(ckpt, tmp_path):
    out = tmp_path / "g.png"
    out.write_bytes(b"keep me")
    with pytest.raises(ConfigError, match="overwrite=true"):
        generate(gen_cfg(ckpt, out, "n=4"))
    assert out.read_bytes() == b"keep me"
    generate(gen_cfg(ckpt, out, "n=4", "overwrite=true"))
    assert out.read_bytes().startswith(b"\x89PNG")

    folder = tmp_path / "fake"
    generate(gen_cfg(ckpt, folder, "format=folder", "n=7"))
    with pytest.raises(ConfigError, match="overwrite=true"):
        generate(gen_cfg(ckpt, folder, "format=folder", "n=3"))
    generate(gen_cfg(ckpt, folder, "format=folder", "n=3", "overwrite=true"))
    assert len(list(folder.iterdir())) == 3  # no stale images from the earlier, larger run
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="did not write"):
        generate(gen_cfg(ckpt, folder, "format=folder", "n=3", "overwrite=true"))
    assert (folder / "notes.txt").exists()

    (tmp_path / "interp.gif").write_bytes(b"old")
    with pytest.raises(ConfigError, match="interp.gif"):
        generate(gen_cfg(ckpt, tmp_path / "interp.png", "interpolate=true"))
    assert not (tmp_path / "interp.png").exists()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["format=zip"], "format"),
        (["n=0"], "n must"),
        (["seed=-1"], "seed"),
        (["interpolate=true", "steps=1"], "steps"),
        (["interpolate=true", "format=folder"], "interpolate"),
        pytest.param(
            ["device=cuda"],
            "CUDA",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available"),
        ),
    ],
)
def test_bad_settings(ckpt, tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
        generate(gen_cfg(ckpt, tmp_path / "x.png", *overrides))


def test_bad_output_names(ckpt, tmp_path):
    with pytest.raises(ConfigError, match="image extension"):
        generate(gen_cfg(ckpt, tmp_path / "grid", "n=4"))
    with pytest.raises(ConfigError, match="folder"):
        generate(gen_cfg(ckpt, tmp_path / "x.png", "format=folder", "n=4"))


def test_bad_checkpoints(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    for path, match in [
        (tmp_path / "missing.ckpt", "not found"),
        (corrupt, "corrupt"),
        (foreign, "not written by ganarena"),
    ]:
        with pytest.raises(CheckpointError, match=match):
            generate(gen_cfg(path, tmp_path / "x.png"))
    # through the CLI wrapper: one paragraph on stderr, exit status 2
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("generate", overrides=[f"out={tmp_path / 'x.png'}"])
    with pytest.raises(SystemExit) as e:
        run_task(generate, cfg, "ganarena-generate")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ganarena-generate: error:") and "ckpt_path=" in err


def test_cli(ckpt, tmp_path):
    out = tmp_path / "cli.png"
    proc = run_cli(["ganarena.generate", f"ckpt_path={ckpt}", f"out={out}", "n=4"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    with Image.open(out) as im:
        assert im.size == (4 * 30 + 2, 32)
    # (the error path, exit status 2 with a one-paragraph message, is checked in-process above)
