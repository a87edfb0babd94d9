"""Results of a `ddp_spawn` fit, handed from the child processes back to the main one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L

from ganarena.run.files import write_json


class SpawnResults(L.Callback):
    """Under `ddp_spawn` the fit runs in child processes and Lightning hands only the weights back
    to the main process. Rank 0 writes its counters and evaluation results to `path` at the end;
    `restore` applies them in the main process, which then writes metrics.json and last.ckpt."""

    def __init__(self, path: Path, evaluation: Any) -> None:
        self.path, self.evaluation = path, evaluation

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            state = dict(pl_module.counters())
            if self.evaluation is not None:
                state["evaluation"] = self.evaluation.state_dict()
            write_json(self.path, state)

    def restore(self, module: Any) -> None:
        if not self.path.is_file():
            return
        state = json.loads(self.path.read_text())
        self.path.unlink()
        if self.evaluation is not None and "evaluation" in state:
            self.evaluation.load_state_dict(state.pop("evaluation"))
        module.load_counters(state)
