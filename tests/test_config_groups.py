"""Config groups match concepts: the optimizers and n_critic are `optim`, every regulariser is one
file of `regularizer`, and each loss still brings its paper's settings (one override away); the
old spellings are refused with the new one named; old runs' saved configs still read."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from ganarena import api
from ganarena.errors import ConfigError
from ganarena.run.config import resolve_auto, validate_train
from ganarena.run.records import run_summary, select
from ganarena.tasks import build_task

from .conftest import REPO, compose_train, run_cli


def _opt(cfg, side):
    node = cfg.optim[side]
    return node._target_.rsplit(".", 1)[-1], node.lr, list(node.get("betas", []))


@pytest.mark.parametrize(
    "loss, optimizer, lr, betas, n_critic, regularizer",
    [
        ("nonsaturating", "Adam", 2e-4, [0.5, 0.999], 1, {}),
        ("hinge", "Adam", 2e-4, [0.5, 0.999], 1, {}),
        ("wgan", "RMSprop", 5e-5, [], 5, {"clip": ("WeightClip", "value", 0.01)}),
        ("wgan_gp", "Adam", 1e-4, [0.0, 0.9], 5, {"gp": ("GradientPenalty", "weight", 10.0)}),
        ("rpgan", "Adam", 2e-4, [0.0, 0.9], 1, {}),
    ],
)
def test_each_loss_brings_its_papers_optim_and_regulariser(
    loss, optimizer, lr, betas, n_critic, regularizer
):
    cfg = api.config([f"loss={loss}", "tuned=none"])
    for side in ("g", "d"):
        assert _opt(cfg, side) == (optimizer, lr, betas)
    assert cfg.optim.n_critic == n_critic
    got = {k: (v._target_.rsplit(".", 1)[-1], key, v[key]) for k, v in cfg.regularizer.items()
           for key in [regularizer[k][1]]} if regularizer else dict(cfg.regularizer)  # fmt: skip
    assert got == regularizer


def test_the_command_line_wins_over_what_a_loss_brings():
    cfg = api.config(["loss=wgan_gp", "optim=dcgan", "regularizer.gp.weight=3"])
    assert _opt(cfg, "d") == ("Adam", 2e-4, [0.5, 0.999]) and cfg.optim.n_critic == 1
    assert cfg.regularizer.gp.weight == 3
    assert "gp" not in api.config(["loss=wgan_gp", "~regularizer.gp"]).regularizer
    # a list on the command line adds to what a loss or preset brings, it does not replace it
    cfg = api.config(["experiment=r3gan", "regularizer=[lecam]"])
    assert set(cfg.regularizer) == {"r1", "r2", "lecam"} and cfg.regularizer.r1.interval == 1
    cfg = api.config(["experiment=stylegan2"])
    assert set(cfg.regularizer) == {"r1", "path_length"} and cfg.regularizer.r1.interval == 16


def test_the_regularisers_become_phases_of_their_network(tmp_path):
    task = build_task(compose_train(tmp_path / "a", ["loss=wgan_gp", "regularizer=[r1]"]))
    assert [p.name for p in task.d_phases] == ["gp", "r1"] and task.g_phases == []
    assert (task.d_phases[0].interval, task.d_phases[1].interval) == (1, 16)
    # weight clipping is a constraint after the D step, not a phase
    task = build_task(compose_train(tmp_path / "b", ["loss=wgan"]))
    assert task.d_phases == [] and task.penalties["clip"].value == 0.01
    assert task.summary()["r1_gamma"] == 0.0


def test_per_sample_penalties_follow_declarations_not_names(tmp_path):
    # the MLP discriminator declares it has no normalisation layer: d_norm=batch is harmless
    validate_train(
        compose_train(tmp_path / "a", ["model=mlp", "loss=wgan_gp", "model.d_norm=batch"])
    )
    with pytest.raises(ConfigError, match=r"regularizer.gp \(GradientPenalty\) is a per-sample"):
        validate_train(
            compose_train(tmp_path / "b", ["model=dcgan", "loss=wgan_gp", "model.d_norm=batch"])
        )
    cfg = compose_train(tmp_path / "c", ["model=dcgan", "loss=wgan_gp"])
    resolve_auto(cfg)
    assert cfg.model.d_norm == "layer"  # what the penalty's paper prescribes
    cfg = compose_train(tmp_path / "d", ["model=dcgan", "loss=wgan_gp", "regularizer.gp.weight=0"])
    resolve_auto(cfg)
    assert cfg.model.d_norm == "batch"  # a regulariser with weight 0 is off


def test_a_task_refuses_the_regularisers_it_does_not_apply(tmp_path):
    base = ["experiment=cyclegan_digits", "model=resnet", "dataset=mnist2inverted"]
    with pytest.raises(ConfigError, match=r"regularizer.r1 \(R1\) cannot apply to task=cyclegan"):
        validate_train(compose_train(tmp_path / "a", [*base, "regularizer=[r1]"]))
    cfg = compose_train(tmp_path / "b", [*base, "loss=wgan_gp", "optim.n_critic=1"])
    task = build_task(cfg)
    assert (task.gp_weight, task.clip_value) == (10.0, None)
    with pytest.raises(ConfigError, match="freeze_d applies to the GAN task"):
        validate_train(compose_train(tmp_path / "c", [*base, "init_from=x.ckpt", "freeze_d=1"]))


@pytest.mark.parametrize(
    "old, new",
    [
        ("loss.optimizer_g.lr=1e-3", "optim.g.lr=1e-3"),
        ("loss.optimizer_d.betas=[0,0.9]", "optim.d.betas=[0,0.9]"),
        ("loss.n_critic=2", "optim.n_critic=2"),
        ("loss.gp_weight=5", "regularizer.gp.weight=5"),
        ("loss.clip_value=0.02", "regularizer.clip.value=0.02"),
        ("task.r1.gamma=1", "regularizer.r1.gamma=1"),
        ("task.path_length.weight=0", "regularizer.path_length.weight=0"),
        ("loss.d_norm=none", "model.d_norm=none"),
    ],
)
def test_old_spellings_are_refused_with_the_new_one(old, new):
    with pytest.raises(ConfigError, match=f"Use `{new}` instead".replace("[", r"\[")):
        api.config([old])


def test_the_cli_refuses_an_old_spelling_before_composing(tmp_path):
    res = run_cli(["ganarena.train", "task.r1.gamma=10"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    message = " ".join(res.stderr.split())
    assert "`task.r1.gamma` has moved to `regularizer.r1.gamma`" in message
    assert "regularizer=[r1]" in message
    assert not (tmp_path / "outputs").exists()


def test_old_runs_saved_configs_still_read():
    old = OmegaConf.create(
        {"loss": {"name": "wgan", "n_critic": 5, "optimizer_g": {"lr": 5e-5}, "clip_value": 0.01},
         "task": {"name": "gan", "r1": {"gamma": 0.0}}}
    )  # fmt: skip
    summary = run_summary(old)
    assert (summary["n_critic"], summary["lr_g"], summary["r1_gamma"]) == (5, 5e-5, 0.0)
    assert select(old, "regularizer.clip.value") == 0.01
    assert select(OmegaConf.create({"r1": {"gamma": 2.0}}), "regularizer.r1.gamma") == 2.0


def test_every_loss_yaml_holds_only_the_loss():
    """The optimizer, n_critic, clipping and penalty live in their own groups now."""
    for path in sorted((REPO / "conf" / "loss").glob("*.yaml")):
        cfg = OmegaConf.load(path)
        assert set(cfg) - {"defaults"} == {"name", "objective", "label_smoothing"}, path.name


def test_a_checkpoint_saved_before_the_groups_still_loads(tmp_path):
    """The saved config of an earlier ganarena (task.r1, task.gp_weight, loss.optimizer_*) is
    upgraded on load: eval and generate keep working on old runs."""
    import torch

    from ganarena.tasks import load_task
    from ganarena.train import train

    run = tmp_path / "run"
    train(compose_train(run, ["loss=wgan_gp", "trainer.max_steps=1"]))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    cfg = ckpt["ganarena_config"]
    optim = cfg.pop("optim")
    cfg["loss"].update(optimizer_g=optim["g"], optimizer_d=optim["d"], n_critic=5, gp_weight=10.0)
    task_cfg = cfg["task"]
    task_cfg.pop("regularizers")
    task_cfg.update(gp_weight=10.0, clip_value=None, r1={"gamma": 0.0, "interval": 16},
                    path_length={"weight": 0.0, "interval": 4})  # fmt: skip
    cfg.pop("regularizer")
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    task, upgraded = load_task(old)
    assert [p.name for p in task.d_phases] == ["gp"] and task.d_phases[0].weight == 10.0
    assert set(upgraded.regularizer) == {"gp"} and task.n_critic == 5
