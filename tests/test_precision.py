"""trainer.precision=auto: the precision chosen from the machine (CPU flags, a measured probe of
the run's own networks), recorded in metrics.json; bad values refused."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from ganarena.errors import ConfigError
from ganarena.run import precision
from tests.conftest import compose_train

CPU = OmegaConf.create({"accelerator": "cpu", "devices": 1, "strategy": "auto"})


@pytest.fixture
def unpinned(monkeypatch):
    """The machine decides (the suite pins float32 with GANARENA_CPU_PRECISION)."""
    monkeypatch.delenv(precision.ENV, raising=False)


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16 amx_tile amx_bf16\n")
    assert {"avx512_bf16", "amx_bf16"} <= precision.cpu_flags(info)
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_no_bf16_units_keep_float32_without_probing(unpinned, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(precision, "probe", lambda *a, **k: pytest.fail("probed"))
    value, why, channels_last = precision.resolve(CPU, object(), 64)
    assert value == "32-true" and "no bf16 matrix units" in why and not channels_last


@pytest.mark.parametrize(("times", "chosen"), [((2.0, 1.0), "bf16-mixed"), ((1.1, 1.0), "32-true")])
def test_probe_decides_where_the_cpu_has_bf16_units(unpinned, monkeypatch, times, chosen):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16", "avx512_bf16"})
    monkeypatch.setattr(precision, "probe", lambda *a, **k: times)

    class Task:
        def probe_networks(self):
            return torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), None

    value, why, channels_last = precision.resolve(CPU, Task(), 64)
    assert value == chosen and not channels_last  # no convolutions: no layout to choose
    assert f"{times[0] / times[1]:.2f}x" in why and "amx_bf16+avx512_bf16" in why


def test_the_answer_is_measured_once_per_machine_model_and_batch(unpinned, monkeypatch, tmp_path):
    """The probe's answer is kept in the cache: a later run of the same model and batch on this
    machine trains in the same precision even where a new probe would read the other side of
    the threshold (one sweep, one precision); another model or batch is measured on its own."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    calls = []

    def probe(*a, **k):
        calls.append(a[2])  # batch size
        return (1.3, 1.0) if len(calls) == 1 else (1.1, 1.0)  # 1.30x, then 1.10x

    monkeypatch.setattr(precision, "probe", probe)

    class Task:
        def __init__(self, width):
            self.width = width

        def probe_networks(self):
            return torch.nn.Linear(self.width, 1), torch.nn.Linear(1, 1), None

    first = precision.resolve(CPU, Task(4), 64, cache_dir=tmp_path)
    again = precision.resolve(CPU, Task(4), 64, cache_dir=tmp_path)
    assert first[0] == again[0] == "bf16-mixed" and calls == [64]
    assert "1.30x" in again[1] and "measured once on this machine" in again[1]
    (kept,) = (tmp_path / "precision_probe").glob("*.json")
    assert json.loads(kept.read_text())["trainer_precision"] == "bf16-mixed"
    # another batch size, another model: measured (now 1.10x: float32)
    assert precision.resolve(CPU, Task(4), 32, cache_dir=tmp_path)[0] == "32-true"
    assert precision.resolve(CPU, Task(8), 64, cache_dir=tmp_path)[0] == "32-true"
    assert calls == [64, 32, 64] and len(list((tmp_path / "precision_probe").glob("*.json"))) == 3
    kept.write_text("{not json")  # an unreadable answer is measured again, not trusted
    assert precision.resolve(CPU, Task(4), 64, cache_dir=tmp_path)[0] == "32-true"
    assert calls == [64, 32, 64, 64]


def test_pinned_by_environment_and_ddp_keeps_float32(monkeypatch):
    monkeypatch.setenv(precision.ENV, "bf16-mixed")
    assert precision.resolve(CPU, object(), 8)[0] == "bf16-mixed"
    monkeypatch.delenv(precision.ENV)
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16"})
    ddp = OmegaConf.create({"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    value, why, _ = precision.resolve(ddp, object(), 8)
    assert value == "32-true" and "DDP" in why


def test_probe_leaves_the_networks_and_random_streams_alone(tmp_path):
    from ganarena.tasks import build_task

    cfg = compose_train(
        tmp_path / "run", ["model=dcgan", "model.width=8", "model.conditional=false"]
    )
    task = build_task(cfg)
    before = {k: v.clone() for k, v in task.state_dict().items()}
    rng = torch.get_rng_state()
    g, d, d_input = task.probe_networks()
    times = precision.probe(g, d, 8, d_input, rounds=1, steps=1, channels_last=True)
    assert len(times) == 3 and all(t > 0 for t in times)  # float32, bf16, bf16 channels_last
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in task.state_dict().items():
        assert torch.equal(value, before[key]) and value.is_contiguous(), key  # NCHW still


@pytest.mark.parametrize(
    ("times", "chosen", "channels_last"),
    [
        ((2.0, 1.0, 0.9), "bf16-mixed", True),  # NHWC 1.11x faster under bf16
        ((2.0, 1.0, 0.98), "bf16-mixed", False),  # 1.02x: within the probe's noise
        ((1.1, 1.0, 0.85), "bf16-mixed", True),  # bf16 wins only in NHWC: 1.29x over float32
        ((1.0, 1.0, 0.9), "32-true", False),  # 1.11x over float32: float32, NCHW
    ],
)
def test_the_probe_picks_the_layout_with_the_precision(
    unpinned, monkeypatch, times, chosen, channels_last
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    asked = []

    def probe(*a, channels_last=False, **k):
        asked.append(channels_last)
        return times if channels_last else times[:2]

    monkeypatch.setattr(precision, "probe", probe)

    class Task:
        def probe_networks(self):
            return torch.nn.ConvTranspose2d(1, 1, 1), torch.nn.Conv2d(1, 1, 1), None

    choice = precision.resolve(CPU, Task(), 64)
    assert (choice.precision, choice.channels_last) == (chosen, channels_last) and asked == [True]
    assert f"channels_last {times[2] * 1e3:.1f} ms" in choice.why


def test_auto_recorded_in_metrics_json(unpinned, monkeypatch, tmp_path):
    """A run with the probe saying bf16 is 2x faster trains in bf16-mixed and says why; a bad
    precision is refused before anything runs."""
    from ganarena.train import train

    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16"})
    monkeypatch.setattr(precision, "probe", lambda *a, **k: (0.02, 0.01, 0.008))
    run = tmp_path / "run"
    train(compose_train(run, ["accelerator=cpu", "model=dcgan", "model.width=8"]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["trainer_precision"] == "bf16-mixed"
    assert (
        "2.50x" in metrics["precision_reason"]
        and "channels_last 8.0 ms" in metrics["precision_reason"]
    )
    # speed.channels_last=auto followed the probe: recorded, trained and saved in NHWC, and the
    # checkpoint loads into the NCHW networks ganarena-eval builds, with the same weights
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    saved = ckpt["ganarena_config"]
    assert saved["speed"]["channels_last"] is True and saved["trainer"]["precision"] == "bf16-mixed"
    convs = {k: v for k, v in ckpt["state_dict"].items() if v.dim() == 4 and v.shape[1] > 1}
    assert convs and all(v.is_contiguous(memory_format=torch.channels_last) for v in convs.values())
    from ganarena.tasks import load_task

    loaded, _ = load_task(run / "checkpoints" / "last.ckpt")
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in convs.items())
    from ganarena.train import choose_precision

    pinned = compose_train(tmp_path / "pinned", ["trainer.precision=32-true"])
    assert choose_precision(pinned, None) == "set by trainer.precision"
    assert pinned.trainer.precision == "32-true" and pinned.speed.channels_last is False
    with pytest.raises(ConfigError, match="trainer.precision='fp8'.*auto picks bf16-mixed"):
        train(compose_train(tmp_path / "bad", ["trainer.precision=fp8"]))
    assert not (tmp_path / "bad").exists()


def test_two_d_points_keep_float32(unpinned, monkeypatch):
    """bf16 would round the mixtures' coordinates at the scale of their sigma: never chosen."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16"})
    monkeypatch.setattr(precision, "probe", lambda *a, **k: pytest.fail("probed"))
    value, why, _ = precision.resolve(CPU, object(), 100, scored_as="points")
    assert value == "32-true" and "2-D points" in why
    assert torch.tensor(4.015).bfloat16().item() == 4.0  # the rounding it avoids (step 1/32)


def test_a_lazy_regulariser_sees_the_weights_its_optimizer_step_just_updated_under_bf16(tmp_path):
    """A manual-optimization training_step runs inside one autocast context, and an autocast that
    caches reuses the bf16 copy of each weight that requires grad until the context exits, blind
    to in-place updates. A lazy regulariser's forward follows its network's optimizer step in the
    same training_step (R1 every 16 critic steps, path length every 4 generator steps), so with a
    caching autocast it would see the pre-step weights. Lightning's precision plugin opens
    autocast with cache_enabled=False; this guards that the forward sees the updated weights."""
    import copy

    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from ganarena.run.config import validate_train
    from ganarena.tasks import build_task

    cfg = compose_train(tmp_path / "run", ["model=mlp", "regularizer=[r1]", "seed=3"])
    validate_train(cfg)
    task = build_task(cfg)
    d_before = copy.deepcopy(task.discriminator)
    calls = []  # (inputs, output, the fp32 weights at the call)

    def record(module, args, out):
        weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        calls.append((args, out.detach(), weights))

    task.discriminator.register_forward_hook(record)
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1

    class Data(L.LightningDataModule):
        def train_dataloader(self):
            return DataLoader(TensorDataset(x, torch.zeros(32, dtype=torch.long)), batch_size=32)

        def seek(self, step):  # the task asks its data to resume at a step
            pass

    L.Trainer(
        max_steps=1, precision="bf16-mixed", accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    ).fit(task, datamodule=Data())  # fmt: skip
    # D(real), D(fake), R1's D(real) after D's optimizer step (lazy, due at step 0), G's D(fake)
    assert task.d_step == task.g_step == 1 and len(calls) == 4
    d_now = copy.deepcopy(d_before)
    for args, seen, weights in calls[2:]:
        d_now.load_state_dict(weights)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            fresh, stale = d_now(*args), d_before(*args)
        assert torch.equal(seen, fresh)  # the critic as its optimizer step left it
        assert not torch.allclose(seen.float(), stale.float(), atol=1e-3)  # and it did move
