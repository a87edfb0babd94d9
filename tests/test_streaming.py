"""Data that does not fit in memory (issue #30): uint8 storage with unchanged numbers, streamed
and packed image folders giving the same batches as in-memory ones, exact resume, DDP shares,
streamed reference statistics and classifier data, and the memory estimate / refusal."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganarena.data import (
    ImageFolderDataModule,
    MNISTSampleDataModule,
    ResumableBatchSampler,
    memory,
)
from ganarena.data.base import ShardedBatchSampler
from ganarena.data.folder import _UINT8_AS_FLOAT, FolderImages, PackedImages, as_float
from ganarena.data.prepare import main as prepare_main
from ganarena.data.unpaired import UnpairedFolderDataModule
from ganarena.errors import ConfigError, DataError
from tests.conftest import REPO, straight_and_resumed


def write_folder(root: Path, n: int = 40, size: int = 8, classes: int = 2, seed: int = 0) -> Path:
    """n random RGB PNGs of size x size (some larger, so resize/crop run) in class subfolders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        side = size if i % 3 else size + 4  # every third is bigger: resized and cropped
        folder = root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (side, side + i % 2, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


def folder_dm(root, **kwargs) -> ImageFolderDataModule:
    args = {"image_size": 8, "channels": 3, "batch_size": 8} | kwargs
    dm = ImageFolderDataModule(root, **args)
    dm.configure(shuffle_seed=kwargs.pop("shuffle_seed", 3))
    dm.setup()
    return dm


def batches(dm, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first n batches of the train loader, over as many epochs as that takes (iterating the
    loader again starts the sampler's next epoch)."""
    out, loader = [], dm.train_dataloader()
    while len(out) < n:
        for batch in loader:
            out.append(batch)
            if len(out) == n:
                break
    return out


def same_batches(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x, y) and torch.equal(u, v) for (x, u), (y, v) in zip(a, b, strict=True)
    )


# -- uint8 storage ----------------------------------------------------------------------------------
def test_uint8_storage_serves_the_bits_float32_storage_did():
    dm = MNISTSampleDataModule(batch_size=64, limit=640)
    dm.configure(shuffle_seed=1)
    dm.setup()
    assert dm.stored.dtype == torch.uint8  # 4x less than float32
    old = dm.stored.float() / 127.5 - 1  # what setup() stored before (float32, whole set)
    assert torch.equal(dm.images, old)
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    idx = next(iter(ResumableBatchSampler(640, 64, 1)))
    assert x.dtype == torch.float32 and torch.equal(x, old[idx]) and torch.equal(y, dm.labels[idx])
    dm.configure(shuffle_seed=1, batched=False)  # the per-item loader collates the same bits
    assert torch.equal(dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)[0], x)
    # the fingerprint (a cache key) is the float32 digest it always was
    h = hashlib.sha256(f"{tuple(old.shape)}".encode())
    h.update(old.numpy().tobytes())
    h.update(dm.labels.numpy().tobytes())
    assert dm.fingerprint() == h.hexdigest()
    real = dm.real("reference")
    assert torch.equal(real[torch.arange(5)], old[:5])
    # a set whose conversion is not exact in uint8 (resized) stays float32, as before
    resized = MNISTSampleDataModule(batch_size=8, limit=16, image_size=32)
    resized.setup()
    assert resized.stored.dtype == torch.float32


def test_loaders_ship_uint8_and_the_device_hook_gives_the_old_float_batches(tmp_path):
    """Batches cross from the loader workers as stored (uint8: 4x fewer bytes than float32) and
    on_after_batch_transfer turns them into exactly the float batches the loader used to yield."""
    dm = MNISTSampleDataModule(batch_size=32, limit=320, num_workers=2)
    dm.configure(shuffle_seed=5)
    dm.setup()
    old = dm.stored.float() / 127.5 - 1  # the float32 set the loader used to gather from
    sampler = ResumableBatchSampler(320, 32, 5)
    order = [i for _ in range(2) for i in sampler]  # two epochs: 20 batches
    for batched in (True, False):  # whole-batch gather and per-item collate
        dm.configure(shuffle_seed=5, batched=batched)
        got = batches(dm, 20)
        assert all(x.dtype == torch.uint8 for x, _ in got)
        for stored, idx in zip(got, order, strict=True):
            x, y = dm.on_after_batch_transfer(stored, 0)
            assert x.dtype == torch.float32 and torch.equal(x, old[idx])
            assert torch.equal(y, dm.labels[idx])
    # streamed readers ship uint8 too (2 workers), converted to the in-memory set's floats
    root = write_folder(tmp_path / "imgs")
    mem, streamed = folder_dm(root, in_memory=True), folder_dm(root, in_memory=False, num_workers=2)
    for (x, y), (sx, sy) in zip(batches(mem, 7), batches(streamed, 7), strict=True):
        assert sx.dtype == torch.uint8 and torch.equal(sx, x) and torch.equal(sy, y)
        assert torch.equal(streamed.on_after_batch_transfer((sx, sy), 0)[0], as_float(x))
    # a float-stored set (resized on load) stays float and passes through unchanged
    resized = MNISTSampleDataModule(batch_size=8, limit=16, image_size=32)
    resized.setup()
    x, y = next(iter(resized.train_dataloader()))
    assert x.dtype == torch.float32
    fx, fy = resized.on_after_batch_transfer((x, y), 0)
    assert fx is x and fy is y


def test_as_float_on_a_device_looks_up_the_hosts_values():
    """CUDA divides by a scalar as a multiply by its reciprocal (one bit off for 111 of the 256
    values): off the CPU as_float reads a table of the CPU's values instead."""
    every = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(_UINT8_AS_FLOAT, every.float() / 127.5 - 1)
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    assert torch.equal(_UINT8_AS_FLOAT[x.int()], as_float(x))  # what the device path computes
    if torch.cuda.is_available():
        assert torch.equal(as_float(every.cuda()).cpu(), as_float(every))


# -- streamed and packed folders --------------------------------------------------------------------
def test_streamed_and_packed_folders_give_the_in_memory_batches(tmp_path):
    root = write_folder(tmp_path / "imgs")
    mem = folder_dm(root, in_memory=True)
    streamed = folder_dm(root, in_memory=False, num_workers=2)
    assert mem.stored.dtype == torch.uint8 and isinstance(streamed.stored, FolderImages)
    assert mem.num_classes == streamed.num_classes == 2 and streamed.classes == ["c0", "c1"]
    first = batches(mem, 12)  # 40 images, 5 batches an epoch: crosses two epochs
    assert same_batches(first, batches(streamed, 12))
    # no image tensor is held: asking for one says how to read instead
    with pytest.raises(DataError, match=r"streams its 40 images.*read\(indices\)"):
        _ = streamed.images
    assert torch.equal(streamed.read([3, 1]), mem.read([3, 1]))
    # the fingerprint of a streamed folder is its file list, sizes and times: no decoding
    assert streamed.fingerprint() != mem.fingerprint()
    again = folder_dm(root, in_memory=False)
    assert again.fingerprint() == streamed.fingerprint()
    os.utime(next(root.rglob("*.png")), ns=(1, 1))  # a touched file is a different dataset
    assert folder_dm(root, in_memory=False).fingerprint() != streamed.fingerprint()

    packed_dir = tmp_path / "packed"
    assert prepare_main([str(root), str(packed_dir), "--size", "8", "--workers", "0"]) == 0
    meta = json.loads((packed_dir / "packed.json").read_text())
    assert meta["n"] == 40 and meta["classes"] == ["c0", "c1"] and meta["size"] == 8
    packed = folder_dm(packed_dir, in_memory=False)
    assert isinstance(packed.stored, PackedImages) and packed.num_classes == 2
    assert same_batches(first, batches(packed, 12))
    assert same_batches(first, batches(folder_dm(packed_dir, in_memory=True), 12))
    with pytest.raises(DataError, match=r"holds 3-channel images of 8 px.*--size 16"):
        folder_dm(packed_dir, image_size=16)


def test_limit_part_and_class_counts_pick_the_same_images_streamed(tmp_path):
    root = write_folder(tmp_path / "imgs", n=30)
    for kwargs in ({"limit": 17, "seed": 2}, {"part": "second_half"}, {"class_counts": {1: 6}}):
        mem = folder_dm(root, in_memory=True, batch_size=4, **kwargs)
        streamed = folder_dm(root, in_memory=False, batch_size=4, **kwargs)
        assert streamed.n_images == mem.n_images
        every = torch.arange(mem.n_images)
        assert torch.equal(streamed.read(every), mem.read(every)), kwargs
        assert torch.equal(streamed.labels, mem.labels)


def test_streamed_references_and_classifier_data_read_the_same_values(tmp_path):
    from ganarena.metrics.backbones import train_domain_classifier
    from ganarena.metrics.evaluator import reference_stats

    root = write_folder(tmp_path / "imgs", n=120)
    mem = folder_dm(root, in_memory=True)
    streamed = folder_dm(root, in_memory=False, num_workers=2)

    class Pool(nn.Module):  # features: per-channel means of 2x2 cells; logits: 2 classes
        feature_dim, num_classes = 12, 2

        def forward(self, x):
            f = nn.functional.avg_pool2d(x.float() / 255, 4).flatten(1)
            return f, f[:, :2]

    a = reference_stats(Pool(), mem.real("reference"), "train", 50)
    b = reference_stats(Pool(), streamed.real("reference"), "train", 50)
    assert a["n"] == b["n"] == 120 and b["fid_sum"].dtype == torch.float64
    assert torch.equal(a["fid_sum"], b["fid_sum"]) and torch.equal(
        a["fid_cov_sum"], b["fid_cov_sum"]
    )
    recipe = {
        "epochs": 1, "batch_size": 32, "lr": 0.003, "width": 4, "features": 8, "max_shift": 1,
        "holdout": 0.2, "max_train_images": 100, "seed": 0,
    }  # fmt: skip
    real_m, real_s = mem.real("classifier"), streamed.real("classifier")
    assert real_m.in_memory and not real_s.in_memory
    model_m, info_m = train_domain_classifier(real_m, real_m.labels, 2, recipe)
    model_s, info_s = train_domain_classifier(real_s, real_s.labels, 2, recipe)
    assert info_m["classifier_accuracy"] == info_s["classifier_accuracy"]
    for key, value in model_m.state_dict().items():
        assert torch.equal(value, model_s.state_dict()[key]), key


def test_unpaired_folders_stream_too(tmp_path):
    for side in ("A", "B"):
        write_folder(tmp_path / "uf" / f"train{side}", n=20, seed=ord(side))
    write_folder(tmp_path / "uf" / "testA", n=10, seed=7)
    dms = []
    for in_memory in (True, False):
        dm = UnpairedFolderDataModule(
            tmp_path / "uf", batch_size=4, image_size=8, in_memory=in_memory
        )
        dm.configure(shuffle_seed=2)
        dm.setup()
        dms.append(dm)
    assert isinstance(dms[1].a.stored, FolderImages) and dms[0].a.stored.dtype == torch.uint8
    got = [next(iter(dm.train_dataloader())) for dm in dms]
    assert all(torch.equal(x, y) for x, y in zip(*got, strict=True))
    ref = [dm.a.real("reference") for dm in dms]
    assert ref[1].split == "test" and len(ref[1]) == 10
    assert torch.equal(ref[0][torch.arange(10)], ref[1][torch.arange(10)])
    # what the sample grid's inputs and the translation evaluator draw from (reference()): for
    # a streamed domain a view that decodes the images it is indexed with
    mem, view = dms[0].b.reference()[0], dms[1].b.reference()[0]
    assert view.shape == mem.shape and len(view) == len(mem) == 20
    assert torch.equal(view[torch.tensor([4, 0, 7])], mem[torch.tensor([4, 0, 7])])


# -- resume, sharding ------------------------------------------------------------------------------
def test_a_streamed_folder_resumes_exactly_and_trains_as_in_memory(tmp_path):
    """Straight = killed and resumed = the same run from memory, weight for weight."""
    root = write_folder(tmp_path / "imgs", n=40)
    common = [
        "dataset=image_folder", f"dataset.root={root}", "dataset.image_size=8",
        "dataset.batch_size=16", "dataset.limit=null", "trainer.deterministic=true", "seed=4",
    ]  # fmt: skip
    # 2 batches an epoch: the resume at step 5 is mid-epoch, the run crosses five epochs. One
    # loader worker: workers prefetch from the sampler as soon as Lightning creates the loader's
    # iterator, before on_train_start (the data order is set in on_fit_start, before that).
    streamed = [*common, "dataset.in_memory=false", "dataset.num_workers=1"]
    (_, a), _ = straight_and_resumed(tmp_path / "s", streamed, 12, 5)
    from ganarena.tasks import read_checkpoint
    from ganarena.train import train
    from tests.conftest import compose_train

    mem = tmp_path / "m" / "mem"
    train(compose_train(mem, [*common, "dataset.in_memory=true", "trainer.max_steps=12"]))
    b = read_checkpoint(mem / "checkpoints" / "last.ckpt")
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_sharded_sampler_splits_every_epoch_into_disjoint_shares():
    one = ResumableBatchSampler(50, 4, seed=3)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(3))
    assert list(one) == perm[:48].view(12, 4).tolist()  # world 1: the order it always had
    ranks = [ShardedBatchSampler(50, 4, 3, rank=r, world_size=2) for r in (0, 1)]
    assert [len(s) for s in ranks] == [6, 6]
    shares = [[i for b in s for i in b] for s in ranks]
    assert not set(shares[0]) & set(shares[1]) and len(set(shares[0]) | set(shares[1])) == 48
    later = ShardedBatchSampler(50, 4, 3, rank=1, world_size=2)
    later.seek(8)  # epoch 1, batch 2
    full = ShardedBatchSampler(50, 4, 3, rank=1, world_size=2)
    list(full)
    assert list(later) == list(full)[2:]


@pytest.mark.slow
def test_two_ddp_cpu_ranks_read_disjoint_halves_of_a_streamed_folder(tmp_path):
    """accelerator=ddp_cpu, 2 processes, one epoch of 96 files at 8 per rank and step: each rank
    reads its own 48 files, the two halves are disjoint and cover the folder."""
    root = write_folder(tmp_path / "imgs", n=96)
    trace = tmp_path / "trace"
    trace.mkdir()
    args = [
        sys.executable, "-m", "ganarena.train", "model=mlp", "accelerator=ddp_cpu",
        "trainer.devices=2", "dataset=image_folder", f"dataset.root={root}",
        "dataset._target_=tests.streaming_trace.TracedFolderDataModule",
        "dataset.image_size=8", "dataset.batch_size=8", "dataset.in_memory=false", "eval=none",
        "trainer.max_steps=6", "trainer.enable_progress_bar=false", "seed=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {
        **os.environ, "GANARENA_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
        "GANARENA_TRACE_DIR": str(trace), "PYTHONPATH": str(REPO),
    }  # fmt: skip
    res = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    reads: dict[int, list[str]] = {0: [], 1: []}
    for f in trace.glob("reads-*.txt"):
        for line in f.read_text().splitlines():
            rank, name = line.split(" ", 1)
            if int(rank) >= 0:  # -1: before the process group (none here: nothing reads then)
                reads[int(rank)].append(name)
    epoch = {r: names[:48] for r, names in reads.items()}  # what follows is the next epoch
    assert all(len(set(names)) == 48 for names in epoch.values()), {
        k: len(v) for k, v in reads.items()
    }
    assert not set(epoch[0]) & set(epoch[1])
    assert len(set(epoch[0]) | set(epoch[1])) == 96
    files = folder_dm(root, in_memory=False).stored.files
    for r in (0, 1):  # exactly the share the rank's sampler assigns
        share = ShardedBatchSampler(96, 8, 2, rank=r, world_size=2)
        assert epoch[r] == [str(files[i]) for b in share for i in b]


# -- honest limits ---------------------------------------------------------------------------------
def test_an_in_memory_set_that_will_not_fit_is_refused_with_the_estimate(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "imgs", n=40)
    need = 40 * 3 * 8 * 8  # uint8
    monkeypatch.setattr(memory, "available_bytes", lambda: need)  # 80% of it is the limit
    with pytest.raises(ConfigError) as err:
        folder_dm(root, in_memory=True)
    msg = str(err.value)
    assert "7.68 kB" in msg and "7.68 kB available" in msg and "dataset.in_memory=false" in msg
    assert "\n" not in msg  # one paragraph
    assert folder_dm(root, in_memory=False).streaming  # streaming is accepted
    assert folder_dm(root, in_memory="auto").streaming  # auto streams what takes > 1/4
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * need)
    assert not folder_dm(root, in_memory="auto").streaming
    assert folder_dm(root, in_memory=True).stored.dtype == torch.uint8
    monkeypatch.setattr(memory, "AUTO_MAX_BYTES", need - 1)
    assert folder_dm(root, in_memory="auto").streaming  # and what is above 1 GiB
    # the in-memory datasets of the package are checked the same way
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(ConfigError, match=r"mnist_sample.*would take about 3.92 MB.*dataset.limit"):
        MNISTSampleDataModule(batch_size=8).setup()
    with pytest.raises(ConfigError, match="in_memory must be true"):
        ImageFolderDataModule(root, in_memory="yes")


def test_ddp_ranks_on_one_node_count_one_copy_each(tmp_path, monkeypatch):
    """Every DDP rank holds its own copy of an in-memory set: the check counts the copies this
    node will hold, the refusal says so, and in_memory=auto streams when they will not fit."""
    root = write_folder(tmp_path / "imgs", n=40)
    need = 40 * 3 * 8 * 8  # 7.68 kB as uint8
    monkeypatch.setattr(memory, "available_bytes", lambda: 3 * need)  # 80%: 2.4 copies fit
    assert folder_dm(root, in_memory=True).stored.dtype == torch.uint8
    with memory.holding(2):
        assert folder_dm(root, in_memory=True).stored.dtype == torch.uint8
    with memory.holding(3), pytest.raises(ConfigError) as err:
        folder_dm(root, in_memory=True)
    msg = str(err.value)
    assert "3 processes x 7.68 kB = 23 kB" in msg and "\n" not in msg
    assert "dataset.in_memory=false" in msg and "each rank reads its own share" in msg
    assert memory.held(need) == "7.68 kB"  # the count is back to one outside `holding`
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * need)  # auto: up to 2 copies
    with memory.holding(2):
        assert not folder_dm(root, in_memory="auto").streaming
    with memory.holding(3):
        assert folder_dm(root, in_memory="auto").streaming
    # the package's in-memory sets are counted the same way: 125 kB each, 2 fit in 80% of 314 kB
    monkeypatch.setattr(memory, "available_bytes", lambda: 314_000)
    with memory.holding(2):
        assert MNISTSampleDataModule(batch_size=8, limit=160).setup() is None
    with memory.holding(3), pytest.raises(ConfigError, match=r"mnist_sample.*3 processes x 125"):
        MNISTSampleDataModule(batch_size=8, limit=160).setup()

    # ganarena-train counts the copies from the trainer config, around the datamodule's setup
    from ganarena.train import setup_data
    from tests.conftest import compose_train

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("SLURM_LOCALID", raising=False)
    folder = [
        "dataset=image_folder", f"dataset.root={root}", "dataset.image_size=8",
        "dataset.in_memory=true", "accelerator=ddp_cpu",
    ]  # fmt: skip
    monkeypatch.setattr(memory, "available_bytes", lambda: 3 * need)
    cfg = compose_train(tmp_path / "r1", [*folder, "trainer.devices=3"])
    assert memory.copies_on_node(cfg.trainer) == 3
    with pytest.raises(ConfigError, match=r"3 processes x 7.68 kB.*dataset.in_memory=false"):
        setup_data(cfg, tmp_path / "r1")
    cfg = compose_train(tmp_path / "r2", [*folder, "trainer.devices=2"])
    assert setup_data(cfg, tmp_path / "r2").stored.dtype == torch.uint8  # 2 copies fit
    assert memory.copies_on_node(compose_train(tmp_path, ["accelerator=cpu"]).trainer) == 1
    spawned = {"devices": 4, "strategy": "ddp_spawn_find_unused_parameters_true"}
    assert memory.copies_on_node(spawned) == 1  # the ranks share the launcher's tensors
    assert memory.copies_on_node({"devices": "0,1", "accelerator": "gpu"}) == 2
    assert memory.copies_on_node({"devices": [0, 1, 2], "strategy": "ddp"}) == 3
    monkeypatch.setenv("LOCAL_RANK", "1")  # a rank Lightning started: rank 0 counted it
    assert memory.copies_on_node({"devices": 4, "strategy": "ddp"}) == 1


def test_available_memory_reads_meminfo():
    avail = memory.available_bytes()
    assert avail is None or avail > 0
    assert memory.fmt(2_457_600_000) == "2.46 GB" and memory.fmt(61_200_000) == "61.2 MB"
