"""Fast start: commands that only compose and check a config never load torch, Lightning,
torchvision or torchmetrics (seconds of imports on a 2-core machine). Timings live in
scripts/benchmark.py (startup rows), never in a test."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "torchvision", "torchmetrics")

PROBE = """
import atexit, sys
heavy = {heavy!r}
atexit.register(lambda: print("LOADED=" + ",".join(m for m in heavy if m in sys.modules), file=sys.stderr))
sys.argv = ["{prog}", *{args!r}]
from ganarena.{module} import main
main()
"""


@pytest.mark.parametrize(
    ("module", "args", "rc", "needle"),
    [
        *[("train", *case) for case in [
        (["--cfg", "job"], 0, ""),
        (["--help"], 0, ""),
        (["--info", "all"], 0, ""),
        (["loss=foo"], 1, "Could not find 'loss/foo'"),
        (["trainer.max_steps=-5"], 2, "trainer.max_steps must be > 0"),
        (["dataset.batch_size=abc"], 2, "dataset.batch_size must be an integer"),
        (["+max_step=3"], 2, "adds an option that ganarena does not read"),
        (["model.d_norm=nope"], 2, "model.d_norm must be one of"),
        (["ckpt_path=nope.ckpt"], 2, "Checkpoint not found: 'nope.ckpt'"),
        ]],
        ("evaluate", ["--help"], 0, ""),
        ("evaluate", ["ckpt_path=nope.ckpt"], 2, "Checkpoint not found: 'nope.ckpt'"),
        ("evaluate", ["ckpt_path=nope.ckpt", "eval.n_samples=0"], 2, "eval.n_samples must be"),
        ("evaluate", ["real=nope", "fake=nope2"], 2, "real=nope is not a folder"),
        ("generate", ["--help"], 0, ""),
        ("generate", ["ckpt_path=nope.ckpt"], 2, "Checkpoint not found: 'nope.ckpt'"),
        ("generate", ["ckpt_path=nope.ckpt", "n=0"], 2, "n must be"),
        ("generate", ["ckpt_path=nope.ckpt", "format=zip"], 2, "format must be one of"),
        ("report.compare", ["--help"], 0, ""),
        ("report.compare", ["nope"], 2, "nope"),
    ],
)  # fmt: skip
def test_config_only_commands_do_not_import_the_heavy_libraries(tmp_path, module, args, rc, needle):
    if module != "report.compare":
        args = [*args, f"hydra.run.dir={tmp_path / 'run'}"]
    prog = "ganarena-" + {"evaluate": "eval", "report.compare": "compare"}.get(module, module)
    code = PROBE.format(heavy=HEAVY, args=args, module=module, prog=prog)
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == rc, res.stderr[-2000:]
    assert needle in " ".join(res.stderr.split()), res.stderr[-2000:]
    assert "LOADED=" in res.stderr, res.stderr[-2000:]
    loaded = res.stderr.rsplit("LOADED=", 1)[1].splitlines()[0].strip()
    assert loaded == "", f"imported: {loaded}"
    if module == "train":  # nothing written for a refused or config-only run
        assert not (tmp_path / "run").exists()
