"""A metric that lives outside the package (tests/extension/feature_metric.py) is logged,
stored, compared and shown in HParams through the ordinary commands, with no change to ganarena;
a bad plug-in is refused with one paragraph naming the problem and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganarena.errors import ConfigError
from ganarena.metrics.registry import build_plugins
from ganarena.report.compare import compare
from tests.conftest import cli_cache, run_cli, run_clis
from tests.test_hparams import session_groups

EXT = Path(__file__).parent / "extension"
NAME = "mean_cosine"


def test_an_outside_metric_is_logged_stored_compared_and_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(EXT))
    sweep = tmp_path / "sweep"  # two single runs laid out as a sweep's job folders
    losses = ("nonsaturating", "hinge")
    common = [
        "experiment=smoke",
        f"hydra.searchpath=[file://{EXT / 'conf'}]",
        "eval=with_mean_cosine",
    ]
    results = run_clis(
        [["ganarena.train", *common, f"loss={loss}", f"hydra.run.dir={sweep / str(i)}"]
         for i, loss in enumerate(losses)],
        tmp_path,
    )  # fmt: skip
    for res in results:
        assert res.returncode == 0, res.stderr[-3000:]
    runs = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in range(2)]
    for m in runs:
        value = m["final"][NAME]
        assert -1.0 <= value <= 1.0
        assert m["metrics"][NAME] == {"higher_is_better": True, "label": "mean-feature cosine"}
        assert m["metrics"]["fid"]["higher_is_better"] is False  # built-ins declared too
        assert m["best"][NAME]["value"] >= value and m["best"][NAME]["step"] in (1, 2)
        assert m["eval"]["extra_metrics"][NAME]["real_stats"] == "feature_mean"
    # its real-side statistic is cached in a file of its own, beside the reference statistics
    assert list((Path(cli_cache(tmp_path)) / "reference").glob("*.feature_mean-v1.pt"))

    # TensorBoard: val/mean_cosine after each of the 2 evaluations, the last = the final score
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(sweep / "0" / "tensorboard"))
    acc.Reload()
    points = [(e.step, e.value) for e in acc.Scalars(f"val/{NAME}")]
    assert [s for s, _ in points] == [1, 2]
    assert points[-1][1] == pytest.approx(runs[0]["final"][NAME], rel=1e-6)
    assert max(v for _, v in points) == pytest.approx(runs[0]["best"][NAME]["value"], rel=1e-6)

    # HParams: a column of its own, with the run's final value
    experiment, groups = session_groups(sweep / "0" / "tensorboard")
    tags = {m.name.tag: m.display_name for m in experiment.metric_infos}
    assert tags[f"val/{NAME}"] == "final mean-feature cosine" and "val/fid" in tags
    (group,) = groups
    shown = {v.name.tag: v.value for v in group.metric_values}
    assert shown[f"val/{NAME}"] == pytest.approx(runs[0]["final"][NAME], rel=1e-6)

    # ganarena-compare: a column in the default table, and sorted highest first when asked
    assert "final mean-feature cosine" in compare([sweep], out=tmp_path / "cmp").markdown
    table = compare([sweep], out=tmp_path / "cmp", metric=NAME).markdown
    assert "sorted by mean final mean-feature cosine (higher is better)" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "final" not in line]
    order = [next(loss for loss in losses if f"| {loss} |" in row) for row in rows]
    values = {loss: m["final"][NAME] for loss, m in zip(losses, runs, strict=True)}
    assert values[losses[0]] != values[losses[1]]
    assert order == sorted(losses, key=values.get, reverse=True)
    assert (tmp_path / "cmp" / f"comparison_{NAME}.csv").is_file()


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        (
            {"fid": {"_target_": "feature_metric.MeanCosine"}},
            ["taken by a built-in", "another name"],
        ),
        ({"m": {"_target_": "no_such_module.Metric"}}, ["cannot instantiate", "PYTHONPATH"]),
        ({"m": {"_target_": "collections.OrderedDict"}}, ["not a metric", "compute("]),
        ({"m": "feature_metric.MeanCosine"}, ["_target_", "mapping"]),
        ({"Bad-Name": {"_target_": "feature_metric.MeanCosine"}}, ["lower case", "Rename"]),
    ],
)
def test_a_bad_plugin_is_refused_with_the_fix(entries, words, monkeypatch):
    monkeypatch.syspath_prepend(str(EXT))
    with pytest.raises(ConfigError) as err:
        build_plugins(entries)
    text = str(err.value)
    assert text.startswith(f"eval.extra_metrics.{next(iter(entries))}: ") and "\n" not in text
    for w in words:
        assert w in text


def test_a_good_plugin_is_declared(monkeypatch):
    monkeypatch.syspath_prepend(str(EXT))
    (plugin,) = build_plugins(
        {NAME: {"_target_": "feature_metric.MeanCosine", "eps": 1e-9}}
    ).values()
    assert plugin.spec.higher_is_better and plugin.spec.real_stats == "feature_mean"
    assert plugin.spec.tag == f"val/{NAME}" and plugin.metric.eps == 1e-9


def test_the_command_line_refuses_an_unimportable_plugin(tmp_path):
    res = run_cli(
        ["ganarena.train", "experiment=smoke", "+eval.extra_metrics.mine._target_=nope.Nope",
         f"hydra.run.dir={tmp_path / 'run'}"],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr[-3000:]
    assert "eval.extra_metrics.mine: cannot instantiate 'nope.Nope'" in " ".join(res.stderr.split())


def test_evaluators_without_features_refuse_plugins():
    from ganarena.metrics.registry import refuse_plugins

    refuse_plugins({}, "2-D mixture")  # nothing asked: nothing refused
    with pytest.raises(
        ConfigError, match=r"eval.extra_metrics \(mine\) is set, but the 2-D mixture"
    ):
        refuse_plugins({"mine": {"_target_": "x.Y"}}, "2-D mixture")
