"""Random values in the numeric and enum settings of ganarena-eval, ganarena-generate and
ganarena-compare (hypothesis drives them): each case runs cleanly or stops with a clear
GanarenaError (one paragraph), never a raw exception, a hang, or a changed file of the run it
reads. The tools run in-process against ONE tiny pre-trained run (tests/test_fuzz.py does the
same for the train config)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganarena.errors import GanarenaError
from ganarena.evaluate import evaluate
from ganarena.generate import generate
from ganarena.report.compare import main as compare_main
from ganarena.train import train
from tests.conftest import compose_train

pytestmark = pytest.mark.filterwarnings(
    "ignore:Scoring only:UserWarning", "ignore:eval.kid_subset_size:UserWarning"
)

ODD = st.sampled_from(["abc", "", "null", "true", "1e999", "-inf", "nan", "[1,2]", "{a: 1}", "1.5"])
INTS = st.one_of(st.integers(-3, 300), st.sampled_from([0, -1, 1, 2]), ODD)
FLOATS = st.one_of(
    st.floats(-10, 10), st.sampled_from([0.0, 1e-12, math.nan, math.inf, -math.inf]), ODD
)
BOOLS = st.sampled_from(["true", "false", "null", "1", "0", "yes", "abc"])


# No shrinking: a failing case is shown as drawn (shrinking re-runs the tools many times).
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)


def fuzz(n: int):
    return settings(
        max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), phases=PHASES
    )


def fmt(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
    return str(value)


def pick(fields: dict, min_size: int = 1, max_size: int = 4, first=()):
    """A few `key=value` overrides drawn from `fields` (group choices `first`, then fields)."""

    @st.composite
    def draw_overrides(draw):
        keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=min_size,
                             max_size=max_size, unique=True))  # fmt: skip
        keys.sort(key=lambda k: (k not in first, k))
        return [f"{k}={fmt(draw(fields[k]))}" for k in keys]

    return draw_overrides()


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file below `folder`."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_untouched(run: Path, before: dict) -> None:
    after = snapshot(run)
    changed = [k for k, v in before.items() if after.get(k) != v]
    assert not changed, f"run files deleted or rewritten: {changed}"


def assert_clear(e: GanarenaError) -> None:
    text = str(e).strip()
    assert len(text) > 30 and "\n" not in text and "Traceback" not in text, text


@pytest.fixture(scope="module")
def arena(tmp_path_factory, cache_dir):
    """One tiny conditional MLP run (3 generator steps on 256 bundled digits) and a work folder.

    The domain classifier for eval cases is trained once here (one epoch on those digits)."""
    # One torch thread: on these tiny tensors (and busy cores) OpenMP's spinning threads make KID
    # and the generator passes ~10x slower (measured: 5.7 s vs 0.44 s for one eval case).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fuzz_tools")
    run = root / "run"
    cfg = compose_train(run, ["model.conditional=true", "logger=none"])
    train(cfg)
    work = root / "work"
    work.mkdir()
    # A sweep made of copies of the run, with scores, for ganarena-compare.
    sweep = root / "sweep"
    for num, (seed, fid) in enumerate([(1, 30.0), (2, 32.0), (3, math.nan)]):
        job = sweep / str(num)
        (job / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, job / ".hydra" / "config.yaml")
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
        m = json.loads((run / "metrics.json").read_text())
        m["config"]["seed"] = seed
        m["final"] = {"fid": fid, "is": 2.0, "is_std": 0.1, "kid": 0.01, "kid_std": 0.001}
        (job / "metrics.json").write_text(json.dumps(m))
    (root / "a_file.txt").write_text("not a folder\n")
    (root / "empty").mkdir()
    folders = image_folders(root / "images")
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        evaluate(compose_tool("evaluate", run, cache_dir, ["eval.n_samples=16"]))
        models = tiny_models(root / "models")
        yield {"root": root, "run": run, "work": work, "sweep": sweep, "before": snapshot(run),
               **folders, **models}  # fmt: skip
    torch.set_num_threads(threads)


def image_folders(root: Path) -> dict[str, Path]:
    """Folders of 28x28 images as a user may have them: greyscale, RGB, 16-bit greyscale PNGs;
    and ones that cannot be scored or translated: two sizes, 32x32 (not the digits' size)."""
    import numpy as np
    from PIL import Image

    ramp = (np.arange(28 * 28).reshape(28, 28) * 83).astype(np.uint16)
    made = {}
    for name, make in {
        "GREY": lambda i: Image.new("L", (28, 28), 30 * i),
        "RGB": lambda i: Image.new("RGB", (28, 28), (30 * i, 200, 0)),
        "SIXTEEN": lambda i: Image.fromarray(ramp // (i + 1)),
        "TWO_SIZES": lambda i: Image.new("L", (28 + 4 * (i % 2), 28 + 4 * (i % 2)), 30 * i),
        "BIG": lambda i: Image.new("L", (32, 32), 30 * i),
    }.items():  # fmt: skip
        made[name] = root / name.lower()
        made[name].mkdir(parents=True)
        for i in range(4):
            make(i).save(made[name] / f"{i}.png")
    return made


def tiny_models(root: Path) -> dict[str, Path]:
    """Untrained, tiny checkpoints of the other generator kinds: STYLE (StyleGAN2, 8x8 digits,
    conditional: psi, mix, space=w and label all apply) and CYCLE (CycleGAN, 28x28: translate)."""
    from ganarena.run.config import resolve_auto
    from tests.conftest import save_untrained

    tiny = {
        "STYLE": ["experiment=stylegan2", "dataset=digits", "dataset.image_size=8",
                  "model.channel_base=64", "model.channel_max=16", "model.w_dim=16",
                  "model.latent_dim=16", "model.conditional=true", "model.num_classes=10"],
        "CYCLE": ["experiment=cyclegan_digits", "model.generator.width=8",
                  "model.discriminator.width=8", "model.generator.n_blocks=1"],
    }  # fmt: skip
    made = {}
    for name, overrides in tiny.items():
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={root / name}"])
        resolve_auto(cfg)
        root.mkdir(parents=True, exist_ok=True)
        made[name] = save_untrained(cfg, root / f"{name.lower()}.ckpt")
    return made


def compose_tool(name: str, run: Path, cache_dir: Path, overrides: list[str]):
    base = {
        "evaluate": [
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            f"paths.cache_dir={cache_dir}",
            "eval.classifier.epochs=1",  # part of the classifier's cache key: fixed for all cases
        ],
        "generate": [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "out=grid.png"],
    }[name]
    given = {o.split("=", 1)[0] for o in overrides}
    return compose(name, overrides=[*(b for b in base if b.split("=")[0] not in given), *overrides])


# -- ganarena-eval ---------------------------------------------------------------------------------
EVAL_FIELDS = {
    "eval": st.sampled_from(["domain", "inception", "none", "foo"]),
    "eval.backbone": st.sampled_from(["domain", "inception", "none", "foo", "", "3"]),
    # KID's cost grows with the square of its subset (<= n_samples): small counts keep cases fast.
    "eval.n_samples": st.one_of(st.integers(-3, 40), ODD),
    "eval.batch_size": INTS,
    "eval.kid_subset_size": INTS,
    "eval.seed": st.one_of(INTS, st.just("null")),
    "eval.every_n_steps": INTS,
    "eval.n_real": st.one_of(INTS, st.just("null")),
    "eval.mode_threshold": FLOATS,
    "eval.fid_infinity": BOOLS,
    "ckpt_path": st.sampled_from(["RUN/checkpoints/last.ckpt", "RUN/checkpoints/step_000002.ckpt",
                                  "RUN/metrics.json", "RUN", "RUN/nothing.ckpt", "null"]),
}  # fmt: skip


@fuzz(25)
@given(ov=pick(EVAL_FIELDS, first=("eval",)))
def test_eval_settings_run_or_fail_clearly(arena, cache_dir, ov, monkeypatch):
    run = arena["run"]
    monkeypatch.chdir(arena["work"])
    # No Inception weights anywhere: eval.backbone=inception must stop with the clear message.
    monkeypatch.setenv("TORCH_HOME", str(arena["root"] / "torch_home"))
    ov = [o.replace("RUN", str(run)) for o in ov]
    if not any(o.startswith("eval.n_samples=") for o in ov):
        ov.append("eval.n_samples=16")  # default 10000 is a real evaluation: too slow here
    try:
        cfg = compose_tool("evaluate", run, cache_dir, ov)
    except (HydraException, OmegaConfBaseException):
        event("Hydra error")
        return  # Hydra's own message (unknown option, parse error): clear, and nothing ran
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            result = evaluate(cfg)
    except GanarenaError as e:
        event("clear error")
        assert_clear(e)
    else:
        event("ran")
        assert json.loads(out.getvalue())["file"] == result["file"] and "fid" in result["scores"]
    finally:
        assert_untouched(run, arena["before"])


# -- ganarena-generate -----------------------------------------------------------------------------
GEN_FIELDS = {
    "n": INTS,
    "nrow": INTS,
    "seed": st.one_of(INTS, st.just("null")),
    "steps": INTS,
    "frame_ms": INTS,
    "batch_size": INTS,
    "label": st.one_of(st.integers(-2, 12), st.just("null"), ODD),
    "format": st.sampled_from(["grid", "folder", "gif", "", "null", "3"]),
    "interpolate": BOOLS,
    "overwrite": BOOLS,
    "device": st.sampled_from(["cpu", "cuda", "cuda:1", "meta", "tpu", ""]),
    "out": st.sampled_from(
        ["grid.png", "g.jpg", "interp.gif", "images", "x.txt", "", ".", "sub/dir/g.png",
         "RUN", "RUN/checkpoints", "RUN/checkpoints/last.ckpt", "RUN/metrics.json",
         "RUN/samples", "RUN/.hydra/config.yaml", "EXISTING.png", "EXISTING_DIR"]
    ),
    "ckpt_path": st.sampled_from(["RUN/checkpoints/last.ckpt", "RUN/metrics.json", "RUN",
                                  "RUN/missing.ckpt", "null"]),
}  # fmt: skip


@fuzz(30)
@given(ov=pick(GEN_FIELDS))
def test_generate_settings_run_or_fail_clearly(arena, ov, monkeypatch):
    run, work = arena["run"], arena["work"]
    monkeypatch.chdir(work)
    existing, existing_dir = work / "existing.png", work / "existing_dir"
    existing.write_bytes(b"precious")
    existing_dir.mkdir(exist_ok=True)
    (existing_dir / "mine.txt").write_text("precious")
    ov = [
        o.replace("RUN", str(run))
        .replace("EXISTING.png", str(existing))
        .replace("EXISTING_DIR", str(existing_dir))
        for o in ov
    ]
    try:
        cfg = compose_tool("generate", run, None, ov)
    except (HydraException, OmegaConfBaseException):
        event("Hydra error")
        return
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            paths = generate(cfg)
    except GanarenaError as e:
        event("clear error")
        assert_clear(e)
    else:
        event("ran")
        assert paths and all(Path(p).exists() for p in paths)
    finally:
        assert_untouched(run, arena["before"])
        if cfg.get("overwrite") is not True:  # never replaced without overwrite=true
            assert existing.read_bytes() == b"precious"
        assert (existing_dir / "mine.txt").read_text() == "precious"  # foreign files: never
        for p in work.iterdir():  # a clean slate for the next case
            if p not in (existing, existing_dir):
                shutil.rmtree(p) if p.is_dir() else p.unlink()


# -- ganarena-generate's modes: StyleGAN2, CycleGAN and MLP checkpoints --------------------------
# What each option changes, by mode: the spec of the one rule (README "Bad input"), written out
# here apart from ganarena.generate.APPLIES. A call that succeeds was given only options that
# change what it writes: set away from its default in any other mode, an option is refused.
SERVES = {
    "psi": {"grid", "folder", "interpolate", "mix"},
    "label": {"grid", "folder", "interpolate", "mix"},
    "seed": {"grid", "folder", "interpolate"},
    "n": {"grid", "folder"},
    "nrow": {"grid"},
    "batch_size": {"grid", "folder", "translate"},
    "space": {"interpolate"},
    "mix_rows": {"mix"},
    "mix_cols": {"mix"},
    "mix_coarse": {"mix"},
    "steps": {"interpolate"},
    "direction": {"translate"},
}
SEEDS = st.sampled_from(["[1,2]", "[0]", "[3,3]", "[]", "[-1]", "[1.5]", "abc", "null", "[true]"])
FOLDERS = st.sampled_from(["GREY", "RGB", "SIXTEEN", "TWO_SIZES", "ROOT/empty", "ROOT/a_file.txt",
                           "ROOT/missing", "null"])  # fmt: skip
MODE_FIELDS = {
    "psi": st.one_of(st.floats(-3, 3), st.sampled_from(
        [0.0, 0.7, 1.0, 2.0, 2.5, 1e30, 1e39, "nan", "inf", "abc", "true", "null"])),
    "mix": BOOLS,
    "mix_rows": SEEDS,
    "mix_cols": SEEDS,
    "mix_coarse": st.one_of(st.integers(-1, 12), st.sampled_from(["null", "abc", "1.5"])),
    "interpolate": BOOLS,
    "space": st.sampled_from(["z", "w", "x", "", "null"]),
    "translate": FOLDERS,
    "direction": st.sampled_from(["ab", "ba", "xy", ""]),
    "label": st.one_of(st.integers(-1, 11), st.sampled_from(["null", "abc", "1.5"])),
    "format": st.sampled_from(["grid", "folder"]),
    "seed": st.sampled_from([0, 3, -1, "abc"]),
    "n": st.sampled_from([1, 4, 0, "abc"]),
    "steps": st.sampled_from([2, 3, 1]),
    "nrow": st.sampled_from([2, 8, 0]),
    "batch_size": st.sampled_from([2, 500, 0]),
    "out": st.sampled_from(["g.png", "outdir", "g.gif"]),
}  # fmt: skip


def _names(arena: dict, overrides: list[str]) -> list[str]:
    """Overrides with the arena's placeholders (RUN, ROOT, STYLE, GREY, ...) made paths."""
    out = []
    for o in overrides:
        key, _, value = o.partition("=")
        head, _, rest = value.partition("/")
        if head in arena and isinstance(arena[head], Path):
            value = str(arena[head] / rest) if rest else str(arena[head])
        out.append(f"{key}={value}")
    return out


@fuzz(25)
@given(model=st.sampled_from(["STYLE", "CYCLE", "RUN/checkpoints/last.ckpt"]),
       ov=pick(MODE_FIELDS, max_size=5))  # fmt: skip
@example(model="STYLE", ov=["psi=0.7", "label=3", "n=4", "nrow=2"])  # each mode, once as asked
@example(model="STYLE", ov=["interpolate=true", "space=w", "steps=3", "out=g.gif"])
@example(model="STYLE", ov=["mix=true", "mix_rows=[1,2]", "mix_cols=[3]", "label=2"])
@example(model="STYLE", ov=["format=folder", "n=3", "psi=0.5", "out=outdir"])
@example(model="CYCLE", ov=["translate=SIXTEEN", "direction=ba", "out=outdir"])
@example(model="CYCLE", ov=["translate=RGB", "batch_size=2", "out=outdir"])
def test_generate_modes_run_or_refuse_what_they_would_ignore(arena, model, ov, monkeypatch):
    work = arena["work"]
    monkeypatch.chdir(work)
    ov = _names(arena, [f"ckpt_path={model}", *ov])
    try:
        cfg = compose("generate", overrides=ov)
        defaults = compose("generate", overrides=["ckpt_path=x"])
    except (HydraException, OmegaConfBaseException):
        event("Hydra error")
        return
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            paths = generate(cfg)
    except GanarenaError as e:
        event("clear error")
        assert_clear(e)
    else:
        mode = ("translate" if cfg.translate is not None else "mix" if cfg.mix else
                "interpolate" if cfg.interpolate else cfg.format)  # fmt: skip
        event(f"ran: {mode}")
        assert paths and all(Path(p).exists() for p in paths)
        for key, modes in SERVES.items():
            given, default = cfg.get(key), defaults.get(key)
            if OmegaConf.is_config(given):
                given, default = OmegaConf.to_container(given), OmegaConf.to_container(default)
            assert given == default or mode in modes, f"{key}={given} ignored in {mode} mode"
    finally:
        assert_untouched(arena["run"], arena["before"])
        for p in work.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()


# -- ganarena-eval real= fake=: folders of every kind ----------------------------------------------
FOLDER_FIELDS = {
    "real": st.sampled_from(["GREY", "RGB", "SIXTEEN", "TWO_SIZES", "BIG", "ROOT/empty",
                             "ROOT/a_file.txt", "ROOT/missing", "null"]),
    "fake": st.sampled_from(["GREY", "RGB", "SIXTEEN", "TWO_SIZES", "BIG", "ROOT/empty",
                             "ROOT/a_file.txt", "ROOT/missing", "null"]),
    "ema": BOOLS,
    "eval.n_samples": st.sampled_from([10000, 16, 0, "abc"]),
    "eval.n_real": st.sampled_from(["null", 2, 0]),
    "eval.seed": st.sampled_from([0, 1, -1]),
    "eval.backbone": st.sampled_from(["domain", "inception"]),
    "eval.per_class_fid": BOOLS,
    "eval.every_n_steps": st.sampled_from([1000, 5]),
}  # fmt: skip
# The settings folder mode does not use, at their defaults (anything else must be refused).
FOLDER_UNUSED = {"ema": True, "eval.n_samples": 10000, "eval.n_real": None,
                 "eval.per_class_fid": False, "eval.every_n_steps": 1000}  # fmt: skip


@fuzz(15)
@given(ov=pick(FOLDER_FIELDS, max_size=5))
@example(ov=["real=RGB", "fake=SIXTEEN"])  # issue #33: an RGB reference, 16-bit fakes
@example(ov=["real=BIG", "fake=SIXTEEN"])  # refused from the headers, before any classifier
def test_eval_folders_run_or_fail_clearly(arena, cache_dir, ov, monkeypatch):
    monkeypatch.chdir(arena["work"])
    monkeypatch.setenv("TORCH_HOME", str(arena["root"] / "torch_home"))  # no Inception weights
    ov = _names(arena, ov)
    for key, folder in (("real", "GREY"), ("fake", "RGB")):
        if not any(o.startswith(f"{key}=") for o in ov):
            ov.append(f"{key}={arena[folder]}")
    base = ["dataset=mnist_sample", "dataset.limit=256", f"paths.cache_dir={cache_dir}",
            "eval.classifier.epochs=1"]  # the arena's classifier, from the cache  # fmt: skip
    try:
        cfg = compose("evaluate", overrides=[*base, *ov])
    except (HydraException, OmegaConfBaseException):
        event("Hydra error")
        return
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            result = evaluate(cfg)
    except GanarenaError as e:
        event("clear error")
        assert_clear(e)
    else:
        event("ran")
        assert json.loads(out.getvalue())["file"] == result["file"] and "fid" in result["scores"]
        assert result["eval"]["n_fake"] == result["eval"]["n_real"] == 4
        for key, default in FOLDER_UNUSED.items():
            assert OmegaConf.select(cfg, key) == default, f"{key} was ignored in folder mode"
        Path(result["file"]).unlink()  # the fake folder is shared by the cases
    finally:
        assert_untouched(arena["run"], arena["before"])
        for folder in ("GREY", "RGB", "SIXTEEN", "BIG"):
            assert not list(arena[folder].glob("eval_*.json"))


# -- ganarena-compare ------------------------------------------------------------------------------
COMPARE_FIELDS = {
    "sweep": st.sampled_from(["SWEEP", "SWEEP SWEEP", "RUN", "SWEEP/0", "ROOT/empty",
                              "ROOT/a_file.txt", "ROOT/missing", "ROOT", ""]),
    "--metric": st.sampled_from(["fid", "is", "kid", "kid_std", "fid_inf", "foo", "", "FID"]),
    "--group-by": st.sampled_from(["model,loss", "seed", "", ",,", "optim.d.lr", "foo",
                                   "model,model", "dataset.limit", "conditional", "a.b.c",
                                   "model.generator"]),
    "--out": st.sampled_from(["OUT", "ROOT/a_file.txt", "RUN", "SWEEP/0", ""]),
    "--allow-mixed-eval": st.sampled_from([True, False]),
    "--bogus": st.sampled_from(["1"]),
}  # fmt: skip


@st.composite
def compare_argv(draw):
    keys = draw(st.lists(st.sampled_from(sorted(COMPARE_FIELDS)), max_size=4, unique=True))
    values = {k: draw(COMPARE_FIELDS[k]) for k in keys}
    argv = values.pop("sweep", "SWEEP").split(" ")
    for k, v in values.items():
        if v is True:
            argv.append(k)
        elif v is not False:
            argv += [k, v]
    return argv


@fuzz(25)
@given(argv=compare_argv())
def test_compare_arguments_run_or_fail_clearly(arena, argv, monkeypatch):
    monkeypatch.chdir(arena["work"])  # `--out ""` writes into the working directory
    names = {"SWEEP": arena["sweep"], "RUN": arena["run"], "ROOT": arena["root"],
             "OUT": arena["root"] / "cmp_out"}  # fmt: skip
    for name, path in names.items():
        argv = [a.replace(name, str(path)) if a.startswith(name) else a for a in argv]
    jobs_before = snapshot(arena["sweep"])
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert compare_main(argv) == 0
        event("ran")
    except SystemExit as e:
        event("clear error")  # argparse's usage error or a CompareError: status 2, one message
        assert e.code == 2, err.getvalue()
        message = err.getvalue().strip()
        assert "error:" in message and "Traceback" not in message, message
    finally:
        assert_untouched(arena["run"], arena["before"])
        after = snapshot(arena["sweep"])
        for (
            key,
            value,
        ) in jobs_before.items():  # comparison files (comparison_<metric> too) may be redone
            if not Path(key).name.startswith(("comparison.", "comparison_")) and not key.endswith(
                ".png"
            ):
                assert after.get(key) == value, key
