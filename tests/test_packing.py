"""PacGAN packing (ganarena.gan.packing, d_input=[pack<m>]): the transform, the discriminator built for
m x the channels, m = 1 exactly today's training, m = 2 on a 2-D and an image model."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from ganarena.errors import ConfigError
from ganarena.gan.packing import Pack, packed_discriminator
from ganarena.train import train
from tests.conftest import compose_train


def test_pack_stacks_consecutive_samples_along_channels():
    x = torch.arange(5 * 2 * 2 * 2, dtype=torch.float32).reshape(5, 2, 2, 2)
    out = Pack(2)(x, real=True)
    assert out.shape == (2, 4, 2, 2)  # the fifth image is dropped: packs are whole
    assert torch.equal(out[1, :2], x[2]) and torch.equal(out[1, 2:], x[3])
    assert Pack(1)(x, real=False) is x and not Pack(2).keeps_batch
    with pytest.raises(ConfigError, match="too few for one pack"):
        Pack(4)(x[:3], real=True)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="pack size m must be an integer >= 1"):
            Pack(bad)


def test_the_discriminator_is_built_for_m_times_the_channels():
    node = OmegaConf.create(
        {"_target_": "ganarena.models.MLPDiscriminator", "hidden": [8], "image_size": 4,
         "channels": 3, "norm": "none"}
    )  # fmt: skip
    d = packed_discriminator(node, 4)
    assert d(torch.zeros(5, 12, 4, 4)).shape == (5,)
    assert d.net[1].in_features == 12 * 16  # 4 x 3 channels of 4 x 4
    bare = OmegaConf.create({"_target_": "torch.nn.Identity"})
    with pytest.raises(ConfigError, match="no integer `channels` argument"):
        packed_discriminator(bare, 2)


def _weights(run) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_pack_of_one_is_exactly_the_unpacked_run(tmp_path):
    """m = 1 builds the same D from the same RNG and feeds it the same batches: identical weights."""
    plain = compose_train(tmp_path / "plain")
    packed = compose_train(tmp_path / "packed", ["d_input=[pack2]", "d_input.pack2.m=1"])
    for cfg in (plain, packed):
        train(cfg)
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "packed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (
        json.loads((tmp_path / "packed" / "metrics.json").read_text())["config"]["d_input"]
        == "pack2"
    )


@pytest.mark.parametrize(
    ("overrides", "first", "shape"),
    [
        # PacGAN's 2-D nets: D's first maxout layer reads 2 points x 2 coordinates
        (["model=pacgan_2d", "dataset=gaussian_mixture", "dataset.n_train=2000",
          "dataset.batch_size=40", "dataset.scale=1.0"],
         "discriminator.net.0.linear.weight", (1000, 4)),
        # an image model: DCGAN's first conv reads 2 digits
        (["model=dcgan"], "discriminator.net.0.weight", (32, 2, 4, 4)),
    ],
)  # fmt: skip
def test_pack_of_two_trains_a_2d_and_an_image_model(tmp_path, overrides, first, shape):
    cfg = compose_train(tmp_path / "run", [*overrides, "d_input=[pack2]", "trainer.max_steps=2"])
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["conditional"] is False
    assert tuple(_weights(tmp_path / "run")[first].shape) == shape


def test_packing_is_refused_with_a_conditional_discriminator(tmp_path):
    cfg = compose_train(
        tmp_path / "run", ["model=dcgan", "d_input=[pack2]", "model.conditional=true"]
    )
    with pytest.raises(ConfigError, match="class-conditional"):
        train(cfg)


def test_a_reproduction_preset_sweeps_its_rows_and_compare_sets_the_paper_beside_them(tmp_path):
    """experiment=repro_pacgan_ring -m runs the paper's rows (repro_row: packing + m x the batch)
    and ganarena-compare prints them in the paper's layout: our mean ± s.e. (checked against the
    jobs' own metrics.json) beside the published means of PacGAN's Table 1."""
    from tests.conftest import run_cli

    sweep = tmp_path / "sweep"
    res = run_cli(
        [
            "ganarena.train", "-m", "experiment=repro_pacgan_ring", "repro_row=gan,pac2",
            "seed=1,2", "trainer.max_steps=3", "dataset.n_train=2000", "eval.n_samples=300",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {}
    for job in sorted(p for p in sweep.iterdir() if (p / "metrics.json").is_file()):
        cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
        rows.setdefault(cfg.repro.row, []).append(job)
        packed = cfg.repro.row == "pac2"
        assert list(cfg.d_input) == (["pack2"] if packed else [])
        assert OmegaConf.select(cfg, "dataset.batch_size") == (200 if packed else 100)
    assert sorted(rows) == ["gan", "pac2"] and all(len(v) == 2 for v in rows.values())
    # Three steps cover no mode: give the jobs known scores, so the table's arithmetic shows.
    scores = {"gan": [(5, 0.25, 0.5), (8, 0.5, 0.25)], "pac2": [(7, 0.75, 0.125), (7, 0.25, 0.0)]}
    for row, jobs in rows.items():
        for job, (modes, hq, kl) in zip(jobs, scores[row], strict=True):
            m = json.loads((job / "metrics.json").read_text())
            m["final"].update(modes_covered=modes, high_quality=hq, class_kl=kl)
            (job / "metrics.json").write_text(json.dumps(m))

    res = run_cli(["ganarena.report.compare", str(sweep)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    table = res.stdout.split("## Beside the published numbers: PacGAN Table 1, 2-D ring")[1]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| row | modes") and lines[1].startswith("|---|")
    # mean ± sample std / sqrt(2) of the scores above, the paper's mean in brackets
    assert (
        lines[2]
        == "| GAN | 6.50 ± 1.50 (6.30) | 0.375 ± 0.125 (0.982) | 0.375 ± 0.125 (0.45) | 2 | 3 |"
    )
    assert (
        lines[3]
        == "| PacGAN2 | 7.00 ± 0 (7.90) | 0.5 ± 0.25 (0.956) | 0.0625 ± 0.0625 (0.07) | 2 | 3 |"
    )


def test_a_reproduction_row_without_its_preset_is_refused(tmp_path):
    from tests.conftest import run_cli

    res = run_cli(
        ["ganarena.train", "repro_row=pac2", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path
    )
    assert res.returncode == 2, res.stderr[-2000:]
    said = " ".join(res.stderr.split())  # the message is wrapped to the terminal
    assert "repro_row=pac2 picks a row of a paper's table" in said
    assert "experiment=repro_pacgan_ring repro_row=pac2" in said
    assert "Traceback" not in res.stderr and not (tmp_path / "run").exists()

    # packing by hand under a preset would be scored as the preset's row: refused, naming the row
    res = run_cli(
        ["ganarena.train", "experiment=repro_pacgan_ring", "d_input=[pack2]",
         f"hydra.run.dir={tmp_path / 'run'}"],
        tmp_path,
    )  # fmt: skip
    said = " ".join(res.stderr.split())
    assert res.returncode == 2 and "repro_row=gan" in said and "repro_row=pac2" in said, said
    assert not (tmp_path / "run").exists()
