"""log_hparams: what TensorBoard's HParams tab reads back, through the plugin's own handlers."""

from __future__ import annotations

import math

import pytest
from lightning.pytorch.loggers import TensorBoardLogger

from ganarena.hparams import flatten_hparams, log_hparams
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


def test_runs_of_a_sweep_are_compared_in_the_hparams_tab(tmp_path):
    sweep = tmp_path / "sweep"
    jobs = [("hinge", 1, "completed", 10.0), ("hinge", 2, "completed", 14.0),
            ("wgan", 1, "diverged", None)]  # fmt: skip
    for i, (loss, seed, status, fid) in enumerate(jobs):
        cfg = compose_train(sweep / str(i), [f"loss={loss}", f"seed={seed}"])
        logger = TensorBoardLogger(save_dir=str(sweep / str(i)), name="tensorboard", version="")
        logger.log_metrics({"train/g_loss": 1.0}, step=1)  # an ordinary training log first
        logger.finalize("success")  # as after Trainer.fit: log_hparams must reopen the writer
        log_hparams([logger], cfg, summary(loss, seed, status, fid))

    experiment, groups = session_groups(sweep)
    assert {m.name.tag for m in experiment.metric_infos} == {
        "hp/fid", "hp/is", "hp/kid", "hp/best_fid", "hp/wall_s", "hp/imgs_per_s"}  # fmt: skip
    infos = {h.name: h for h in experiment.hparam_infos}
    assert {"model", "loss", "dataset", "lr_g", "lr_d", "beta1_g", "n_critic", "batch_size",
            "seed", "ema_decay", "max_steps", "status"} <= set(infos)  # fmt: skip
    assert [value(v) for v in infos["status"].domain_discrete.values] == [
        "completed", "diverged", "failed", "interrupted", "refused"]  # fmt: skip

    # The two hinge seeds form one session group (seed is not part of the group), averaged.
    by_loss = {value(g.hparams["loss"]): g for g in groups}
    assert set(by_loss) == {"hinge", "wgan"}
    hinge = by_loss["hinge"]
    assert len(hinge.sessions) == 2
    metrics = {m.name.tag: m.value for m in hinge.metric_values}
    assert metrics["hp/fid"] == pytest.approx(12.0)  # mean of 10 and 14
    assert metrics["hp/imgs_per_s"] == pytest.approx(100.0)
    assert value(hinge.hparams["lr_g"]) == pytest.approx(2e-4)
    assert value(hinge.hparams["beta1_g"]) == pytest.approx(0.5)
    assert value(hinge.hparams["optimizer_g"]) == "Adam"
    wgan = by_loss["wgan"]
    (session,) = wgan.sessions
    assert session.status == 2  # STATUS_FAILURE: diverged
    assert math.isnan({m.name.tag: m.value for m in wgan.metric_values}["hp/fid"])
    assert "beta1_g" not in wgan.hparams  # RMSprop has no betas: NaN, which the tab shows empty
    assert value(wgan.hparams["optimizer_g"]) == "RMSprop"


def test_every_run_writes_the_same_names_and_types(tmp_path):
    # The plugin takes the experiment definition from one arbitrary run, so runs must agree.
    a = flatten_hparams(compose_train(tmp_path / "a", ["loss=wgan", "model.ema_decay=0.99"]),
                        summary("wgan", 1))  # fmt: skip
    b = flatten_hparams(compose_train(tmp_path / "b", ["loss=hinge", "seed=null"]),
                        summary("hinge", None, "failed"))  # fmt: skip
    assert list(a) == list(b)
    assert {k: type(v) for k, v in a.items()} == {k: type(v) for k, v in b.items()}
    assert a["ema_decay"] == 0.99 and math.isnan(b["ema_decay"]) and math.isnan(b["seed"])


def test_no_tensorboard_logger_writes_nothing(tmp_path):
    log_hparams([], None, summary("hinge", 1))
    log_hparams(None, None, summary("hinge", 1))
    assert list(tmp_path.iterdir()) == []
