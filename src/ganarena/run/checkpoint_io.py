"""Atomic checkpoint writes: a kill mid-save leaves the previous file intact, never half a file."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from ganarena.run.files import save_torch


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temp file in the same folder, fsyncs, then renames over the target."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        save_torch(checkpoint, path, fsync=True)
