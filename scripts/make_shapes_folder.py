"""A synthetic, labelled image folder: N PNGs of one coloured shape each, on a plain background.

    python scripts/make_shapes_folder.py OUT --n 200000 [--size 64] [--workers 2] [--seed 0]

OUT/<k>_<shape>/<index>.png, 8 classes (circle, square, triangle, diamond, hexagon, cross, ring,
star), image i of class i % 8. Shape size, position, rotation, colour and background colour are
drawn from a generator seeded by (seed, i) alone, so the folder is the same on every machine
and for any --workers. Used by scripts/benchmark_data.py and docs/streaming.md (a stand-in for
CelebA-sized folders: 200,000 images at 64 px); labels let the domain classifier evaluate it.
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond", "hexagon", "cross", "ring", "star")


def polygon(cx: float, cy: float, r: float, k: int, turn: float, inner: float = 1.0):
    """Vertices of a regular k-gon (or a 2k-point star when inner < 1) around (cx, cy)."""
    points, steps = [], k if inner == 1.0 else 2 * k
    for j in range(steps):
        radius = r if inner == 1.0 or j % 2 == 0 else r * inner
        a = turn + 2 * math.pi * j / steps
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return points


def draw(i: int, size: int, seed: int) -> tuple[Image.Image, int]:
    """Image i and its class."""
    rng = np.random.default_rng([seed, i])
    label = i % len(SHAPES)
    background = tuple(int(v) for v in rng.integers(0, 90, 3))
    colour = tuple(int(v) for v in rng.integers(110, 256, 3))
    img = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(img)
    r = size * rng.uniform(0.18, 0.34)
    cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, 2))
    turn = float(rng.uniform(0, 2 * math.pi))
    box = (cx - r, cy - r, cx + r, cy + r)
    shape = SHAPES[label]
    if shape == "circle":
        d.ellipse(box, fill=colour)
    elif shape == "ring":
        d.ellipse(box, outline=colour, width=max(2, int(r / 3)))
    elif shape == "square":
        d.polygon(polygon(cx, cy, r, 4, turn), fill=colour)
    elif shape == "diamond":  # a rhombus: one diagonal 1.8x the other
        c, s = math.cos(turn), math.sin(turn)
        pts = [(r, 0), (0, r / 1.8), (-r, 0), (0, -r / 1.8)]
        d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts], fill=colour)
    elif shape == "triangle":
        d.polygon(polygon(cx, cy, r, 3, turn), fill=colour)
    elif shape == "hexagon":
        d.polygon(polygon(cx, cy, r, 6, turn), fill=colour)
    elif shape == "star":
        d.polygon(polygon(cx, cy, r, 5, turn, inner=0.45), fill=colour)
    else:  # cross
        w = r / 3
        c, s = math.cos(turn), math.sin(turn)
        for arm in ((r, w), (w, r)):
            pts = [(-arm[0], -arm[1]), (arm[0], -arm[1]), (arm[0], arm[1]), (-arm[0], arm[1])]
            d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts], fill=colour)
    return img, label


def _write(job: tuple[Path, int, int, int, int]) -> int:
    out, start, stop, size, seed = job
    for i in range(start, stop):
        img, label = draw(i, size, seed)
        img.save(out / f"{label}_{SHAPES[label]}" / f"{i:07d}.png", compress_level=1)
    return stop - start


def make(out: Path, n: int, size: int = 64, workers: int = 1, seed: int = 0) -> Path:
    out = Path(out)
    for k, shape in enumerate(SHAPES):
        (out / f"{k}_{shape}").mkdir(parents=True, exist_ok=True)
    step = 2000
    jobs = [(out, s, min(s + step, n), size, seed) for s in range(0, n, step)]
    if workers <= 1:
        for job in jobs:
            _write(job)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write, jobs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    make(Path(args.out), args.n, args.size, args.workers, args.seed)
    print(f"{args.n} PNGs of {args.size} px in {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
