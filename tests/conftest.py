"""Shared test helpers: compose the real train config, run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

# Under pytest-xdist (README: `-n 2 --dist worksteal`) each worker gets one core: two workers with two torch threads
# each would fight over the 2 cores. Set before torch is first imported.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

# trainer.precision=auto (accelerator=cpu) would train in bf16 on a CPU with bf16 units where it
# measures faster: the suite's exact numbers are float32's, on every machine (test_precision.py
# unsets this to test the choice itself).
os.environ.setdefault("GANARENA_CPU_PRECISION", "32-true")

REPO = Path(__file__).resolve().parents[1]
MNIST_TEST = REPO.parent / "shared" / "datasets" / "mnist-test"
MNIST_IMAGES = MNIST_TEST / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = MNIST_TEST / "t10k-labels-idx1-ubyte.gz"

needs_mnist = pytest.mark.skipif(
    not MNIST_IMAGES.is_file(), reason=f"real MNIST test split not found at {MNIST_TEST}"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests (marked slow) first: under `-n 2` the two workers then finish together
    instead of one running the longest test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: else in order


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the session: the domain classifier is trained once for all test modules,
    and once for all xdist workers (they share it; ganarena's cache lock makes the second wait)."""
    root = tmp_path_factory.getbasetemp()
    return (root.parent if WORKER else root) / "ganarena-cache"


@pytest.fixture(scope="session", autouse=True)
def _cli_runs_share_the_cache(cache_dir) -> None:
    """Commands run through run_cli use the same cache: with a cache per test folder, the suite
    trained the bundled digits' 5-epoch classifier 12 times (~20 s of CPU each). A test that
    needs a cache of its own passes GANARENA_CACHE itself."""
    os.environ["GANARENA_TEST_CACHE"] = str(cache_dir)


def cli_cache(cwd: Path) -> str:
    """The cache a test's command uses: the session's (above), else one in its folder."""
    return os.environ.get("GANARENA_TEST_CACHE", str(cwd / "cache"))


# Small, fast settings for end-to-end runs: a 256-image subset, a few steps, eval off.
FAST = [
    "model=mlp",  # the classic MLP: fast; the default recipe (DCGAN) is tested on its own
    "dataset=mnist_sample",
    "dataset.limit=256",
    "dataset.batch_size=32",
    "eval=none",
    "trainer.max_steps=3",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint.every_n_steps=2",
    "callbacks.samples.every_n_steps=2",
]


def compose_train(out_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """The train config as the CLI would compose it, writing into `out_dir`."""
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose(
            "train",
            overrides=[
                *FAST,
                f"paths.output_dir={out_dir}",
                f"paths.cache_dir={out_dir.parent / 'cache'}",
                *overrides,
            ],
        )


def save_untrained(cfg: DictConfig, path: Path) -> Path:
    """The task `cfg` builds, untrained, saved in ganarena's checkpoint format."""
    import torch
    from omegaconf import OmegaConf

    from ganarena.tasks import build_task

    checkpoint = {
        "state_dict": build_task(cfg).state_dict(),
        "ganarena": {"g_step": 0, "d_step": 0},
        "ganarena_config": OmegaConf.to_container(cfg, resolve=True),
    }
    torch.save(checkpoint, path)
    return path


def run_clis(
    commands: list[list[str]], cwd: Path, timeout: int = 300
) -> list[subprocess.CompletedProcess]:
    """Several independent run_cli commands at once (their start-up costs overlap)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: run_cli(args, cwd, timeout), commands))


def run_cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a console script as a user would (through `python -m`), capturing output."""
    # One torch thread per process: on 2 busy cores, spinning OpenMP threads of several
    # processes slow each other down many times over.
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "0",
        "GANARENA_CACHE": cli_cache(cwd),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def straight_and_resumed(tmp_path: Path, common: list[str], steps: int = 12, stop: int = 5):
    """Train `steps` steps straight and `stop` + resume to `steps` with the same overrides; assert
    both end at `steps` with every weight bit-identical; return (straight, resumed) folders and
    their last checkpoints."""
    import torch

    from ganarena.tasks import read_checkpoint
    from ganarena.train import train

    straight, part = tmp_path / "straight", tmp_path / "part"
    train(compose_train(straight, [*common, f"trainer.max_steps={steps}"]))
    train(compose_train(part, [*common, f"trainer.max_steps={stop}"]))
    train(compose_train(part, [*common, f"trainer.max_steps={steps}", "ckpt_path=last"]))
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = read_checkpoint(part / "checkpoints" / "last.ckpt")
    assert a["ganarena"]["g_step"] == b["ganarena"]["g_step"] == steps
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    return (straight, a), (part, b)
