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
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganarena.compare import main as compare_main
from ganarena.errors import GanarenaError
from ganarena.evaluate import evaluate
from ganarena.generate import generate
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
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        evaluate(compose_tool("evaluate", run, cache_dir, ["eval.n_samples=16"]))
        yield {"root": root, "run": run, "work": work, "sweep": sweep, "before": snapshot(run)}
    torch.set_num_threads(threads)


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
