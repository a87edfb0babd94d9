"""Nothing lost, no tracebacks: the filesystem and size cases of the bad-input list (issue "the bad
inputs that still get through"). Each case exits 2 (or raises the one-paragraph GanarenaError
in-process), and every file that was there before is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from PIL import Image

from ganarena.errors import ConfigError, DivergedError
from ganarena.evaluate import evaluate
from ganarena.generate import generate
from ganarena.report.compare import compare
from ganarena.run import runfolder
from ganarena.train import train
from tests.conftest import FAST, compose_train, run_cli, run_clis


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_refused(res, *needles: str) -> None:
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    message = res.stderr[res.stderr.index("error:") :]
    for needle in needles:
        assert needle in " ".join(message.split()), message


def train_in(run: Path, *overrides: str) -> None:
    """ganarena-train (3 MLP steps unless overridden) into `run`, which must succeed."""
    res = run_cli(
        ["ganarena.train", *FAST, "logger=none", *overrides, f"hydra.run.dir={run}"],
        cwd=run.parent,
    )
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A completed CLI run (3 MLP steps, eval off): metrics.json, last.ckpt, .hydra/."""
    root = tmp_path_factory.mktemp("nothing_lost")
    run = root / "run"
    train_in(run)
    assert (run / "metrics.json").is_file() and (run / ".hydra" / "config.yaml").is_file()
    return run


def test_a_finished_run_folder_is_never_reused_without_resume_or_overwrite(finished, tmp_path):
    before = snapshot(finished)
    res = run_cli(["ganarena.train", *FAST, f"hydra.run.dir={finished}"], cwd=tmp_path)
    assert_refused(res, "already holds a run", "ckpt_path=last", "overwrite=true")
    assert snapshot(finished) == before  # metrics.json, last.ckpt and .hydra/* untouched
    # In-process, train() itself refuses too (for code that calls it without the CLI).
    cfg = compose_train(finished, ["logger=none"])
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg)
    assert snapshot(finished) == before


def test_another_runs_checkpoint_never_replaces_a_finished_run(finished, tmp_path):
    import shutil

    other, here = tmp_path / "other", tmp_path / "here"
    shutil.copytree(finished, other)
    shutil.copytree(finished, here)
    before = snapshot(here)
    ckpt = other / "checkpoints" / "last.ckpt"
    res = run_cli(
        ["ganarena.train", *FAST, f"hydra.run.dir={here}", f"ckpt_path={ckpt}",
         "trainer.max_steps=4"],
        cwd=tmp_path,
    )  # fmt: skip
    assert_refused(res, "a checkpoint of another run", f"hydra.run.dir={other} ckpt_path=last")
    assert snapshot(here) == before
    cfg = compose_train(here, ["logger=none", f"ckpt_path={ckpt}", "trainer.max_steps=4"])
    with pytest.raises(ConfigError, match="a checkpoint of another run"):
        train(cfg)
    assert snapshot(here) == before
    # a checkpoint inside the folder is its own run: resuming it there is allowed
    cfg = compose_train(here, ["logger=none", f"ckpt_path={here / 'checkpoints' / 'last.ckpt'}",
                               "trainer.max_steps=4"])  # fmt: skip
    train(cfg)
    assert json.loads((here / "metrics.json").read_text())["steps"] == 4


def test_resuming_or_overwriting_in_place_appends_to_the_record(finished, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    old = {f: (run / ".hydra" / f).read_bytes() for f in runfolder.HYDRA_FILES}
    train_in(run, "trainer.max_steps=5", "ckpt_path=last")
    history = run / ".hydra" / "history" / "1"
    assert {f: (history / f).read_bytes() for f in runfolder.HYDRA_FILES} == old
    assert "ckpt_path=last" in (run / ".hydra" / "overrides.yaml").read_text()
    assert json.loads((run / "metrics.json").read_text())["steps"] == 5
    assert sorted(p.name for p in (run / "checkpoints").glob("last*")) == ["last.ckpt"]
    # overwrite=true starts over in the folder; the resumed attempt's settings stay on record.
    resumed_config = (run / ".hydra" / "config.yaml").read_bytes()
    train_in(run, "overwrite=true", "seed=5")
    assert (run / ".hydra" / "history" / "2" / "config.yaml").read_bytes() == resumed_config
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"]["seed"] == 5 and metrics["steps"] == 3


def test_refusals_before_training_leave_no_stub_folder(finished, tmp_path):
    ckpt = finished / "checkpoints" / "last.ckpt"
    bad = {
        "stale": ([f"ckpt_path={ckpt}", "trainer.max_steps=2"], ["at generator step 3",
                  "trainer.max_steps=6"]),
        "typo": (["+max_step=10"], ["adds an option that ganarena does not read"]),
        "file": ([], ["is a file, not a folder"]),
    }  # fmt: skip
    (tmp_path / "file").write_text("keep me\n")
    results = run_clis(
        [["ganarena.train", *FAST, *ov, f"hydra.run.dir={tmp_path / name}"]
         for name, (ov, _) in bad.items()],
        cwd=tmp_path,
    )  # fmt: skip
    for (name, (_, needles)), res in zip(bad.items(), results, strict=True):
        target = tmp_path / name
        assert_refused(res, *needles)
        if name == "file":
            assert target.read_text() == "keep me\n"
        else:
            assert not target.exists(), f"{name}: a stub run folder was left behind"


def test_added_keys_reach_constructors_or_are_refused(tmp_path):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        for override, ok in [
            ("+foo=1", False),
            ("+model.foo=1", False),
            ("+trainer.fast_dev_run=false", True),
            ("+optim.d.amsgrad=true", True),
        ]:
            cfg = compose("train", overrides=[override], return_hydra_config=True)
            problem = runfolder.check_added_keys(cfg)
            assert (problem is None) == ok, (override, problem)


def test_unwritable_places_are_refused_up_front(tmp_path, monkeypatch, capsys):
    """Read-only folders (simulated: tests may run as root, which ignores permissions)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro and real_access(p, mode))
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.run.dir={ro / 'run'}"], return_hydra_config=True)
    with pytest.raises(SystemExit) as exit_info:
        runfolder.RunFolderGuard().on_run_start(cfg)
    assert exit_info.value.code == 2 and "not writable" in capsys.readouterr().err
    assert not (ro / "run").exists()
    # A read-only working directory: the default outputs/train/runs/<time>/ cannot be made there.
    monkeypatch.chdir(ro)
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    with pytest.raises(SystemExit) as exit_info:
        runfolder.RunFolderGuard().on_run_start(cfg)
    err = " ".join(capsys.readouterr().err.split())
    assert exit_info.value.code == 2 and "writable working directory" in err
    assert list(ro.iterdir()) == []
    monkeypatch.chdir(tmp_path)
    # The cache (GANARENA_CACHE) in a read-only place: refused before the classifier trains.
    cfg = compose_train(tmp_path / "r", ["eval=domain", f"paths.cache_dir={ro / 'cache'}"])
    with pytest.raises(ConfigError, match="cache folder"):
        train(cfg)


def test_cache_that_is_a_file_and_impossible_sizes_are_refused(tmp_path):
    (tmp_path / "cachefile").write_text("x")
    cfg = compose_train(
        tmp_path / "a", ["eval=domain", f"paths.cache_dir={tmp_path / 'cachefile'}"]
    )
    with pytest.raises(ConfigError, match="cachefile is a file"):
        train(cfg)
    with pytest.raises(ConfigError, match=r"image_size=100000 .* needs at least [\d.]+ TB"):
        train(compose_train(tmp_path / "b", ["dataset.image_size=100000"]))
    assert (tmp_path / "cachefile").read_text() == "x"


def test_generate_refuses_what_cannot_be_written(finished, tmp_path, monkeypatch):
    ckpt = finished / "checkpoints" / "last.ckpt"
    with initialize_config_module("ganarena.conf", version_base="1.3"):

        def gen(*overrides):
            return generate(compose("generate", overrides=[f"ckpt_path={ckpt}", *overrides]))

        with pytest.raises(ConfigError, match=r"n=100000000 .* needs at least [\d.]+ GB"):
            gen("n=100000000", f"out={tmp_path / 'g.png'}")
        ro = tmp_path / "ro"
        ro.mkdir()
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m: Path(p) != ro and real_access(p, m))
        with pytest.raises(ConfigError, match="not writable"):
            gen(f"out={ro / 'g.png'}")
        with pytest.raises(ConfigError, match="not writable"):
            gen("format=folder", f"out={ro / 'imgs'}")
        monkeypatch.undo()

        def full_disk(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Image.Image, "save", full_disk)
        with pytest.raises(ConfigError, match="No space left"):
            gen("format=folder", "n=3", f"out={tmp_path / 'imgs'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]  # no partial folder left


def test_eval_refuses_the_same_folder_as_real_and_fake(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(folder / f"{i}.png")
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"real={folder}", f"fake={folder}/."])
    with pytest.raises(ConfigError, match="same folder"):
        evaluate(cfg)


def test_sixteen_bit_pngs_keep_their_grey_levels(tmp_path):
    from ganarena.data.datasets import ImageFolderDataModule

    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    (tmp_path / "a").mkdir()
    Image.fromarray(ramp).save(tmp_path / "a" / "ramp.png")
    assert Image.open(tmp_path / "a" / "ramp.png").mode.startswith("I")
    dm = ImageFolderDataModule(root=tmp_path / "a", image_size=32, channels=1, batch_size=1)
    dm.setup()
    pixels = ((dm.images[0, 0] + 1) * 127.5).round()
    assert len(torch.unique(pixels)) > 200  # PIL's convert("L") alone leaves 2 levels
    expected = torch.from_numpy(np.round(ramp / 65535 * 255))
    assert torch.allclose(pixels, expected.float(), atol=1)


def test_a_diverged_run_without_a_checkpoint_does_not_claim_one(tmp_path):
    overrides = ["loss=lsgan", "optim.d.lr=1e12", "optim.g.lr=1e12",
                 "trainer.max_steps=50", "callbacks.checkpoint.every_n_steps=1000"]  # fmt: skip
    with pytest.raises(DivergedError) as info:
        train(compose_train(tmp_path / "run", overrides))
    assert "no checkpoint had been written" in str(info.value)
    assert "is kept" not in str(info.value)


def test_a_refused_sweep_job_records_why_and_compare_shows_it(tmp_path):
    sweep = tmp_path / "sweep"
    res = run_cli(
        ["ganarena.train", "-m", *FAST, "logger=none", "trainer.max_steps=3,-1",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    refused = json.loads((sweep / "1" / "metrics.json").read_text())
    assert refused["status"] == "refused" and "trainer.max_steps must be > 0" in refused["reason"]
    table = compare([sweep], group_by=["model", "max_steps"]).markdown
    assert "refused — trainer.max_steps must be > 0" in table
    # The same sweep folder again, without resume or overwrite: refused, nothing touched.
    before = snapshot(sweep)
    res = run_cli(
        ["ganarena.train", "-m", *FAST, "seed=1,2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path
    )
    assert_refused(res, "already holds 2 finished or started jobs", "ckpt_path=auto")
    assert snapshot(sweep) == before
    OmegaConf.load(sweep / "0" / ".hydra" / "config.yaml")  # still the first sweep's record


@pytest.mark.parametrize("cut", ["empty", "half"])
def test_zero_byte_and_truncated_checkpoints_are_refused_by_every_tool(finished, tmp_path, cut):
    from ganarena.errors import CheckpointError

    data = (finished / "checkpoints" / "last.ckpt").read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"" if cut == "empty" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        train(compose_train(tmp_path / "run", [f"ckpt_path={bad}", "trainer.max_steps=9"]))
    with pytest.raises(CheckpointError, match="init_from=.*corrupt") as info:  # not "ckpt_path"
        train(compose_train(tmp_path / "run", [f"init_from={bad}"]))
    assert "ckpt_path" not in str(info.value)
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        with pytest.raises(CheckpointError, match="corrupt"):
            evaluate(compose("evaluate", overrides=[f"ckpt_path={bad}"]))
        with pytest.raises(CheckpointError, match="corrupt"):
            generate(compose("generate", overrides=[f"ckpt_path={bad}", f"out={tmp_path}/g.png"]))
    assert bad.stat().st_size == (0 if cut == "empty" else len(data) // 2)
    assert not (tmp_path / "g.png").exists()


def test_incompatible_init_from_and_unknown_classes_exit_2_and_touch_nothing(finished, tmp_path):
    before = snapshot(finished)
    init = f"init_from={finished}/checkpoints/last.ckpt"  # an MLP's weights
    dcgan, classes = run_clis(
        [
            ["ganarena.train", *FAST, "model=dcgan", init, f"hydra.run.dir={tmp_path}/dcgan"],
            [
                "ganarena.train",
                *FAST,
                "dataset.limit=null",
                "dataset.class_counts={3:50,12:5}",
                f"hydra.run.dir={tmp_path}/classes",
            ],
        ],  # fmt: skip
        cwd=tmp_path,
    )
    assert_refused(dcgan, "does not fit this model", "drop init_from")
    assert_refused(
        classes, "has no class 12 (its classes: 0..9)", "Name only classes the data has (0..9)"
    )
    assert snapshot(finished) == before  # the source run is only read
    for run in ("dcgan", "classes"):
        assert not (tmp_path / run / "checkpoints").exists()
        assert not (tmp_path / run / "metrics.json").exists()


# -- issue #33, the exact commands: every one exits 2 with one paragraph and changes nothing ----
@pytest.fixture(scope="module")
def other_models(tmp_path_factory) -> dict[str, Path]:
    """Untrained StyleGAN2 and CycleGAN checkpoints in ganarena's format (no training needed)."""
    from omegaconf import open_dict

    from ganarena.run.config import resolve_auto
    from tests.conftest import save_untrained

    root = tmp_path_factory.mktemp("other_models")
    made = {}
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        for name, overrides in (("stylegan2", ["experiment=stylegan2", "dataset=mnist_sample"]),
                                ("cyclegan", ["experiment=cyclegan_digits"])):  # fmt: skip
            cfg = compose("train", overrides=[*overrides, f"paths.output_dir={root / name}"])
            with open_dict(cfg):
                cfg.model.conditional = cfg.model.get("conditional") is True
            resolve_auto(cfg)
            made[name] = save_untrained(cfg, root / f"{name}.ckpt")
    return made


def _pngs(folder: Path, sizes: list[int], mode: str = "L") -> Path:
    folder.mkdir(parents=True)
    for i, size in enumerate(sizes):
        Image.new(mode, (size, size), 40 * i).save(folder / f"{i}.png")
    return folder


def test_the_issue_33_commands_are_refused_and_touch_nothing(finished, other_models, tmp_path):
    import shutil

    ckpt = finished / "checkpoints" / "last.ckpt"
    style, cycle = other_models["stylegan2"], other_models["cyclegan"]
    here = tmp_path / "dc"
    shutil.copytree(finished, here)  # a completed run that a foreign resume must not replace
    digits = _pngs(tmp_path / "digits", [28, 28])
    two_sizes = _pngs(tmp_path / "two_sizes", [28, 32])
    labelled = tmp_path / "labelled"
    for c in ("a", "b"):
        _pngs(labelled / c, [28] * 10)
    png = digits / "0.png"
    before = {p: snapshot(p) for p in (finished, here, digits, labelled)}
    train, gen, ev = ["ganarena.train", *FAST], ["ganarena.generate"], ["ganarena.evaluate"]
    cases = {
        "foreign resume": ([
            "ganarena.train", "experiment=smoke", "eval=none", f"hydra.run.dir={here}",
            f"ckpt_path={ckpt}", "trainer.max_steps=4"], ["a checkpoint of another run"]),
        "psi=1e39": ([*gen, f"ckpt_path={style}", "psi=1e39"], ["psi=1e+39 is outside [-2, 2]"]),
        "psi=1e30": ([*gen, f"ckpt_path={style}", "psi=1e30"], ["images saturate"]),
        "n_samples": ([*ev, f"ckpt_path={ckpt}", "eval.n_samples=100000000000"],
                      ["eval.n_samples=100000000000", "needs at least"]),
        "class_counts": ([*train, "dataset=image_folder", f"dataset.root={labelled}",
                          "+dataset.class_counts={0:300}", "dataset.limit=null"],
                         ["Ask for at most 10"]),
        "init_from+ckpt_path": ([*train, f"init_from={ckpt}", f"ckpt_path={ckpt}"],
                                ["one of them would be ignored"]),
        "translate psi": ([*gen, f"ckpt_path={cycle}", f"translate={digits}", "psi=0.5"],
                          ["psi=0.5 does not apply to translate mode"]),
        "translate label": ([*gen, f"ckpt_path={cycle}", f"translate={digits}", "label=3"],
                            ["label=3 does not apply to translate mode"]),
        "mix_rows": ([*gen, f"ckpt_path={style}", "mix_rows=[1,2]"],
                     ["mix_rows=[1, 2] does not apply to grid mode", "mix=true"]),
        "space=w": ([*gen, f"ckpt_path={style}", "space=w"],
                    ["space=w does not apply to grid mode", "interpolate=true"]),
        "ema=false": ([*ev, f"real={digits}", f"fake={two_sizes}", "ema=false"],
                      ["which have no generator"]),
        "dataset with inception": ([*ev, f"real={digits}", f"fake={two_sizes}", "eval=inception",
                                    "dataset=cifar10"], ["dataset= does not apply to folder mode"]),
        "seed": ([*train, "seed=99999999999999999999"], ["the same value modulo 2**32"]),
        "init_from missing": ([*train, "init_from=nope.ckpt"], ["init_from=nope.ckpt"]),
        "root is a file": ([*train, "dataset=image_folder", f"dataset.root={png}"],
                           ["is a file, not a folder"]),
        "ckpt_path is a folder": ([*train, f"ckpt_path={finished}"],
                                  ["is a folder, not a checkpoint file", "checkpoints/last.ckpt"]),
        "two sizes": ([*gen, f"ckpt_path={cycle}", f"translate={two_sizes}", "out=translated"],
                      ["translate each size from a folder of its own"]),
    }  # fmt: skip
    runs = {n: tmp_path / "runs" / n.replace(" ", "_") for n in cases}

    def command(name: str, args: list[str]) -> list[str]:
        extra = []
        if args[0] == "ganarena.train" and name != "foreign resume":
            extra.append(f"hydra.run.dir={runs[name]}")
        if args[0] == "ganarena.generate" and not any(a.startswith("out=") for a in args):
            extra.append("out=out.png")
        return [*args, *extra]

    results = run_clis([command(n, args) for n, (args, _) in cases.items()], tmp_path)
    failed = []
    for (name, (_, needles)), res in zip(cases.items(), results, strict=True):
        try:
            assert_refused(res, *needles)
            message = res.stderr.split("error:")[-1]
            assert "ckpt_path" not in message or name != "init_from missing", message
            assert "score" not in message or name != "two sizes", message
            assert not runs[name].exists(), "a stub run folder was left behind"
        except AssertionError as e:
            failed.append(f"{name}: {str(e)[:600]}")
    assert not failed, "\n\n".join(failed)
    assert {p: snapshot(p) for p in before} == before
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "translated").exists()
