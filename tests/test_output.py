"""Output that suits where it goes, and a run folder that is what the docs say: one smoke run with
stderr to a pipe (as in CI or `2> log`) holds plain progress lines, no carriage-return bar updates
and no advertisement, and its metrics.json has the keys docs/reference/run_folder.md documents."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO, run_cli

STEPS = 8


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("output")
    run = tmp / "run"
    res = run_cli(
        ["ganarena.train", "experiment=smoke", f"trainer.max_steps={STEPS}",
         "trainer.enable_progress_bar=true", "eval.every_n_steps=100", f"hydra.run.dir={run}"],
        tmp,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return res, json.loads((run / "metrics.json").read_text())


def test_redirected_progress_is_plain_lines_without_carriage_returns(smoke):
    res, _ = smoke
    assert "\r" not in res.stderr  # no bar redrawn in place
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("train: step ")]
    # every 5 % of 8 steps: each step crosses a 5 % mark
    assert [int(re.match(r"train: step (\d+)/", ln)[1]) for ln in lines] == list(
        range(1, STEPS + 1)
    )
    assert re.fullmatch(
        rf"train: step {STEPS}/{STEPS} \(100%\) .*d_loss=\S+ g_loss=\S+ [\d.]+ it/s", lines[-1]
    )
    assert "eta " in lines[0]


def test_no_advertisement_in_the_output(smoke):
    res, _ = smoke
    for text in ("litlogger", "litmodels", "Tip:"):
        assert text not in res.stderr and text not in res.stdout


def documented_keys(section: str) -> dict[str, str]:
    """key -> its "when" cell (or "" for two-column tables), from the table under `### section`
    in docs/reference/run_folder.md; a row may name several keys."""
    text = (REPO / "docs" / "reference" / "run_folder.md").read_text()
    block = text.split(f"### {section}\n", 1)[1].split("\n#", 1)[0]
    keys = {}
    for row in re.findall(r"^\| (`.*?) \|(.*)$", block, flags=re.M):
        cells = [c.strip() for c in row[1].split("|")]
        when = cells[0] if len(cells) > 2 else ""
        for key in re.findall(r"`([^`]+)`", row[0]):
            keys[key] = when
    return keys


def test_metrics_json_holds_the_documented_keys(smoke):
    _, metrics = smoke
    top = documented_keys("Top level")
    always = {k for k, when in top.items() if when in ("every run", "every run with evaluation")}
    assert always <= set(metrics) <= set(top), set(metrics) ^ always
    final = documented_keys("`final` and `best`")
    assert set(metrics["final"]) <= set(final), set(metrics["final"]) - set(final)
    assert set(metrics["best"]) == {"fid", "step"}
    assert set(metrics["eval"]) <= set(documented_keys("`eval`"))
    config = documented_keys("`config`")
    every = {k for k, when in config.items() if when == "every run"}
    assert every <= set(metrics["config"]) <= set(config), set(metrics["config"]) ^ every
