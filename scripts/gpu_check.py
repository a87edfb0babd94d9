"""The GPU check: one command that shows what ganarena does on one NVIDIA GPU.

    python scripts/gpu_check.py                       # on a machine with a GPU (~5 min on an H100)
    python scripts/gpu_check.py --device cpu --quick  # the same rows on a CPU, in seconds (tests)

Rows (one JSON line each, then a Markdown table for the README):
- train: real images per second, steady state, of the tutorial loop (CPU DataLoader with
  ToTensor/Normalize per item, fp32) and of ganarena's training path (data resident on the
  device) in fp32, in bf16-mixed, and with speed.compile=default and =reduce-overhead (CUDA
  graphs), for the MLP at batch 128 and DCGAN-64 at batch 128 (scripts/benchmark.py's arms).
  The compile rows run on CUDA only unless --compile (on a CPU they spend minutes in the C++
  compiler before the first step).
- mfu: model FLOPs utilisation of DCGAN-64 at batch 128: FLOPs of one training step (counted
  by torch.utils.flop_counter over the D step on real+fake and the G step through D, forward
  and backward) x steps/s / the device's dense peak in the arm's precision (bf16 for
  bf16-mixed, TF32 for fp32, cuDNN's default for convolutions). Peaks of known GPUs are in
  PEAK_TFLOPS (--peak-tflops BF16,TF32 for others); on a CPU the peak is the machine's own,
  measured (a 2048^2 matmul in fp32 and in bf16, benchmark.measured_peak), and every row also
  carries the measured peak beside the data sheet's.
- eval: seconds to score 10,000 samples (FID/IS/KID) with the domain classifier, and with
  Inception when its weights are on disk (else the row says why it was skipped).
- ddp: a one-device `accelerator=ddp` run (ddp_cpu on a CPU) of 50 steps, its exit code and steps.
- sweep: the loss_zoo experiment's cost on this device, from per-step times measured here.

Targets (issue #16, one H100-class GPU): MLP b128 >= 5x the tutorial loop; 10k samples scored
in < 5 s. The table says "met" or "missed" beside each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402  (the arms, data and eval timing are shared)

# Dense peak TFLOPS (vendor data sheets, SXM/PCIe as named): (bf16, tf32).
PEAK_TFLOPS = {
    "H200": (989.0, 494.5),
    "H100 SXM": (989.0, 494.5),
    "H100 PCIe": (756.0, 378.0),
    "H100": (989.0, 494.5),
    "A100": (312.0, 156.0),
    "L40S": (362.0, 183.0),
    "L4": (121.0, 60.0),
    "A10": (125.0, 62.5),
}
MLP_TARGET, EVAL_TARGET_S = 5.0, 5.0


def peak_for(device: str, given: str | None) -> tuple[float, float] | None:
    if given:
        bf16, tf32 = (float(v) for v in given.split(","))
        return bf16, tf32
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


step_flops = bench.step_flops  # FLOPs of one training step (shared with benchmark.py)


def train_rows(args, root: Path, tmp: Path) -> list[dict]:
    arms = {
        "tutorial loop (fp32)": None,
        "ganarena fp32": ["trainer.precision=32-true"],
        "ganarena bf16-mixed": ["trainer.precision=bf16-mixed"],
    }
    if args.device == "cuda" or args.compile:
        arms["ganarena fp32 + compile"] = ["trainer.precision=32-true", "speed.compile=default"]
        arms["ganarena fp32 + compile + CUDA graphs"] = [
            "trainer.precision=32-true",
            "speed.compile=reduce-overhead",
        ]
    rows = []
    for model in ("mlp", "dcgan"):
        run = argparse.Namespace(
            model=model,
            batch=args.batch,
            device=args.device,
            steps=args.steps or (300 if model == "mlp" else 100),
            warmup=args.warmup if args.warmup is not None else 30,
        )
        rates: dict[str, list[float]] = {name: [] for name in arms}
        for r in range(args.repeats):
            for name, extra in arms.items():
                out = tmp / f"{model}_{len(rows)}_{r}_{abs(hash(name))}"
                if extra is None:
                    rates[name].append(bench.run_baseline(run, root))
                else:
                    rates[name].append(bench.run_ganarena(run, root, out, extra))
        base = statistics.median(rates["tutorial loop (fp32)"])
        for name, values in rates.items():
            rate = statistics.median(values)
            rows.append(
                {
                    "kind": "train",
                    "model": "MLP" if model == "mlp" else "DCGAN-64",
                    "batch": args.batch,
                    "arm": name,
                    "imgs_per_s": round(rate, 1),
                    "vs_tutorial": round(rate / base, 2),
                    "repeats": args.repeats,
                }
            )
    return rows


def mfu_rows(args, root: Path, tmp: Path, train: list[dict]) -> list[dict]:
    flops = step_flops("dcgan", args.batch, args.device, root, tmp / "flops")
    measured = bench.measured_peak(args.device, 0.2 if args.quick else 1.0)
    peak = peak_for(args.device, args.peak_tflops)
    source = "data sheet" if peak is not None else "measured matmul"
    if peak is None:  # a CPU (or an unlisted GPU): the peak this machine shows torch
        peak = (measured["bf16"], measured["fp32"])
    rows = []
    for arm, which in (("ganarena fp32", 1), ("ganarena bf16-mixed", 0)):
        rate = next(r["imgs_per_s"] for r in train if r["model"] == "DCGAN-64" and r["arm"] == arm)
        achieved = flops * rate / args.batch  # FLOPs per step x steps per second
        row = {
            "kind": "mfu",
            "model": "DCGAN-64",
            "batch": args.batch,
            "arm": arm,
            "gflop_per_step": round(flops / 1e9, 2),
            "achieved_tflops": round(achieved / 1e12, 3),
            "peak_tflops": peak[which],
            "peak_source": source,
            "measured_peak_tflops": measured["bf16" if which == 0 else "fp32"],
            "mfu": round(achieved / (peak[which] * 1e12), 4),
        }
        rows.append(row)
    return rows


def eval_rows(args, root: Path, tmp: Path) -> list[dict]:
    n = 500 if args.quick else 10000
    # --quick: a classifier trained for 1 epoch on 2,000 digits (the timing is of the scoring)
    quick = ["eval.classifier.epochs=1", "eval.classifier.max_train_images=2000"] * args.quick
    run = argparse.Namespace(model="dcgan", batch=args.batch, device=args.device, steps=1, warmup=0)
    rows = []
    for backbone in ("domain", "inception"):
        try:
            row = bench.eval_throughput(run, root, tmp / f"eval_{backbone}", n, backbone, quick)
        except Exception as e:  # noqa: BLE001 - e.g. no Inception weights offline: say so
            first = str(e).split(". ")[0][:160]
            row = {"kind": "eval", "backbone": backbone, "n_fake": n, "skipped": first}
        rows.append(row)
    return rows


def ddp_row(args, root: Path, tmp: Path) -> dict:
    accel = "ddp" if args.device == "cuda" else "ddp_cpu"
    steps = 10 if args.quick else 50
    cmd = [
        sys.executable, "-m", "ganarena.train", f"accelerator={accel}", "trainer.devices=1",
        "model=mlp", "dataset=mnist", f"dataset.root={root}", "dataset.download=false",
        "dataset.fallback=null", f"trainer.max_steps={steps}", "eval=none",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp / 'ddp'}",
    ]  # fmt: skip
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    metrics = tmp / "ddp" / "metrics.json"
    done = json.loads(metrics.read_text()) if metrics.is_file() else {}
    return {
        "kind": "ddp",
        "accelerator": accel,
        "devices": 1,
        "exit_code": res.returncode,
        "status": done.get("status"),
        "steps": done.get("steps"),
        "wall_s": round(wall, 1),
        **({} if res.returncode == 0 else {"stderr_tail": res.stderr[-400:]}),
    }


def sweep_row(train: list[dict], evals: list[dict], jobs_at_once: int) -> dict:
    """experiment=loss_zoo: 6 losses x {MLP, DCGAN} x 3 seeds, 2,000 G steps each, 8
    evaluations of 10k samples. Per-step times from this device's fp32 rows (batch 128: an upper
    bound for loss_zoo's 64); wgan and wgan_gp take 5 D steps per G step (~3x the cost)."""
    seconds_per_step = {
        r["model"]: r["batch"] / r["imgs_per_s"] for r in train if r["arm"] == "ganarena fp32"
    }
    domain = next((r for r in evals if r["backbone"] == "domain" and "seconds" in r), None)
    eval_s = 0.0 if domain is None else domain["seconds"] * 10000 / domain["n_fake"]
    loss_factor = (4 * 1 + 2 * 3) / 6  # mean cost of a G step over the six losses
    serial = sum(3 * 6 * (2000 * t * loss_factor + 8 * eval_s) for t in seconds_per_step.values())
    return {
        "kind": "sweep",
        "what": "experiment=loss_zoo (36 jobs), estimated from this device's per-step times",
        "serial_min": round(serial / 60, 1),
        "jobs_at_once": jobs_at_once,
        "estimate_min": round(serial / 60 / jobs_at_once, 1),
        "assumes": "jobs at once share the device without slowing each other (small models)",
    }


def table(rows: list[dict], device: str) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    lines = [f"GPU check on {name} (torch {torch.__version__})", ""]
    lines += ["| model | batch | arm | img/s | vs tutorial |", "|---|---|---|---|---|"]
    for r in rows:
        if r["kind"] == "train":
            lines.append(
                f"| {r['model']} | {r['batch']} | {r['arm']} | {r['imgs_per_s']} | "
                f"{r['vs_tutorial']}x |"
            )
    best_mlp = max((r["vs_tutorial"] for r in rows if r.get("model") == "MLP"), default=0)
    lines.append(f"\nMLP b128 best / tutorial: {best_mlp}x (target >= {MLP_TARGET}x: "
                 f"{'met' if best_mlp >= MLP_TARGET else 'missed'})")  # fmt: skip
    for r in rows:
        if r["kind"] == "mfu":
            lines.append(
                f"MFU {r['model']} b{r['batch']} {r['arm']}: {r['gflop_per_step']} GFLOP/step, "
                f"{r['achieved_tflops']} TFLOPS achieved, {100 * r['mfu']:.2f} % of "
                f"{r['peak_tflops']} TFLOPS ({r['peak_source']}; measured "
                f"{r['measured_peak_tflops']})"
            )
        elif r["kind"] == "eval":
            if "skipped" in r:
                lines.append(f"eval {r['backbone']}: skipped ({r['skipped']})")
            else:
                met = "met" if r["seconds"] * 10000 / r["n_fake"] < EVAL_TARGET_S else "missed"
                lines.append(
                    f"eval {r['backbone']}: {r['n_fake']} samples in {r['seconds']} s "
                    f"(10k < {EVAL_TARGET_S} s: {met})"
                )
        elif r["kind"] == "ddp":
            lines.append(
                f"{r['accelerator']} on 1 device: exit {r['exit_code']}, {r['status']}, "
                f"{r['steps']} steps, {r['wall_s']} s"
            )
        elif r["kind"] == "sweep":
            lines.append(
                f"loss_zoo (36 jobs): ~{r['serial_min']} min one at a time, "
                f"~{r['estimate_min']} min with {r['jobs_at_once']} at once (estimate)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--batch", type=int, default=None, help="default 128 (--quick: 16)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per arm")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="few steps, 1 repeat, 500 eval samples")
    p.add_argument("--compile", action="store_true", help="compile rows on a CPU too (slow)")
    p.add_argument(
        "--no-ddp", action="store_true",
        help="skip the DDP row (the test suite covers ddp_cpu in tests/test_fault.py)",
    )  # fmt: skip
    p.add_argument("--peak-tflops", metavar="BF16,TF32", help="dense peak of this device")
    p.add_argument("--jobs-at-once", type=int, default=6, help="sweep estimate: jobs sharing it")
    p.add_argument("--out", type=Path, help="also write the JSON lines and table here")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: error: no CUDA device is visible (torch.cuda.is_available() is False). "
            "Run it on a machine with an NVIDIA GPU, or pass --device cpu to exercise the rows "
            "on the CPU.",
            file=sys.stderr,
        )
        return 2
    if args.quick:
        args.steps, args.warmup, args.repeats = args.steps or 2, args.warmup or 1, 1
    args.batch = args.batch or (16 if args.quick else 128)
    x, y, source = bench.load_uint8_digits()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "data"
        bench.write_mnist_raw(root, x, y)

        def emit(new: list[dict]) -> None:
            for r in new:
                r.update(device=args.device, data=source)
                print(json.dumps(r), flush=True)
            rows.extend(new)

        train = train_rows(args, root, tmp)
        emit(train)
        emit(mfu_rows(args, root, tmp, train))
        evals = eval_rows(args, root, tmp)
        emit(evals)
        if not args.no_ddp:
            emit([ddp_row(args, root, tmp)])
        emit([sweep_row(train, evals, args.jobs_at_once)])
    text = table(rows, args.device)
    print(text, flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (args.out / "gpu_check.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
