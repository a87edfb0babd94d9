"""Screenshots of TensorBoard's dashboards for a 4-job sweep, taken from a real server.

    apt-get install -y chromium          # headless Chromium (Debian's package)
    python scripts/tensorboard_screenshots.py [--out docs] [--work DIR] [--port 6123]

Runs `ganarena-train -m experiment=smoke model=mlp loss=nonsaturating,hinge seed=1,2` (30 steps;
about a minute on 2 cores), starts `tensorboard --logdir <sweep>/tensorboard` and saves what a
browser shows of Time Series (docs/tensorboard_timeseries.png), the real and sample grids
(docs/tensorboard_images.png), HParams (docs/tensorboard_hparams.png) and the config text
(docs/tensorboard_text.png). README "TensorBoard" shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# The sweep of issue #17, 30 generator steps long so the curves have a shape; eval every 10.
SWEEP = ["experiment=smoke", "model=mlp", "loss=nonsaturating,hinge", "seed=1,2",
         "trainer.max_steps=30", "eval.every_n_steps=10"]  # fmt: skip
# file name -> (TensorBoard page, window width,height, zoom). forceSVG: TensorBoard's SVG charts,
# which headless Chromium draws reliably (its WebGL/worker charts come out blank at times).
PAGES = {
    "tensorboard_timeseries.png": ("?forceSVG=true#timeseries", "1800,2800", 0.7),
    "tensorboard_images.png": ("?tagFilter=val%2F(samples%7Creal)#timeseries", "1600,1400", 0.8),
    "tensorboard_hparams.png": ("#hparams", "1800,900", 0.8),
    "tensorboard_text.png": ("#text", "1600,1000", 0.8),
}


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    sys.exit("No Chromium found: install it (apt-get install -y chromium) and run again.")


def run_sweep(work: Path) -> Path:
    sweep = work / "sweep"
    if (sweep / "multirun.yaml").is_file():  # a sweep folder is never reused: screenshot it again
        print(f"reusing the sweep in {sweep}", flush=True)
        return sweep / "tensorboard"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANARENA_CACHE": str(work / "cache")}
    cmd = [sys.executable, "-m", "ganarena.train", "-m", *SWEEP, f"hydra.sweep.dir={sweep}"]
    print("+", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return sweep / "tensorboard"


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=5) as r:
        return json.load(r)


def serve(logdir: Path, port: int) -> subprocess.Popen:
    """A TensorBoard server on `port`, once it has loaded every run's images and text (the
    dashboards are blank where a screenshot comes before the server read the event files)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port),
         "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    expected = len([p for p in logdir.iterdir() if p.is_dir()])
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            images = _get(port, "data/plugin/images/tags")
            texts = _get(port, "data/plugin/text/tags")
            if sum("val/samples" in t for t in images.values()) == len(texts) == expected:
                time.sleep(5)  # let the other plugins finish their first load too
                return server
        except OSError:
            pass
        time.sleep(1)
    server.terminate()
    sys.exit(f"TensorBoard did not load the {expected} runs of {logdir} within 120 s.")


def screenshot(browser: str, url: str, path: Path, size: str, zoom: float) -> None:
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={size}", f"--force-device-scale-factor={zoom}",
         "--virtual-time-budget=30000", f"--screenshot={path}", url],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180,
    )  # fmt: skip
    print(f"{path} <- {url}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go")
    parser.add_argument("--work", type=Path, help="sweep folder parent (default: a temp dir)")
    parser.add_argument("--port", type=int, default=6123)
    args = parser.parse_args()
    browser = chromium()
    work = args.work or Path(tempfile.mkdtemp(prefix="ganarena-tb-"))
    logdir = run_sweep(work)
    server = serve(logdir, args.port)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, (page, size, zoom) in PAGES.items():
            url = f"http://127.0.0.1:{args.port}/{page}"
            screenshot(browser, url, args.out / name, size, zoom)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
