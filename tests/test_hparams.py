"""log_hparams: what TensorBoard's HParams tab reads back, through the plugin's own handlers."""

from __future__ import annotations

import math

import pytest
from lightning.pytorch.loggers import TensorBoardLogger

from ganarena.errors import ConfigError
from ganarena.report.dashboard import place_tensorboard
from ganarena.report.hparams import flatten_hparams, log_hparams, shown_by_default
from tests.conftest import compose_train


def summary(loss, seed, status="completed", fid=None):
    final = {"fid": fid, "is": 2.0, "is_std": 0.1, "kid": 0.01, "kid_std": 0.001} if fid else None
    return {"status": status, "steps": 7, "wall_s": 3.0, "imgs_per_s": 100.0, "final": final,
            "best": {"fid": fid, "step": 7} if fid else None, "eval": None,
            "config": {"seed": seed}}  # fmt: skip


def session_groups(logdir):
    """What the HParams tab shows: the plugin's ListSessionGroups answer for `logdir`."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.data import provider
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    tb = base_plugin.TBContext(
        logdir=str(logdir), data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir))
    )
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, aggregation_type=api_pb2.AGGREGATION_AVG,
        allowed_statuses=api_pb2.Status.values(),
    )  # fmt: skip
    ctx = backend_context.Context(tb)
    experiment = ctx.experiment_from_metadata(
        context.RequestContext(),
        "",
        True,
        ctx.hparams_metadata(context.RequestContext(), ""),
        provider.ListHyperparametersResult(hyperparameters=[], session_groups=[]),
    )
    groups = list_session_groups.Handler(context.RequestContext(), ctx, "", request).run()
    return experiment, groups.session_groups


def value(v):
    kind = v.WhichOneof("kind")
    return getattr(v, kind)


def write_runs(root, jobs, extra=()):
    """One TensorBoard run per job (loss, seed, status, fid) as train() leaves it: val/fid and
    val/best_fid curves, then log_hparams after the logger was finalized."""
    for i, (loss, seed, status, fid) in enumerate(jobs):
        cfg = compose_train(root / str(i), [f"loss={loss}", f"seed={seed}", *extra])
        logger = TensorBoardLogger(save_dir=str(root / str(i)), name="tensorboard", version="")
        logger.log_metrics({"train/g_loss": 1.0}, step=1)
        if fid is not None:  # the last points are the final scores the tab shows
            logger.log_metrics({"val/fid": fid + 5, "val/best_fid": fid + 5}, step=1)
            logger.log_metrics({"val/fid": fid, "val/best_fid": fid - 1, "val/is": 2.0}, step=7)
        logger.finalize("success")  # as after Trainer.fit: log_hparams must reopen the writer
        log_hparams([logger], cfg, summary(loss, seed, status, fid))


JOBS = [("hinge", 1, "completed", 10.0), ("hinge", 2, "completed", 14.0),
        ("wgan", 1, "diverged", None)]  # fmt: skip


def test_every_run_is_a_row_of_the_hparams_tab(tmp_path):
    write_runs(tmp_path, JOBS)
    experiment, groups = session_groups(tmp_path)
    assert [(m.name.tag, m.display_name) for m in experiment.metric_infos] == [
        ("val/fid", "final FID"), ("val/best_fid", "best FID"), ("val/is", "final IS"),
        ("val/kid", "final KID"), ("val/modes_covered", "modes covered")]  # fmt: skip
    infos = {h.name: h for h in experiment.hparam_infos}
    assert {"model", "loss", "dataset", "lr_g", "lr_d", "beta1_g", "n_critic", "batch_size",
            "seed", "ema_decay", "max_steps", "status", "health"} <= set(infos)  # fmt: skip
    assert [value(v) for v in infos["status"].domain_discrete.values] == [
        "completed", "diverged", "failed", "interrupted", "refused"]  # fmt: skip
    # Outside a sweep nothing varies: model, loss, seed, health and status are the default columns.
    shown = {n for n, h in infos.items() if h.differs}
    assert shown == {"model", "loss", "seed", "health", "status"}
    assert infos["lr_g"].description == "optim.g.lr"

    # One session group per run (no averaging over seeds unless asked for).
    assert len(groups) == 3 and all(len(g.sessions) == 1 for g in groups)
    rows = {(value(g.hparams["loss"]), value(g.hparams["seed"])): g for g in groups}
    assert set(rows) == {("hinge", "1"), ("hinge", "2"), ("wgan", "1")}  # ints as ints
    metrics = {m.name.tag: m.value for m in rows["hinge", "1"].metric_values}
    assert metrics["val/fid"] == 10.0 and metrics["val/best_fid"] == 9.0  # the last points
    hinge = rows["hinge", "2"]
    assert value(hinge.hparams["lr_g"]) == pytest.approx(2e-4)
    assert value(hinge.hparams["beta1_g"]) == pytest.approx(0.5)
    assert value(hinge.hparams["optimizer_g"]) == "Adam"
    assert value(hinge.hparams["batch_size"]) == "32" and value(hinge.hparams["n_critic"]) == "1"
    wgan = rows["wgan", "1"]
    (session,) = wgan.sessions
    assert session.status == 2  # STATUS_FAILURE: diverged
    assert "val/fid" not in {m.name.tag for m in wgan.metric_values}  # never scored: empty
    assert "beta1_g" not in wgan.hparams  # RMSprop has no betas: NaN, which the tab shows empty
    assert value(wgan.hparams["optimizer_g"]) == "RMSprop"


def test_runs_are_grouped_only_when_asked(tmp_path):
    write_runs(tmp_path, JOBS, ["tensorboard.group_by=[model,loss]"])
    _, groups = session_groups(tmp_path)
    by_loss = {value(g.hparams["loss"]): g for g in groups}
    assert len(groups) == 2 and len(by_loss["hinge"].sessions) == 2
    metrics = {m.name.tag: m.value for m in by_loss["hinge"].metric_values}
    assert metrics["val/fid"] == pytest.approx(12.0)  # the mean of 10 and 14


def test_group_by_names_hparams(tmp_path):
    cfg = compose_train(tmp_path / "run", ["tensorboard.group_by=[model,losss]"])
    with pytest.raises(ConfigError, match="'losss', which is no HParams column"):
        place_tensorboard(cfg)


def test_the_sweep_keys_are_the_default_columns():
    assert shown_by_default(["loss", "seed"]) == ["loss", "seed", "model", "health", "status"]
    swept = ["optim.g.lr", "optim.d.lr", "optim.n_critic", "loss", "model", "seed"]
    assert shown_by_default(swept) == ["lr_g", "lr_d", "n_critic", "loss", "model", "seed"]
    # A swept setting HPARAM_KEYS lacks becomes a column of its own, shown by default.
    hp = flatten_hparams(
        None, summary("hinge", 1), {"regularizer.r1.interval": "regularizer.r1.interval=8"}
    )
    assert hp["regularizer.r1.interval"] == "8" and "regularizer.r1.interval" in shown_by_default(
        ["regularizer.r1.interval"]
    )


def test_every_run_writes_the_same_names_and_types(tmp_path):
    # The plugin takes the experiment definition from one arbitrary run, so runs must agree.
    a = flatten_hparams(compose_train(tmp_path / "a", ["loss=wgan", "model.ema_decay=0.99"]),
                        summary("wgan", 1))  # fmt: skip
    b = flatten_hparams(compose_train(tmp_path / "b", ["loss=hinge", "seed=null"]),
                        summary("hinge", None, "failed"))  # fmt: skip
    assert list(a) == list(b)
    assert {k: type(v) for k, v in a.items()} == {k: type(v) for k, v in b.items()}
    assert a["ema_decay"] == 0.99 and math.isnan(b["ema_decay"]) and b["seed"] == "none"


def test_no_tensorboard_logger_writes_nothing(tmp_path):
    log_hparams([], None, summary("hinge", 1))
    log_hparams(None, None, summary("hinge", 1))
    assert list(tmp_path.iterdir()) == []
