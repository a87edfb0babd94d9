"""Random values in numeric and enum config fields: a valid config or a clear GanarenaError,
never a raw exception from deep inside (hypothesis drives the values)."""

from __future__ import annotations

import math

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganarena.errors import GanarenaError
from ganarena.run.config import build, validate_train
from ganarena.tasks import build_task

ODD = st.sampled_from(["abc", "", "null", "true", "1e999", "-inf", "nan", "[1,2]", "{a: 1}"])
INTS = st.one_of(st.integers(-3, 300), st.sampled_from([0, -1, 10**9]), ODD)
FLOATS = st.one_of(
    st.floats(-10, 10), st.sampled_from([0.0, 1e-12, math.nan, math.inf, -math.inf]), ODD
)

NUMERIC = {
    "dataset.batch_size": INTS,
    "trainer.max_steps": INTS,
    "trainer.log_every_n_steps": INTS,
    "optim.n_critic": INTS,
    "regularizer.gp.weight": FLOATS,  # with loss=wgan_gp or regularizer=[gp]
    "regularizer.clip.value": st.one_of(FLOATS, st.just("null")),
    "loss.label_smoothing": FLOATS,
    "optim.g.lr": FLOATS,
    "optim.d.lr": FLOATS,
    "optim.d.betas": st.sampled_from(["[0.5,0.999]", "[1.5,0.9]", "[-0.1,0.9]", "[0.5]", "abc"]),
    "model.ema_decay": st.one_of(FLOATS, st.just("null")),
    "model.latent_dim": INTS,
    "seed": st.one_of(INTS, st.just("null")),
    "callbacks.checkpoint.every_n_steps": INTS,
    "callbacks.checkpoint.keep": INTS,
    "callbacks.samples.every_n_steps": INTS,
    "callbacks.samples.n": INTS,
    "dataset.image_size": st.sampled_from([-1, 0, 1, 7, 8, 16, 28, 29, 32, 64, "abc", "null", 1.5]),
    "dataset.channels": st.sampled_from([-1, 0, 1, 2, 3, 4, "abc", 1.0]),
    "dataset.limit": st.sampled_from([-5, 0, 1, 63, 64, 1000, "null", "abc", 2.5]),
    "regularizer.r1.gamma": FLOATS,  # with regularizer=[r1]
    "regularizer.r1.interval": INTS,
    "augment.strength": FLOATS,  # diffaugment only: a Hydra error for the others
    "augment.rotation": FLOATS,  # classic only
    "augment.policy": st.sampled_from(["color", "[translation,cutout]", "[]", "foo", "3"]),
    "eval.n_samples": INTS,
    "eval.batch_size": INTS,
    "eval.kid_subset_size": INTS,
    "eval.mode_threshold": FLOATS,
    "eval.per_class_fid": st.sampled_from(["true", "false", "1", "abc", "null"]),
}
BOOLS = st.sampled_from(["true", "false", "yes", "0", "abc", "null", "[]"])
ENUMS = {
    "model": st.sampled_from(["mlp", "dcgan", "foo"]),
    "loss": st.sampled_from(
        ["minimax", "nonsaturating", "lsgan", "wgan", "wgan_gp", "hinge", "bar"]
    ),
    "model.d_norm": st.sampled_from(["batch", "layer", "none", "group", 3]),
    "augment": st.sampled_from(["none", "classic", "diffaugment", "foo"]),
    "optim": st.sampled_from(["dcgan", "wgan", "wgan_gp", "r3gan", "baz"]),
    "regularizer": st.sampled_from(
        ["[]", "[gp]", "[clip]", "[r1]", "[r1,r2]", "[lecam]", "[path_length]", "[nope]"]
    ),
    "eval": st.sampled_from(["none", "domain", "inception"]),
    "model.conditional": BOOLS,
    "model.spectral_norm": BOOLS,
}


def fmt(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
    return str(value)


@st.composite
def overrides(draw):
    fields = {**ENUMS, **NUMERIC}
    keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=4, unique=True))
    # Group choices must come before the fields they contain.
    keys.sort(
        key=lambda k: (k not in ("model", "loss", "optim", "regularizer", "augment", "eval"), k)
    )
    return [f"{k}={fmt(draw(fields[k]))}" for k in keys]


@pytest.fixture(scope="module")
def hydra_ctx():
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        yield


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ov=overrides())
def test_train_config_fields_give_a_valid_setup_or_a_clear_error(hydra_ctx, tmp_path_factory, ov):
    out = tmp_path_factory.getbasetemp() / "fuzz"
    try:
        cfg = compose("train", overrides=["dataset=mnist_sample", f"paths.output_dir={out}", *ov])
    except (HydraException, OmegaConfBaseException):
        return  # Hydra's own message (unknown option, parse error): clear, and nothing ran
    try:
        validate_train(cfg)
        OmegaConf.resolve(cfg)
        build(cfg.dataset)  # constructor checks (no data loaded)
        module = build_task(cfg)
        module.configure_optimizers()
    except GanarenaError as e:
        assert len(str(e)) > 30 and "\n" not in str(e).strip(), str(e)
        return
    # Accepted: the settings really are usable.
    assert cfg.dataset.batch_size > 0 and cfg.trainer.max_steps > 0 and cfg.optim.n_critic > 0
    assert cfg.model.conditional in (True, False, "auto")  # auto: resolved from the data
    assert isinstance(cfg.model.spectral_norm, bool)
