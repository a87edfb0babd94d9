"""A streamed image folder that records which files each process reads (tests/test_streaming.py
uses it to show that DDP ranks read disjoint shares): every read appends "<rank> <file>" lines to
$GANARENA_TRACE_DIR/reads-<pid>.txt. Selected from the command line with
dataset._target_=tests.streaming_trace.TracedFolderDataModule (the repository on PYTHONPATH)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganarena.data import ImageFolderDataModule


class TracingReader:
    def __init__(self, reader, trace_dir: Path) -> None:
        self.reader, self.trace_dir = reader, trace_dir
        self.shape = reader.shape

    def __len__(self) -> int:
        return len(self.reader)

    def nbytes(self) -> int:
        return self.reader.nbytes()

    def read(self, indices):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else -1
        with open(self.trace_dir / f"reads-{os.getpid()}.txt", "a") as f:
            f.writelines(f"{rank} {self.reader.files[int(i)]}\n" for i in indices)
        return self.reader.read(indices)


class TracedFolderDataModule(ImageFolderDataModule):
    def setup(self, stage: str | None = None) -> None:
        fresh = self._store is None
        super().setup(stage)
        if fresh and self.streaming:
            self._store = TracingReader(self._store, Path(os.environ["GANARENA_TRACE_DIR"]))

    def preview_real(self, task) -> None:
        return None  # the real-image grid would read files too: only the loader's reads count
