"""Data throughput side by side: in-memory uint8 vs streamed image folder vs packed folder.

For each storage mode (in memory, streamed PNG files, packed uint8) and each dataset.num_workers
in --workers, measures in one process, the arms interleaved round by round (--repeats rounds, so
drift in a shared machine's load hits every arm alike):

- loader img/s: real images per second the training loader delivers alone (--loader-batches
  batches after one warm-up batch), the ceiling the data can feed;
- train img/s: real images per second of ganarena's training path for DCGAN-64 at batch 64
  (model=dcgan, loss=nonsaturating, eval=none) in steady state, after --warmup generator steps.

    python scripts/make_shapes_folder.py /tmp/shapes20k --n 20000
    python scripts/benchmark_data.py --root /tmp/shapes20k --repeats 2

    python scripts/benchmark_data.py --watch ganarena-train ...   # peak RSS / PSS of a run's
                                                                   # process tree (loader workers too)

The packed folder is prepared next to --root (ROOT.packed) when missing. One JSON line per
measurement, then a table (medians over rounds). The files are read from the page cache after the
first round (a warm disk); a cold disk adds its read time to the streamed arms. On a machine
shared with other jobs the figures swing with their load: compare arms of the same round, and
the best of several rounds.
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

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]
MODES = ("in_memory", "streamed", "packed")


class StepTimer(L.Callback):
    """Wall-clock time between generator steps `start` and `stop`."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop, self.t0, self.t1 = start, stop, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_step == self.start and self.t0 is None:
            self.t0 = time.perf_counter()
        if pl_module.g_step == self.stop and self.t1 is None:
            self.t1 = time.perf_counter()


def config(root: Path, mode: str, workers: int, steps: int, out: Path):
    from hydra import compose, initialize_config_module

    overrides = [
        "model=dcgan", "model.conditional=false", "loss=nonsaturating", "accelerator=cpu",
        "eval=none", "dataset=image_folder", f"dataset.root={root}", "dataset.image_size=64",
        "dataset.batch_size=64", f"dataset.num_workers={workers}",
        f"dataset.in_memory={'true' if mode == 'in_memory' else 'false'}",
        f"trainer.max_steps={steps}", "trainer.enable_progress_bar=false",
        f"paths.output_dir={out}", f"callbacks.checkpoint.every_n_steps={10**9}",
        f"callbacks.samples.every_n_steps={10**9}",
    ]  # fmt: skip
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("train", overrides=overrides)


def loader_rate(dm, batches: int) -> float:
    dm.configure(shuffle_seed=0)
    it = iter(dm.train_dataloader())
    next(it)  # workers started, first batch in
    t0 = time.perf_counter()
    for _ in range(batches):
        x, _ = next(it)
    rate = batches * x.shape[0] / (time.perf_counter() - t0)
    del it
    return rate


def train_rate(cfg, dm, warmup: int, steps: int, out: Path) -> float:
    from ganarena.tasks import build_task
    from ganarena.train import build_callbacks, build_trainer

    dm.configure(shuffle_seed=0)
    torch.manual_seed(0)
    module = build_task(cfg)
    timer = StepTimer(warmup, warmup + steps)
    trainer = build_trainer(cfg, out, [*build_callbacks(cfg, out, None), timer])
    trainer.fit(module, datamodule=dm)
    return steps * 64 / (timer.t1 - timer.t0)


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(processes, summed RSS, summed PSS) in bytes of `pid` and its descendants (Linux /proc).
    PSS splits shared pages (the loader workers' copy-on-write torch) among their sharers: the
    sum is what the process tree really takes."""
    procs, todo = [], [pid]
    while todo:
        p = todo.pop()
        procs.append(p)
        try:
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except OSError:
            pass
    rss = pss = 0
    for p in procs:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    kb = int(rest.split()[0]) * 1024
                    rss, pss = (rss + kb, pss) if key == "Rss" else (rss, pss + kb)
        except OSError:
            pass
    return len(procs), rss, pss


def watch(command: list[str]) -> int:
    """Run `command`, sampling its process tree's memory every 0.5 s; print the peaks."""
    proc = subprocess.Popen(command)
    peak = {"processes": 0, "rss_bytes": 0, "pss_bytes": 0}
    while proc.poll() is None:
        n, rss, pss = tree_memory(proc.pid)
        peak = {k: max(peak[k], v) for k, v in zip(peak, (n, rss, pss), strict=True)}
        time.sleep(0.5)
    print(json.dumps({"returncode": proc.returncode, "peak": peak}), flush=True)
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--watch"]:  # benchmark_data.py --watch CMD ...: peak memory of a run
        return watch(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, required=True, help="a folder of PNGs (64 px)")
    p.add_argument("--packed", type=Path, default=None, help="default: ROOT.packed")
    p.add_argument("--workers", default="0,1,2")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--loader-batches", type=int, default=30)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    from hydra.utils import instantiate

    from ganarena.data.prepare import prepare

    packed = args.packed or args.root.with_name(args.root.name + ".packed")
    if not (packed / "packed.json").is_file():
        print(json.dumps({"preparing": str(packed), **{
            k: v for k, v in prepare(args.root, packed, 64, 3, 2).items()
            if k in ("n", "seconds", "imgs_per_s")
        }}), flush=True)  # fmt: skip
    workers = [int(w) for w in args.workers.split(",")]
    modes = args.modes.split(",")
    out = Path(tempfile.mkdtemp(prefix="benchmark_data_"))
    dms = {}
    for mode in modes:  # one datamodule per mode: the in-memory set is decoded once
        cfg = config(packed if mode == "packed" else args.root, mode, 0, 1, out)
        t0 = time.perf_counter()
        dms[mode] = instantiate(cfg.dataset)
        dms[mode].setup("fit")
        print(json.dumps({"mode": mode, "setup_s": round(time.perf_counter() - t0, 1),
                          "images": dms[mode].n_images}), flush=True)  # fmt: skip
    results: dict[tuple[str, int, str], list[float]] = {}
    steps = args.warmup + args.steps
    # one unmeasured arm first: the first fit in a process pays torch's one-off start-up costs
    warm = config(packed if modes[0] == "packed" else args.root, modes[0], 0, 2, out / "warm")
    train_rate(warm, dms[modes[0]], 1, 1, out / "warm")
    loader_rate(dms[modes[0]], 2)
    for r in range(args.repeats):
        for w in workers:
            for mode in modes:
                dm = dms[mode]
                dm.num_workers = w
                root = packed if mode == "packed" else args.root
                cfg = config(root, mode, w, steps, out / f"{mode}{w}r{r}")
                rates = {
                    "loader": loader_rate(dm, args.loader_batches),
                    "train": train_rate(cfg, dm, args.warmup, args.steps, out / f"{mode}{w}r{r}"),
                }
                for kind, rate in rates.items():
                    results.setdefault((mode, w, kind), []).append(rate)
                line = {"round": r, "mode": mode, "workers": w}
                print(json.dumps(line | {k: round(v) for k, v in rates.items()}), flush=True)
    # On a machine shared with other jobs the median drifts with their load; the best of the
    # rounds is the figure least disturbed by it. Both are printed.
    print(
        "\n| storage | num_workers | loader img/s, median (best) | DCGAN-64 train img/s, median (best) |"
    )
    print("|---|---|---|---|")
    for mode in modes:
        for w in workers:
            loader, train = results[mode, w, "loader"], results[mode, w, "train"]
            print(
                f"| {mode} | {w} | {statistics.median(loader):,.0f} ({max(loader):,.0f}) | "
                f"{statistics.median(train):,.0f} ({max(train):,.0f}) |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
