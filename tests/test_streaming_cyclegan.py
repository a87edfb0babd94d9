"""CycleGAN on streamed unpaired folders (dataset=unpaired_folder dataset.in_memory=false): it
trains, its batches cross from the loader worker as uint8, and a run resumed from a mid-run
checkpoint ends with the straight run's weights, bit for bit, which are also those of the same
run held in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganarena.data.folder import FolderImages
from ganarena.run.config import build
from ganarena.tasks import read_checkpoint
from ganarena.train import train
from tests.conftest import compose_train


def write_domain(folder: Path, n: int, seed: int) -> None:
    """n random RGB PNGs, some larger than the 16 px trained on (resized and cropped)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        side = 16 if i % 2 else 20
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )


@pytest.fixture
def one_thread():
    """One torch thread for these tiny networks: on 2 busy cores two threads spin against each
    other and the machine's other jobs (a 5-step fit took 4-19 s so, 1-2 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cyclegan_trains_on_streamed_folders_and_resumes_exactly(tmp_path, one_thread):
    root = tmp_path / "pair"
    write_domain(root / "trainA", 12, seed=1)
    write_domain(root / "trainB", 7, seed=2)
    common = [
        "experiment=cyclegan_digits", "model=resnet", "dataset=unpaired_folder",
        f"dataset.root={root}", "dataset.image_size=16", "dataset.batch_size=4",
        "dataset.in_memory=false", "dataset.num_workers=1",
        "model.generator.width=4", "model.generator.n_blocks=1", "model.discriminator.width=4",
        "task.pool_size=3", "eval=none", "trainer.deterministic=true", "seed=3",
        "trainer.max_steps=5", "callbacks.checkpoint.keep=5",
    ]  # fmt: skip
    # what the runs train on: both domains streamed, shipped by the loader as uint8
    dm = build(compose_train(tmp_path / "probe", common).dataset)
    dm.setup()
    assert isinstance(dm.a.stored, FolderImages) and isinstance(dm.b.stored, FolderImages)
    stored = next(iter(dm.train_dataloader()))
    assert stored[0].dtype == stored[2].dtype == torch.uint8
    x_a, _, x_b, _ = dm.on_after_batch_transfer(stored, 0)
    assert x_a.dtype == torch.float32 and x_a.shape == x_b.shape == (4, 3, 16, 16)
    # 3 batches an epoch (12 images in the larger domain, B's 7 cycle): the checkpoint of step 2
    # is mid-epoch, and the resumed run crosses into the next epoch. Resumed from the straight
    # run's own checkpoint (a shorter run would decay its learning rate sooner: decay_start).
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(compose_train(straight, common))
    ckpt = straight / "checkpoints" / "step_000002.ckpt"
    train(compose_train(resumed, [*common, f"ckpt_path={ckpt}"]))
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = read_checkpoint(resumed / "checkpoints" / "last.ckpt")
    assert a["ganarena"]["g_step"] == b["ganarena"]["g_step"] == 5
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for side in ("a", "b"):  # the image pools of fakes were restored with the weights
        pool_a, pool_b = a["ganarena_pools"][side], b["ganarena_pools"][side]
        assert pool_a["images"].shape[0] == 3
        assert torch.equal(pool_a["images"], pool_b["images"])
    # and the same run held in memory (no worker) trains to the same weights
    mem = tmp_path / "mem"
    train(compose_train(mem, [*common, "dataset.in_memory=true", "dataset.num_workers=0"]))
    c = read_checkpoint(mem / "checkpoints" / "last.ckpt")
    for key, value in a["state_dict"].items():
        assert torch.equal(value, c["state_dict"][key]), key
