"""Training recipes: one LightningModule per recipe on the shared `Task` base (see tasks/base.py
for the protocol the rest of ganarena uses)."""

from ganarena.tasks.base import GenerativeTask, Task, seeded_normal
from ganarena.tasks.cyclegan import CycleGANTask
from ganarena.tasks.gan import GANTask
from ganarena.tasks.loading import (
    build_task,
    check_compatible,
    freeze_layers,
    init_weights,
    load_task,
    newest_checkpoint,
    read_checkpoint,
)

__all__ = [
    "CycleGANTask",
    "GANTask",
    "GenerativeTask",
    "Task",
    "build_task",
    "check_compatible",
    "freeze_layers",
    "init_weights",
    "load_task",
    "newest_checkpoint",
    "read_checkpoint",
    "seeded_normal",
]
