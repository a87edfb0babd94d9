"""Reproduce the mode-collapse tables of PacGAN (Lin, Khetan, Fanti & Oh 2018, arXiv:1712.04086)
with ganarena, beside the published numbers (docs/mode_collapse.md).

    python scripts/reproduce_mode_collapse.py run 2d --seeds 1 2 3 4 5 --steps 2000
    python scripts/reproduce_mode_collapse.py run small_d --seeds 1 2 3 --steps 1000
    python scripts/reproduce_mode_collapse.py table            # markdown tables on stdout

`run` trains every (layout, row, seed) of a table as one `ganarena-train` job (one torch thread
each, `--jobs` at a time) into OUT/<table>/<layout>/<row>/seed<S>/ and skips jobs whose
metrics.json says completed, so an interrupted run continues. Rows are packing degrees: GAN (no
packing) and PacGAN<m> (repro_row=pac<m>: d_input=[pack<m>] with m x the paper's batch, since
PacGAN counts its minibatch in packs). `table` reads the metrics.json files back: mean +-
standard error over seeds of each score, the published mean beside it (from the preset's
repro.published), the seeds, steps and wall time. The same table without this script, for a
sweep: ganarena-train -m experiment=repro_pacgan_ring, then ganarena-compare on its folder.
"""

from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiment_jobs import run_job  # scripts/ is on sys.path when run

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "datasets" / "mnist-test"

# table -> layout -> its experiment preset (which holds the protocol and the published numbers)
TABLES = {
    "2d": {"ring": "repro_pacgan_ring", "grid": "repro_pacgan_grid"},
    "veegan": {"stacked": "repro_stacked_mnist"},
    "small_d": {"quarter": "repro_stacked_mnist_small_d", "half": "repro_stacked_mnist_half_d"},
}
ROWS = {"gan": 1, "pac2": 2, "pac3": 3, "pac4": 4}  # repro_row= (conf/repro_row/)
# Issue #28's row beside them (Stacked MNIST only): R3GAN's recipe and network at the GAN row's batch,
# on the preset's data and scoring: the overrides of conf/experiment/r3gan.yaml (which cannot be
# combined with a repro preset: one experiment= per run) plus model=r3gan. The R3GAN paper reports
# all 1,000 modes on Stacked MNIST (Huang et al. 2024; issue #28); its table is not in a preset.
R3GAN_ROW = [
    "repro_row=gan", "model=r3gan", "loss=rpgan", "regularizer=[r1,r2]",
    "regularizer.r1.gamma=0.05", "regularizer.r1.gamma_end=0.005", "regularizer.r1.interval=1",
    "regularizer.r2.gamma=0.05", "regularizer.r2.gamma_end=0.005", "regularizer.r2.interval=1",
    "optim.g.lr=2e-4", "optim.d.lr=2e-4", "optim.g.betas=[0.0,0.9]", "optim.d.betas=[0.0,0.9]",
    "task.schedule.lr_end_factor=0.25", "task.schedule.beta2_end=0.99", "model.ema_decay=0.99",
]  # fmt: skip
# the same network with the table's own loss and optimizer (no RpGAN, R1, R2 or schedules): which
# of the two, network or recipe, moves the score
R3GAN_NET_ROW = ["repro_row=gan", "model=r3gan"]
EXTRA_ROWS = {"r3gan": R3GAN_ROW, "r3gan_net": R3GAN_NET_ROW}
ROW_NAMES = {
    "r3gan": "R3GAN (model=r3gan, RpGAN + R1 + R2)",
    "r3gan_net": "model=r3gan, the table's loss",
}


def published(preset: str) -> dict:
    """row -> {score: the paper's mean}, from the preset's repro.published (one source)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("ganarena.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={preset}"])
    return OmegaConf.to_container(cfg.repro.published)


SCORES = {
    "2d": (("modes_covered", "modes", 1), ("high_quality", "high quality %", 100), ("class_kl", "reverse KL", 1)),
    "stacked": (("modes_covered", "modes (of 1000)", 1), ("mode_kl", "KL", 1), ("digit_confidence", "digit confidence", 1), ("fid", "FID", 1)),
}  # fmt: skip


def job_args(table: str, layout: str, row: str, seed: int, steps: int, out: Path) -> list[str]:
    args = [
        f"experiment={TABLES[table][layout]}", *EXTRA_ROWS.get(row, [f"repro_row={row}"]),
        f"seed={seed}", f"trainer.max_steps={steps}", f"hydra.run.dir={out}",
    ]  # fmt: skip
    if table != "2d" and (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        args += [
            "dataset.digits=idx",
            f"dataset.images={MNIST / 't10k-images-idx3-ubyte.gz'}",
            f"dataset.labels={MNIST / 't10k-labels-idx1-ubyte.gz'}",
        ]
    return args


def run(opts: argparse.Namespace) -> None:
    jobs = []
    for layout in opts.layouts or TABLES[opts.table]:
        for seed in opts.seeds:
            for row in opts.rows:
                folder = opts.out / opts.table / layout / row / f"seed{seed}"
                args = job_args(opts.table, layout, row, seed, opts.steps, folder)
                jobs.append((args, folder))
    with ThreadPoolExecutor(opts.jobs) as pool:
        for line in pool.map(lambda j: run_job(*j), jobs):
            print(line, flush=True)


def mean_se(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.3g}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.3g} ± {sd / math.sqrt(len(values)):.2g}"


def table_of(root: Path, table: str, layout: str) -> str | None:
    kind = "2d" if table == "2d" else "stacked"
    scores = SCORES[kind]
    paper = published(TABLES[table][layout])
    lines = []
    for row in [*ROWS, *(EXTRA_ROWS if kind == "stacked" else [])]:
        runs = [
            json.loads(p.read_text())
            for p in sorted((root / table / layout / row).glob("seed*/metrics.json"))
        ]
        runs = [r for r in runs if r.get("status") == "completed" and r.get("final")]
        if not runs:
            continue
        ours = [mean_se([r["final"].get(k, math.nan) * f for r in runs]) for k, _, f in scores]
        pub = paper.get(row, {})
        theirs = [f"{pub[k] * f:g}" if k in pub else "–" for k, _, f in scores]
        wall = sum(r["wall_s"] for r in runs) / len(runs)
        name = ROW_NAMES.get(row) or ("GAN" if row == "gan" else f"PacGAN{ROWS[row]}")
        cells = [f"{o} ({t})" for o, t in zip(ours, theirs, strict=True)]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {len(runs)} | {runs[0]['steps']} | {wall:.0f} |"
        )
    if not lines:
        return None
    head = " | ".join(label for _, label, _ in scores)
    return "\n".join(
        [
            f"**{table} / {layout}** — ours: mean ± s.e. over seeds (published mean)",
            "",
            f"| row | {head} | seeds | steps | train s/run |",
            "|---|" + "---|" * (len(scores) + 3),
            *lines,
        ]
    )


def tables(opts: argparse.Namespace) -> None:
    for table, layouts in TABLES.items():
        for layout in layouts:
            text = table_of(opts.out, table, layout)
            if text:
                print(text + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "repro_mode_collapse")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train a table's rows x seeds")
    r.add_argument("table", choices=sorted(TABLES))
    r.add_argument("--layouts", nargs="*", help="default: all of the table's")
    r.add_argument(
        "--rows", nargs="*", default=["gan", "pac2", "pac4"], choices=sorted([*ROWS, *EXTRA_ROWS])
    )
    r.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3, 4, 5])
    r.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    r.add_argument("--jobs", type=int, default=2, help="jobs at once (one torch thread each)")
    sub.add_parser("table", help="print the measured tables beside the published numbers")
    opts = parser.parse_args(argv)
    run(opts) if opts.command == "run" else tables(opts)


if __name__ == "__main__":
    main()
