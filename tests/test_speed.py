"""The speed work changes no results; the benchmark script runs and emits valid JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganarena.train import train
from tests.conftest import REPO, compose_train


def logged_losses(run_dir) -> dict[str, list[float]]:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [e.value for e in acc.Scalars(t)] for t in ("train/d_loss", "train/g_loss")}


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_optimisations_leave_the_first_50_steps_unchanged(tmp_path, model):
    base = [
        f"model={model}",
        "trainer.max_steps=50",
        "dataset.limit=640",
        "seed=7",
        "callbacks.checkpoint.every_n_steps=50",
        "callbacks.samples.every_n_steps=50",
    ]
    if model == "dcgan":  # keep the conv model quick on CPU
        base += ["model.width=8", "trainer.max_steps=25"]
    fast, plain = tmp_path / "fast", tmp_path / "plain"
    train(compose_train(fast, base))
    train(
        compose_train(plain, [*base, "speed.fused_optimizers=false", "speed.batched_loader=false"])
    )
    a, b = logged_losses(fast), logged_losses(plain)
    for tag in a:
        assert len(a[tag]) == len(b[tag]) == (50 if model == "mlp" else 25)
        assert torch.allclose(torch.tensor(a[tag]), torch.tensor(b[tag]), rtol=1e-4, atol=1e-5), tag


def test_benchmark_quick_emits_json(tmp_path):
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    kinds = [line["kind"] for line in lines]
    assert kinds == ["train", "train", "train", "mfu", "summary"]
    summary = lines[-1]
    rates = {k: summary[f"{k}_imgs_per_s_median"] for k in ("baseline", "tensor_loop", "ganarena")}
    assert all(r > 0 for r in rates.values())
    # one repeat: the medians are the ratios of the single measurements
    assert summary["ratio_median"] == pytest.approx(rates["ganarena"] / rates["baseline"], rel=1e-2)
    assert summary["ratio_vs_tensor_loop_median"] == pytest.approx(
        rates["ganarena"] / rates["tensor_loop"], rel=1e-2
    )
    # the suite pins float32 (conftest): the benchmark resolves auto as a run does, and says so
    assert (
        summary["precision"] == "32-true"
        and "GANARENA_CPU_PRECISION" in summary["precision_reason"]
    )
    mfu = lines[3]
    assert mfu["peak_used"] == "fp32" and mfu["peak_tflops"]["fp32"] > 0
    assert summary["mfu"] == pytest.approx(
        mfu["achieved_tflops"] / mfu["peak_tflops"]["fp32"], rel=0.02
    )
    assert mfu["achieved_tflops"] == pytest.approx(
        mfu["gflop_per_step"] * 1e9 * rates["ganarena"] / summary["batch"] / 1e12, rel=0.02
    )


def test_benchmark_startup_rows(monkeypatch):
    """The startup rows' machinery on two of its commands (the full set: --startup)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import benchmark
    finally:
        sys.path.remove(str(REPO / "scripts"))
    picked = ["floor: python -c 'import torch'", "ganarena-train trainer.max_steps=-5 (bad value)"]
    monkeypatch.setattr(benchmark, "STARTUP", {k: benchmark.STARTUP[k] for k in picked})
    rows = benchmark.startup(repeats=1)
    assert [r["command"] for r in rows] == picked
    assert [r["exit_code"] for r in rows] == [0, 2]  # the bad value is refused
    assert all(r["kind"] == "startup" and r["median_s"] > 0 for r in rows)


def _gpu_check():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return gpu_check


def test_gpu_check_counts_the_mlp_step_flops_in_closed_form(tmp_path):
    # 2*in*out FLOPs per sample per Linear forward; backward: weight grads always, input grads
    # only where the input needs them (not z, not the real or detached fake images).
    g = [(100, 256), (256, 512), (512, 784)]
    d = [(784, 512), (512, 256), (256, 1)]
    fwd = lambda layers: sum(2 * i * o for i, o in layers)  # noqa: E731
    per_sample = (
        fwd(g) + 3 * fwd(d)  # G(z); D(real), D(fake.detach()), D(fake)
        + 2 * (fwd(d) + fwd(d[1:]))  # D step backward, real and detached fake
        + 2 * fwd(d)  # G step backward through D (weights and inputs)
        + fwd(g) + fwd(g[1:])  # ... and through G (weights; inputs but z)
    )  # fmt: skip
    assert per_sample == 11_280_896
    flops = _gpu_check().step_flops("mlp", 4, "cpu", tmp_path / "data", tmp_path / "out")
    assert flops == 4 * per_sample


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_cpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--device", "cpu", "--quick",
         "--no-ddp", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "gpu_check.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("train") == 6 and kinds.count("mfu") == 2 and kinds.count("eval") == 2
    train = [r for r in rows if r["kind"] == "train"]
    assert {r["arm"] for r in train} == {
        "tutorial loop (fp32)",
        "ganarena fp32",
        "ganarena bf16-mixed",
    }  # compile rows: CUDA only unless --compile
    assert all(r["imgs_per_s"] > 0 and r["device"] == "cpu" for r in train)
    mfu = [r for r in rows if r["kind"] == "mfu"]
    # a CPU's peak is its own, measured: fp32 rows against the fp32 matmul, bf16 against bf16
    assert all(r["peak_source"] == "measured matmul" and r["gflop_per_step"] > 0 for r in mfu)
    for r in mfu:
        assert r["peak_tflops"] == r["measured_peak_tflops"] > 0
        assert r["mfu"] == pytest.approx(r["achieved_tflops"] / r["peak_tflops"], rel=0.05)
    domain = next(r for r in rows if r["kind"] == "eval" and r["backbone"] == "domain")
    assert domain["n_fake"] == 500 and domain["seconds"] > 0 and domain["fid"] > 0
    assert "ddp" not in kinds  # --no-ddp: the suite's DDP runs are tests/test_fault.py's
    sweep = next(r for r in rows if r["kind"] == "sweep")
    assert sweep["estimate_min"] == pytest.approx(sweep["serial_min"] / 6, abs=0.1)
    table = (tmp_path / "gpu_check.md").read_text()
    assert "GPU check on CPU" in table and "| DCGAN-64 | 16 | ganarena fp32 |" in table


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert _gpu_check().main(["--device", "cuda"]) == 2


def test_speed_compile_keeps_parameter_names_and_refuses_double_backward(tmp_path):
    from ganarena.errors import ConfigError
    from ganarena.run.config import validate_train
    from ganarena.tasks import build_task
    from ganarena.train import compile_networks

    cfg = compose_train(tmp_path / "run", ["model=dcgan", "speed.compile=default"])
    validate_train(cfg)
    task = build_task(cfg)
    before = {k: v.clone() for k, v in task.state_dict().items()}
    compile_networks(task, "default")  # lazy: nothing is compiled before the first forward
    assert task.generator._compiled_call_impl is not None
    assert task.discriminator._compiled_call_impl is not None
    assert all(ema.module._compiled_call_impl is None for _, ema in task._emas)  # not trained
    after = task.state_dict()
    assert list(after) == list(before)  # checkpoints stay loadable with and without compile
    assert all(torch.equal(before[k], after[k]) for k in before)
    for overrides, needle in (
        (["speed.compile=fast"], r"speed.compile must be null \(off\) or one of default"),
        (["speed.compile=default", "loss=wgan_gp"], "regularizer.gp"),
        (
            ["speed.compile=default", "experiment=stylegan2"],
            "regularizer.r1, regularizer.path_length",
        ),
    ):
        with pytest.raises(ConfigError, match=needle):
            validate_train(compose_train(tmp_path / "bad", overrides))


def test_a_checkpoint_resumes_in_the_other_memory_layout_with_the_same_updates(tmp_path):
    """speed.channels_last may differ between the run that wrote a checkpoint and the one that
    resumes it (auto follows the probe). Fused Adam pairs a parameter with its moments by memory
    position, so moments loaded in the other layout gave wrong updates, silently; the task's
    optimizers put loaded state in each parameter's layout."""
    from ganarena.run.config import validate_train
    from ganarena.tasks import build_task

    cfg = compose_train(tmp_path / "run", ["model=dcgan", "model.width=8"])
    validate_train(cfg)
    torch.manual_seed(0)
    grads = [
        [torch.randn_like(p) for p in build_task(cfg).discriminator.parameters()] for _ in range(2)
    ]

    def train_d(layouts):  # one step in the first layout, resume, one step in the second
        torch.manual_seed(1)
        task = build_task(cfg)
        state = None
        for step, layout in enumerate(layouts):
            task.discriminator.to(memory_format=layout)
            opt = task.make_optimizer(task.optimizer_d, task.discriminator.parameters())
            assert opt.defaults.get("fused")
            if state is not None:
                opt.load_state_dict(state)
            for p, g in zip(task.discriminator.parameters(), grads[step], strict=True):
                p.grad = g.clone().to(memory_format=layout) if g.dim() == 4 else g.clone()
            opt.step()
            state = opt.state_dict()
        return [p.detach().contiguous() for p in task.discriminator.parameters()]

    nchw, nhwc = torch.contiguous_format, torch.channels_last
    reference = train_d([nchw, nchw])
    for layouts in ([nchw, nhwc], [nhwc, nchw], [nhwc, nhwc]):
        got = train_d(layouts)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, reference, strict=True))
