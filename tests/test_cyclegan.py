"""CycleGAN as a task: its losses by hand, exact resume (LR schedule, image pools), the
translation evaluator, ganarena-generate's translate mode, sweeps and bad input."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from lightning.pytorch.loggers.logger import Logger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from ganarena.data import DigitsDataModule, TransformedDataModule, UnpairedDataModule
from ganarena.errors import ConfigError, DataError
from ganarena.generate import generate
from ganarena.metrics import build_evaluator
from ganarena.run.config import build
from ganarena.tasks import CycleGANTask, read_checkpoint
from ganarena.tasks.cyclegan import linear_decay
from ganarena.train import train
from tests.conftest import cli_cache, compose_train

# A CycleGAN small enough for a few CPU steps: 64 digits per domain, 4 px wide networks.
TINY = [
    "experiment=cyclegan_digits",
    "model=resnet",  # after conftest.FAST's model=mlp (the command line beats the preset)
    "dataset=mnist2inverted",  # and its dataset=mnist_sample
    "dataset.limit=64",
    "dataset.batch_size=4",
    "model.generator.width=4",
    "model.generator.n_blocks=1",
    "model.discriminator.width=4",
    "task.pool_size=3",  # full after one batch of 4: later batches swap stored fakes
    "eval=none",
]


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


@pytest.fixture
def console_script(monkeypatch):
    """Run `ganarena-train` in this process with these arguments (Hydra's launcher runs sweep jobs
    in-process too); the logging handlers Hydra installs are removed afterwards, so later tests
    do not write to this test's captured streams."""
    from ganarena.train import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(args: list[str]) -> None:
        monkeypatch.setattr("sys.argv", ["ganarena-train", *args])
        main()

    yield run
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


# -- the losses of one step, by hand ------------------------------------------------------------


class Scale(nn.Module):
    """x -> w * x: a translator or a (per-pixel) discriminator whose outputs are easy to write."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return self.w * x


class Capture(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    @property
    def name(self) -> str:
        return "capture"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, dict(metrics)))

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass


def tiny_unpaired() -> UnpairedDataModule:
    dm = UnpairedDataModule(
        DigitsDataModule(image_size=8, batch_size=4, limit=8, part="first_half"),
        TransformedDataModule(
            DigitsDataModule(image_size=8, batch_size=4, limit=8, part="second_half"), "invert"
        ),
        batch_size=4,
    )
    dm.setup()
    return dm


def test_one_step_losses_match_a_hand_computation():
    """G = a*x, F = b*x, D_A = c_a*x, D_B = c_b*x (per-pixel logits), LSGAN: every term of the
    first step written out, with lambda_adv, lambda_cycle x lambda_identity and the 0.5 on D."""
    a, b, c_a, c_b = 0.5, -0.8, 0.3, -0.6
    adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
    task = CycleGANTask(
        Scale(a), Scale(b), Scale(c_a), Scale(c_b), "lsgan", adam, adam, image_size=8,
        channels=1, lambda_cycle=10.0, lambda_identity=0.5, lambda_adv=2.0, pool_size=50,
        n_fixed=2, decay_start=1.0, max_steps=1, log_every_n_steps=1, fused_optimizers=False,
    )  # fmt: skip
    dm = tiny_unpaired()
    ia, ib = dm.sampler.batch(0)
    xa, xb = dm.a.images[ia].double().numpy(), dm.b.images[ib].double().numpy()

    def mse(t, target):  # 1/2 E[(t - target)^2]: ganarena's lsgan terms
        return 0.5 * np.mean((t - target) ** 2)

    adv = mse(c_b * a * xa, 1) + mse(c_a * b * xb, 1)
    cycle = np.mean(np.abs(b * a * xa - xa)) + np.mean(np.abs(a * b * xb - xb))
    identity = np.mean(np.abs(a * xb - xb)) + np.mean(np.abs(b * xa - xa))
    g_loss = 2.0 * adv + 10.0 * cycle + 10.0 * 0.5 * identity
    d_a = mse(c_a * xa, 1) + mse(c_a * b * xb, 0)  # real A vs F(b) (the pool is still filling)
    d_b = mse(c_b * xb, 1) + mse(c_b * a * xa, 0)  # real B vs G(a)
    expected = {
        "train/g_adv": adv, "train/cycle_l1": cycle, "train/identity_l1": identity,
        "train/g_loss": g_loss, "train/d_a_loss": d_a, "train/d_b_loss": d_b,
        "train/d_loss": 0.5 * (d_a + d_b), "train/lr_g": 2e-4, "train/lr_d": 2e-4,
    }  # fmt: skip

    logger = Capture()
    trainer = L.Trainer(
        max_epochs=-1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", devices=1,
    )  # fmt: skip
    trainer.fit(task, datamodule=dm)
    assert task.g_step == task.d_step == 1 and task.real_images_seen == 8
    (step, logged), *_ = [r for r in logger.rows if "train/g_loss" in r[1]]
    assert step == 1
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-5), key
    # Both networks moved: G by the generator step, D by the discriminator step.
    assert task.generator_ab.w.item() != a and task.discriminator_b.w.item() != c_b
    assert len(task.pool_a) == len(task.pool_b) == 4
    # The fixed inputs come from the data, seeded, and the grid is (input, translation, back).
    grid = task.sample_fixed()
    assert grid.shape == (2 * 2 * 3, 1, 8, 8)
    wa = task.generator_ab.w.item()
    assert torch.allclose(grid[1], wa * grid[0]) and bool((grid[0] != 0).any())


def test_linear_decay_is_the_reference_rule_in_generator_steps():
    rule = linear_decay(10, 0.5)  # 5 constant steps, then 1 - (s + 1 - 5) / 6
    assert [rule(s) for s in range(5)] == [1.0] * 5
    assert [rule(s) for s in range(5, 10)] == pytest.approx([5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert linear_decay(None, 0.5)(10**6) == 1.0


# -- a run, and its resume ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """Four generator steps in one go, checkpoints at steps 2 and 4."""
    run = tmp_path_factory.mktemp("cyclegan") / "straight"
    train(compose_train(run, [*TINY, "trainer.max_steps=4", "callbacks.checkpoint.keep=5"]))
    return run


def test_resume_mid_run_continues_schedule_and_pools_exactly(straight, tmp_path):
    resumed = tmp_path / "resumed"
    ckpt = straight / "checkpoints" / "step_000002.ckpt"
    train(compose_train(resumed, [*TINY, "trainer.max_steps=4", f"ckpt_path={ckpt}"]))
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = read_checkpoint(resumed / "checkpoints" / "last.ckpt")
    assert a["ganarena"]["g_step"] == b["ganarena"]["g_step"] == 4
    assert a["global_step"] == 8  # Lightning counts both optimizers' steps
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    for side in ("a", "b"):
        pa, pb = a["ganarena_pools"][side], b["ganarena_pools"][side]
        assert pa["images"].shape[0] == 3  # full: the resumed run had to restore its contents
        assert torch.equal(pa["images"], pb["images"]) and torch.equal(
            pa["generator"], pb["generator"]
        )
    for sa, sb in zip(a["lr_schedulers"], b["lr_schedulers"], strict=True):
        assert sa["last_epoch"] == sb["last_epoch"] == 4 and sa["_last_lr"] == sb["_last_lr"]
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        assert oa["param_groups"][0]["lr"] == ob["param_groups"][0]["lr"] == 0.0  # decayed to 0
        for i, state in oa["state"].items():
            assert torch.equal(state["exp_avg_sq"], ob["state"][i]["exp_avg_sq"])
    # The rate used at each step: constant for half of max_steps, then linear decay.
    lr = [v for _, v in scalars(straight, "train/lr_g")]
    assert lr == pytest.approx([2e-4, 2e-4, 2e-4 * 2 / 3, 2e-4 / 3], rel=1e-6)
    assert scalars(resumed, "train/g_loss") == scalars(straight, "train/g_loss")[2:]
    assert scalars(resumed, "train/d_loss") == scalars(straight, "train/d_loss")[2:]
    grid = "samples/step_000004.png"  # same fixed inputs, same weights: the same picture
    assert (resumed / grid).read_bytes() == (straight / grid).read_bytes()
    with Image.open(straight / grid) as im:
        assert im.size == (3 * 30 + 2, 16 * 30 + 2)  # rows of (input, G(input), back) x 8 x 2
    metrics = json.loads((straight / "metrics.json").read_text())
    assert metrics["config"]["task"] == "cyclegan" and metrics["config"]["lambda_cycle"] == 10.0


# -- ganarena-generate translate=... -------------------------------------------------------------


def generate_cfg(overrides: list[str]):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("generate", overrides=overrides)


def write_pngs(folder: Path, n: int, size: int, mode: str = "L") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_translate_tool_is_deterministic_and_refuses_to_overwrite(straight, tmp_path):
    ckpt = straight / "checkpoints" / "last.ckpt"
    src = tmp_path / "in"
    write_pngs(src, 3, 40)
    write_pngs(src / "sub", 1, 40, "RGB")  # converted to the model's one channel

    def run(out, *extra):
        return generate(
            generate_cfg([f"ckpt_path={ckpt}", f"translate={src}", f"out={out}", *extra])
        )

    assert run(tmp_path / "one", "direction=ba") == [tmp_path / "one"]
    run(tmp_path / "two", "direction=ba")
    names = sorted(str(p.relative_to(tmp_path / "one")) for p in (tmp_path / "one").rglob("*.png"))
    assert names == ["0.png", "1.png", "2.png", "sub/0.png"]
    for name in names:
        first = (tmp_path / "one" / name).read_bytes()
        assert first == (tmp_path / "two" / name).read_bytes()
        with Image.open(tmp_path / "one" / name) as im:
            assert im.size == (28, 28) and im.mode == "L"
    # The translation is G's (ab) or F's (ba): different nets, different pictures.
    run(tmp_path / "ab", "direction=ab")
    assert (tmp_path / "ab" / "0.png").read_bytes() != (tmp_path / "one" / "0.png").read_bytes()

    before = {p: p.read_bytes() for p in (tmp_path / "one").rglob("*.png")}
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        run(tmp_path / "one", "direction=ab")
    assert {p: p.read_bytes() for p in (tmp_path / "one").rglob("*.png")} == before
    run(tmp_path / "one", "direction=ab", "overwrite=true")
    assert (tmp_path / "one" / "0.png").read_bytes() == (tmp_path / "ab" / "0.png").read_bytes()
    (tmp_path / "one" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="did not write"):
        run(tmp_path / "one", "overwrite=true")
    assert (tmp_path / "one" / "notes.txt").read_text() == "mine"
    for out, match in (
        (src / "inside", "overlap"),
        (tmp_path / "x.png", "looks like an image file"),
    ):
        with pytest.raises(ConfigError, match=match):
            run(out)
    with pytest.raises(ConfigError, match="direction must be ab"):
        run(tmp_path / "three", "direction=xy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images"):
        generate(generate_cfg([f"ckpt_path={ckpt}", f"translate={tmp_path / 'empty'}", "out=o"]))
    with pytest.raises(ConfigError, match="translation task.*translate=<folder"):
        generate(generate_cfg([f"ckpt_path={ckpt}", f"out={tmp_path / 'grid.png'}"]))
    assert not (tmp_path / "grid.png").exists()


def test_translate_refuses_a_gan_checkpoint(tmp_path):
    gan = tmp_path / "gan"
    train(compose_train(gan, ["trainer.max_steps=1"]))
    write_pngs(tmp_path / "in", 2, 28)
    cfg = generate_cfg(
        [f"ckpt_path={gan / 'checkpoints' / 'last.ckpt'}", f"translate={tmp_path / 'in'}",
         f"out={tmp_path / 'out'}"]
    )  # fmt: skip
    with pytest.raises(ConfigError, match="translate= needs a translation checkpoint.*Drop"):
        generate(cfg)
    assert not (tmp_path / "out").exists()


# -- the translation evaluator ------------------------------------------------------------------


def test_ganarena_eval_scores_a_cyclegan_checkpoint(straight, tmp_path, capsys):
    from ganarena.evaluate import evaluate

    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[f"ckpt_path={straight / 'checkpoints' / 'last.ckpt'}", "eval.n_samples=16"]
            + ["eval.classifier.epochs=1", f"paths.cache_dir={cli_cache(tmp_path)}"],
        )
    result = evaluate(cfg)  # the checkpoint's own data (mnist2inverted) picks the evaluator
    assert json.loads(capsys.readouterr().out) == result
    scores = result["scores"]
    assert {"fid_ab", "fid_ba", "label_acc_ab", "cycle_l1_b", "truth_l1_ba"} <= set(scores)
    assert scores["fid"] == pytest.approx((scores["fid_ab"] + scores["fid_ba"]) / 2)
    assert result["eval"]["backbone"] == "translation" and result["inputs"]["step"] == 4


class Mapping:
    """A stand-in translation task: fixed functions for both directions."""

    device = torch.device("cpu")

    def __init__(self, ab, ba) -> None:
        self.maps = {"ab": ab, "ba": ba}

    def translate(self, x, direction):
        return self.maps[direction](x).float()


def test_evaluator_truth_and_label_preservation_on_mnist2inverted(cache_dir):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["dataset=mnist2inverted", "dataset.limit=500", "eval.n_samples=200"]
            + ["eval.classifier.epochs=3", "eval.classifier.batch_size=32"]
            + ["eval.classifier.width=16"],
        )
    dm = build(cfg.dataset)
    dm.setup()
    evaluator = build_evaluator(cfg.eval, dm, str(cache_dir))
    truth = evaluator.score_module(Mapping(dm.truth_ab, dm.truth_ba))
    identity = evaluator.score_module(Mapping(lambda x: x, lambda x: x))

    # The exact map: no error against the truth, none around the cycle.
    for key in ("truth_l1_ab", "truth_l1_ba", "cycle_l1_a", "cycle_l1_b"):
        assert truth[key] == 0.0, key
    assert truth["fid"] == pytest.approx((truth["fid_ab"] + truth["fid_ba"]) / 2)
    # No translation at all: every pixel has the wrong polarity, |x - (-x)| = 2|x|.
    src_a, labels_a = evaluator.sources["ab"]
    assert identity["truth_l1_ab"] == pytest.approx(2 * src_a.abs().mean().item(), rel=1e-6)
    assert identity["cycle_l1_a"] == 0.0
    # Label preservation: the share of G(a) that B's classifier reads as a's label.
    _, logits = evaluator.targets["ab"].features(src_a)
    assert identity["label_acc_ab"] == pytest.approx((logits.argmax(1) == labels_a).double().mean())
    accuracy = evaluator.settings["classifier_accuracy_ab"]
    assert truth["label_acc_ab"] > 0.5 * accuracy > identity["label_acc_ab"]
    assert truth["fid_ab"] < identity["fid_ab"] and truth["fid_ba"] < identity["fid_ba"]
    settings = evaluator.settings
    assert settings["backbone"] == "translation" and settings["n_fake_ab"] == 200
    assert settings["ab"]["dataset"] == "mnist_sample+invert" and settings["truth_known"]


def test_verdict_reads_translation_scores():
    from ganarena.report.verdict import verdict

    settings = {"backbone": "translation", "classifier_accuracy_ab": 0.95,
                "classifier_accuracy_ba": 0.95, "real_floor_fid_ab": 5.0,
                "real_floor_fid_ba": 5.0}  # fmt: skip
    good = {"fid_ab": 6.0, "fid_ba": 7.0, "label_acc_ab": 0.93, "label_acc_ba": 0.9,
            "cycle_l1_a": 0.05, "cycle_l1_b": 0.06, "truth_l1_ab": 0.1, "truth_l1_ba": 0.1}  # fmt: skip
    assert verdict("completed", good, settings)[0] == "healthy"
    assert verdict("completed", {**good, "fid_ab": 30.0}, settings)[0] == "partial"
    word, sentence = verdict(
        "completed", {**good, "label_acc_ab": 0.1, "label_acc_ba": 0.12}, settings
    )
    assert word == "collapsed" and "lambda_cycle" in sentence
    assert "L1 to the truth 0.100/0.100" in verdict("completed", good, settings)[1]


# -- sweeps --------------------------------------------------------------------------------------


def test_sweep_over_lambda_cycle_is_compared_by_it(tmp_path, monkeypatch, console_script):
    from ganarena.report.compare import compare

    sweep = tmp_path / "sweep"
    monkeypatch.setenv("GANARENA_CACHE", cli_cache(tmp_path))
    console_script(
        ["-m", *TINY[:-1], "dataset.limit=32", "trainer.max_steps=2",
         "trainer.enable_progress_bar=false", "eval.n_samples=16", "eval.every_n_steps=0",
         "eval.classifier.epochs=1", "task.lambda_cycle=5,10", f"hydra.sweep.dir={sweep}"]
    )  # fmt: skip
    jobs = [json.loads((sweep / j / "metrics.json").read_text()) for j in ("0", "1")]
    assert [m["config"]["lambda_cycle"] for m in jobs] == [5.0, 10.0]
    for m in jobs:
        assert m["status"] == "completed" and m["eval"]["backbone"] == "translation"
        assert m["final"]["fid"] == pytest.approx((m["final"]["fid_ab"] + m["final"]["fid_ba"]) / 2)
    result = compare([sweep], out=tmp_path / "cmp", group_by=["lambda_cycle"])
    rows = [line for line in result.markdown.splitlines() if line.startswith(("| 5 |", "| 10 |"))]
    assert len(rows) == 2


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (["task=cyclegan", "model=resnet"], ConfigError, "two domains.*dataset=mnist2inverted"),
        (
            ["experiment=cyclegan_digits", "dataset=mnist2inverted", "model=dcgan"],
            ConfigError,
            "maps images to images.*model=resnet",
        ),
        (["model=resnet"], ConfigError, "model=resnet maps images to images.*task=cyclegan"),
        (["dataset=mnist2inverted"], ConfigError, "two image domains.*task=gan"),
        ([*TINY, "loss=wgan"], ConfigError, "optim.n_critic=5 cannot apply"),
        ([*TINY, "augment=diffaugment"], ConfigError, "does not augment"),
        ([*TINY, "dataset.domain_b.base.channels=3"], ConfigError, "same channels"),
        ([*TINY, "task.decay_start=2"], ConfigError, "decay_start must be a fraction"),
    ],
)
def test_bad_combinations_are_refused(tmp_path, overrides, error, match):
    with pytest.raises(error, match=match):
        train(compose_train(tmp_path / "run", overrides))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_empty_domain_is_refused_with_one_paragraph_and_nothing_lost(
    tmp_path, capsys, console_script
):
    root = tmp_path / "data"
    write_pngs(root / "trainA", 4, 16)
    (root / "trainB").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")  # an earlier run's result must survive
    with pytest.raises(SystemExit) as exit_info:
        console_script(
            [*TINY, "dataset=unpaired_folder", f"dataset.root={root}", "dataset.image_size=16",
             "dataset.channels=1", f"hydra.run.dir={run}", "overwrite=true"]
        )  # fmt: skip
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    error = stderr[stderr.index("ganarena-train: error:") :].strip()
    assert "\n\n" not in error and "Traceback" not in stderr  # one paragraph
    assert "domain B ('trainB'" in " ".join(error.split()) and "No images" in error
    assert (run / "metrics.json").read_text() == "{}"
    (root / "trainB").rmdir()
    cfg = compose_train(tmp_path / "r2", [*TINY, "dataset=unpaired_folder", f"dataset.root={root}"])
    with pytest.raises(DataError, match="needs trainB"):
        train(cfg)
