"""EvaluationCallback with a tiny stand-in GAN module (generator steps counted in `g_step`)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn as nn
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader, TensorDataset

from ganarena.callbacks.evaluation import EvaluationCallback
from ganarena.errors import ConfigError
from ganarena.metrics.backbones import DomainBackbone, DomainClassifier
from ganarena.metrics.evaluator import Evaluator, reference_stats
from ganarena.tasks import seeded_normal


class TinyGAN(L.LightningModule):
    """Manual optimization, one generator step per batch; `sample` as the task protocol has it."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(4, 28 * 28), nn.Tanh())
        self.g_step = 0
        self.max_steps = None  # the task protocol's budget (None: Lightning's max_steps stops it)

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = self.generator(torch.randn(8, 4, device=self.device)).mean()
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.g_step += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(64, 1)), batch_size=8)

    def default_labels(self, n, start=0):
        return None

    @torch.no_grad()
    def sample(self, n, seed, labels=None, start=0):
        z = seeded_normal(seed, start, n, 4).to(self.device)
        return self.generator(z).view(n, 1, 28, 28).cpu(), None


class MemoryLogger(Logger):
    def __init__(self):
        super().__init__()
        self.logged: list[tuple[int, dict]] = []

    @property
    def name(self):
        return "memory"

    @property
    def version(self):
        return 0

    def log_metrics(self, metrics, step=None):
        self.logged.append((step, dict(metrics)))

    def log_hyperparams(self, *args, **kwargs):
        pass


@pytest.fixture(scope="module")
def evaluator():
    torch.manual_seed(0)
    backbone = DomainBackbone(
        DomainClassifier(1, 10, width=8, features=16),
        (1, 28, 28),
        "domain-test-cnn",
        {"classifier_sha256": "0" * 64},
    )
    ref = reference_stats(backbone, torch.rand(200, 1, 28, 28) * 2 - 1, "test", 100)
    return Evaluator(backbone, {"n_samples": 100, "batch_size": 50, "kid_subset_size": 50}, ref)


def fit(callback, max_steps, module=None):
    logger = MemoryLogger()
    trainer = L.Trainer(
        max_steps=max_steps,
        callbacks=[callback],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        log_every_n_steps=1,
    )
    module = module or TinyGAN()
    trainer.fit(module)
    return trainer, module, logger


@pytest.mark.filterwarnings("ignore:Scoring only")
def test_periodic_and_final_evaluation(evaluator, tmp_path):
    cb = EvaluationCallback(evaluator, every_n_steps=2)
    trainer, module, logger = fit(cb, max_steps=5)
    assert module.g_step == 5
    assert [h["step"] for h in cb.history] == [2, 4, 5]
    assert cb.final == {k: v for k, v in cb.history[-1].items() if k not in ("step", "n_samples")}
    best = min(cb.history, key=lambda h: h["fid"])
    assert cb.best == {"fid": best["fid"], "step": best["step"]}
    val = [(step, m) for step, m in logger.logged if "val/fid" in m]
    assert [step for step, _ in val] == [2, 4, 5]
    assert set(val[0][1]) == {
        "val/fid",
        "val/is",
        "val/is_std",
        "val/kid",
        "val/kid_std",
        "val/modes_covered",
        "val/class_kl",
        "val/best_fid",
        "val/precision",
        "val/recall",
        "val/density",
        "val/coverage",
    }
    # val/best_fid is the running best: its last point is the run's best FID (HParams "best FID").
    assert [m["val/best_fid"] for _, m in val] == [
        min(h["fid"] for h in cb.history[: i + 1]) for i in range(3)
    ]
    assert cb.seconds > 0

    # The state travels in checkpoints, so a resumed run keeps history and best.
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    state = next(v for k, v in ckpt["callbacks"].items() if "EvaluationCallback" in k)
    resumed = EvaluationCallback(evaluator, every_n_steps=2)
    resumed.load_state_dict(state)
    assert resumed.history == cb.history and resumed.best == cb.best and resumed.final == cb.final


@pytest.mark.filterwarnings("ignore:Scoring only")
def test_final_step_not_scored_twice(evaluator):
    cb = EvaluationCallback(evaluator, every_n_steps=2)
    fit(cb, max_steps=4)
    assert [h["step"] for h in cb.history] == [2, 4]
    assert cb.final["fid"] == cb.history[-1]["fid"]


def test_same_module_scores_identically(evaluator):
    module = TinyGAN()
    with pytest.warns(UserWarning, match="Scoring only"):
        assert evaluator.score_module(module) == evaluator.score_module(module)


@pytest.mark.filterwarnings("ignore:Scoring only")
@pytest.mark.parametrize(
    ("planned", "stop", "expected"),
    [
        (6, 6, [(2, 20), (4, 20), (6, 100)]),  # the last step: full size
        (10, 5, [(2, 20), (4, 20), (5, 100)]),  # stopped early: the final score is full size
        (10, 4, [(2, 20), (4, 20), (4, 100)]),  # stopped on an interval step: scored again
    ],
)
def test_cheaper_intermediate_evaluations(evaluator, planned, stop, expected):
    """eval.n_samples_during: intermediate points score fewer samples, the final one the full
    n_samples (the same numbers as scoring the trained module directly); `best` counts only
    full-size evaluations, and the evaluator's own n_samples is left as it was."""
    cb = EvaluationCallback(evaluator, every_n_steps=2, n_samples_during=20)
    module = TinyGAN()
    module.max_steps = planned  # the task's plan (Task.max_steps); Lightning stops at `stop`
    trainer, module, _ = fit(cb, max_steps=stop, module=module)
    assert [(h["step"], h["n_samples"]) for h in cb.history] == expected
    assert evaluator.n_samples == 100
    with pytest.warns(UserWarning, match="Scoring only"):
        direct = evaluator.score_module(module)
    assert cb.final == direct
    assert cb.best == {"fid": direct["fid"], "step": stop}
    with pytest.raises(ConfigError, match="n_samples_during must be an integer >= 2"):
        EvaluationCallback(evaluator, every_n_steps=2, n_samples_during=1)
