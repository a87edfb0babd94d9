"""GANModule: the adversarial training step (manual optimization), nothing model-specific."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganarena.errors import CheckpointError, DivergedError
from ganarena.losses import LOSSES, clip_weights, gradient_penalty
from ganarena.penalties import r1_penalty


class GANModule(L.LightningModule):
    """Alternates `n_critic` discriminator steps (one real batch each) with one generator step.

    A conditional generator (one with `num_classes`) gets each real batch's labels for its fakes,
    and D sees (image, label) pairs. `augment` (ganarena.augment) transforms D's inputs: the real
    images only (`applies_to == "real"`) or real and fake alike in both steps ("both",
    DiffAugment). `r1_gamma` adds the R1 penalty on real data every `r1_interval` D steps.

    `g_step` counts generator steps; it, not Lightning's `global_step` (which counts every
    optimizer step, Lightning #17958), drives `max_steps`, logging x-axes and intervals.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: str,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        n_critic: int = 1,
        clip_value: float | None = None,
        gp_weight: float = 0.0,
        label_smoothing: float = 0.0,
        ema_decay: float | None = None,
        max_steps: int | None = None,
        log_every_n_steps: int = 50,
        n_fixed: int = 64,
        seed: int = 0,
        fused_optimizers: bool = True,
        augment: Callable[[Tensor], Tensor] | None = None,
        r1_gamma: float = 0.0,
        r1_interval: int = 16,
        grid_nrow: int = 8,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss_name = loss
        self.loss = LOSSES[loss]
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.n_critic = n_critic
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.d_kwargs = {"real_label": 1.0 - label_smoothing} if label_smoothing else {}
        self.max_steps = max_steps
        self.fused_optimizers = fused_optimizers
        self.seed = seed
        self.log_every_n_steps = log_every_n_steps
        self.latent_dim = generator.latent_dim
        self.num_classes: int | None = getattr(generator, "num_classes", None)
        self.augment = augment
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.ema: AveragedModel | None = None
        if ema_decay is not None:
            self.ema = AveragedModel(
                generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            )
            self.ema.requires_grad_(False)
        # Fixed latent batch: sample grids stay comparable across steps, runs and resumes.
        z = torch.randn(n_fixed, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_z", z)
        if self.num_classes is not None:  # one grid row per class: row r shows class r mod C
            self.register_buffer("fixed_y", (torch.arange(n_fixed) // grid_nrow) % self.num_classes)
        self.config: dict | None = None  # the resolved train config, saved in checkpoints
        self.g_step = 0
        self.d_step = 0
        self.real_images_seen = 0
        self._sums: dict[str, tuple[Tensor, int]] = {}  # key -> (sum on the device, count)

    def configure_optimizers(self):
        return [
            self._make_optimizer(self.optimizer_g, self.generator),
            self._make_optimizer(self.optimizer_d, self.discriminator),
        ]

    def _make_optimizer(self, factory, net: nn.Module) -> torch.optim.Optimizer:
        kwargs = {}
        if (
            self.fused_optimizers
            and _accepts_fused(factory)
            and self.device.type in ("cpu", "cuda")
        ):
            # Same update rule in one kernel per step instead of several per tensor: on 2 CPU
            # cores Adam's step for the MLP D takes 0.19 ms fused vs 0.69 ms per-tensor.
            kwargs["fused"] = True
        return factory(params=net.parameters(), **kwargs)

    # -- training ------------------------------------------------------------------------------
    def on_train_start(self) -> None:
        # Every batch is one D step, so d_step says how far into the data order a resumed run is.
        sampler = getattr(self.trainer.datamodule, "sampler", None)
        if sampler is not None and self.trainer.world_size == 1:
            sampler.seek(self.d_step)
        if self.trainer.world_size > 1:
            # Every rank was seeded alike; distinct latents per rank, or all ranks draw the same z.
            torch.manual_seed(self.seed + 1_000_003 * self.global_rank + self.g_step)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        if self.max_steps is not None and self.g_step >= self.max_steps:
            self.trainer.should_stop = True
            return -1  # ends the epoch; should_stop ends fit
        return None

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        y = y if self.num_classes is not None else None  # fakes get the real batch's labels
        opt_g, opt_d = self.optimizers()
        n = x.shape[0]

        # The generator step follows the n_critic-th critic step and reuses its fakes (as the
        # PyTorch DCGAN example does): one generator forward per iteration instead of two.
        g_now = (self.d_step + 1) % self.n_critic == 0
        z = torch.randn(n, self.latent_dim, device=self.device)
        with torch.set_grad_enabled(g_now):
            fake = self._g(z, y)

        # Discriminator / critic step on this real batch.
        self.toggle_optimizer(opt_d)
        real_in, fake_in = self._augment(x, real=True), self._augment(fake.detach(), real=False)
        real_logits = self._d(real_in, y)
        fake_logits = self._d(fake_in, y)
        d_loss = self.loss.d(real_logits, fake_logits, **self.d_kwargs)
        stats = {"train/d_loss": d_loss.detach()}
        if self.gp_weight:
            gp = gradient_penalty(lambda t: self._d(t, y), real_in, fake_in)
            d_loss = d_loss + self.gp_weight * gp
            stats["train/d_loss"] = d_loss.detach()
            stats["train/gradient_penalty"] = gp.detach()
        if self.r1_gamma and self.d_step % self.r1_interval == 0:
            # Lazy R1 (Karras et al. 2020): every r1_interval-th D step, weighted by the interval
            # so the penalty's overall strength matches gamma/2 applied at every step.
            r1 = r1_penalty(self._d, real_in, y)
            d_loss = d_loss + 0.5 * self.r1_gamma * self.r1_interval * r1
            self._accumulate({"train/r1": r1.detach()})
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        if self.clip_value is not None:
            clip_weights(self.discriminator, self.clip_value)
        self.d_step += 1
        self.real_images_seen += n

        read = torch.sigmoid if self.loss.prob else (lambda t: t)
        stats["train/d_real"] = read(real_logits.detach()).mean()
        stats["train/d_fake"] = read(fake_logits.detach()).mean()
        if not self.loss.prob:  # critic losses: E[D(x)] - E[D(G(z))] estimates W1 (up to scale)
            stats["train/wasserstein"] = real_logits.detach().mean() - fake_logits.detach().mean()
        self._accumulate(stats)
        if not g_now:
            return

        # Generator step against the freshly updated discriminator.
        self.toggle_optimizer(opt_g)
        g_loss = self.loss.g(self._d(self._augment(fake, real=False), y))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        self.g_step += 1
        # A plain float, so no host sync; ModelCheckpoint ranks and names files by it.
        self.log("g_step", float(self.g_step), logger=False, on_step=True, on_epoch=False)
        self._accumulate({"train/g_loss": g_loss.detach()})
        if self.g_step % self.log_every_n_steps == 0:
            self._flush_logs()
        if self.max_steps is not None and self.g_step >= self.max_steps:
            self.trainer.should_stop = True

    def _g(self, z: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(z) if y is None else self.generator(z, y)

    def _d(self, x: Tensor, y: Tensor | None) -> Tensor:
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def _augment(self, x: Tensor, real: bool) -> Tensor:
        aug = self.augment
        if aug is None or (not real and getattr(aug, "applies_to", "both") != "both"):
            return x
        return aug(x)

    def _accumulate(self, stats: dict[str, Tensor]) -> None:
        # Sums stay on the device; one host sync per logging interval, not per step.
        for k, v in stats.items():
            total, count = self._sums.get(k, (None, 0))
            self._sums[k] = (v.float() if total is None else total + v.float(), count + 1)

    def _flush_logs(self, progress_bar: bool = True) -> None:
        if not self._sums:
            return
        keys = list(self._sums)
        sums = torch.stack([self._sums[k][0] for k in keys]).tolist()
        # Each key is averaged over its own count: D-step stats, G-step stats and the lazy R1
        # term (every r1_interval D steps) are recorded at different rates.
        means = {k: total / self._sums[k][1] for k, total in zip(keys, sums, strict=True)}
        self._sums = {}
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise DivergedError(
                f"Training diverged by generator step {self.g_step}: {', '.join(bad)} became "
                f"NaN/inf (loss={self.loss_name}). The run stopped; the last good checkpoint is kept. "
                "Try a lower learning rate (loss.optimizer_d.lr / loss.optimizer_g.lr), "
                "a different loss (loss=wgan_gp or loss=hinge), or fewer critic steps."
            )
        for lg in self.loggers:
            lg.log_metrics(means, step=self.g_step)
        if not progress_bar:  # self.log is not allowed outside the training hooks
            return
        self.log_dict(
            {
                "d_loss": means.get("train/d_loss", math.nan),
                "g_loss": means.get("train/g_loss", math.nan),
            },
            prog_bar=True,
            logger=False,
            on_step=True,
            on_epoch=False,
        )

    def on_train_end(self) -> None:
        self._flush_logs(progress_bar=False)

    # -- sampling ------------------------------------------------------------------------------
    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and evaluation (the EMA copy when enabled)."""
        return self.ema.module if self.ema is not None else self.generator

    @torch.no_grad()
    def sample_from(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """G(z[, y]) from the (EMA) generator in eval mode, on the CPU; the mode is restored after."""
        g = self.sampler
        was_training = g.training
        g.eval()
        try:
            out = g(z.to(self.device)) if y is None else g(z.to(self.device), y.to(self.device))
            return out.float().cpu()
        finally:
            g.train(was_training)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        batch_size: int = 500,
        labels: Tensor | None = None,
    ) -> Tensor:
        """n samples in [-1, 1]; latents drawn on the CPU from `generator` so results do not
        depend on the device. A conditional model draws class `labels` (n,), by default the
        class-balanced 0, 1, ..., C-1, 0, 1, ...; an unconditional one refuses labels."""
        if self.num_classes is None and labels is not None:
            raise ValueError("This generator is unconditional: sample() takes no labels.")
        if self.num_classes is not None and labels is None:
            labels = torch.arange(n) % self.num_classes
        out = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z = torch.randn(b, self.latent_dim, generator=generator)
            out.append(self.sample_from(z, None if labels is None else labels[start : start + b]))
        return torch.cat(out) if out else torch.empty(0)

    def sample_fixed(self) -> Tensor:
        return self.sample_from(self.fixed_z, getattr(self, "fixed_y", None))

    # -- checkpoint state ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = [n for n, p in self.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise DivergedError(
                f"Refusing to save a checkpoint with non-finite weights ({bad[0]} and "
                f"{len(bad) - 1} more) at generator step {self.g_step}; the last good checkpoint "
                "is kept. Lower the learning rates or change the loss."
            )
        np_state = np.random.get_state()
        if self.config is not None:
            checkpoint["ganarena_config"] = self.config
        checkpoint["ganarena"] = {
            "g_step": self.g_step,
            "d_step": self.d_step,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": [
                    np_state[0],
                    torch.from_numpy(np_state[1].copy()),
                    *map(float, np_state[2:]),
                ],
                "python": random.getstate(),
            },
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganarena")
        if state is None:
            raise CheckpointError(
                "This checkpoint was not written by ganarena (no 'ganarena' state): it cannot "
                "resume a ganarena run. Pass a checkpoints/last.ckpt from a ganarena run folder."
            )
        self.g_step, self.d_step = int(state["g_step"]), int(state["d_step"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        kind, key, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, key.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
        random.setstate(rng["python"])


def _accepts_fused(factory) -> bool:
    """True for optimizer partials whose class takes `fused` and that do not set it already."""
    import inspect

    cls = getattr(factory, "func", factory)
    given = getattr(factory, "keywords", {}) or {}
    try:
        return "fused" in inspect.signature(cls).parameters and given.get("fused") is None
    except (TypeError, ValueError):
        return False


def build_module(cfg: DictConfig) -> GANModule:
    """Instantiate G, D and the GANModule from a resolved train config."""
    from ganarena.augment import build_augment
    from ganarena.config import build, check_optimizer

    loss = cfg.loss
    optimizer_g, optimizer_d = build(loss.optimizer_g), build(loss.optimizer_d)
    check_optimizer(optimizer_g, "loss.optimizer_g")
    check_optimizer(optimizer_d, "loss.optimizer_d")
    r1 = cfg.get("r1") or {}
    nrow, n_fixed = cfg.callbacks.samples.nrow, cfg.callbacks.samples.n
    classes = cfg.model.get("num_classes") if cfg.model.get("conditional") else None
    if classes:  # one grid row per class, nrow samples each
        n_fixed = classes * nrow
    return GANModule(
        generator=build(cfg.model.generator),
        discriminator=build(cfg.model.discriminator),
        loss=loss.name,
        optimizer_g=optimizer_g,
        optimizer_d=optimizer_d,
        n_critic=loss.n_critic,
        clip_value=loss.clip_value,
        gp_weight=loss.gp_weight,
        label_smoothing=loss.label_smoothing,
        ema_decay=cfg.model.ema_decay,
        max_steps=cfg.trainer.max_steps,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        n_fixed=n_fixed,
        seed=cfg.seed if cfg.seed is not None else 0,
        fused_optimizers=cfg.speed.fused_optimizers,
        augment=build_augment(cfg.get("augment")),
        r1_gamma=float(r1.get("gamma", 0.0)),
        r1_interval=int(r1.get("interval", 16)),
        grid_nrow=nrow,
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely (weights_only) or raise CheckpointError saying why."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint not found: '{path}'. Pass ckpt_path=<run folder>/checkpoints/last.ckpt "
            "(an existing file written by ganarena-train)."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CheckpointError(
            f"Checkpoint '{path}' is corrupt or not a PyTorch checkpoint ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}). Use another checkpoint from the run's "
            "checkpoints/ folder, or start a fresh run without ckpt_path."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "ganarena" not in ckpt:
        raise CheckpointError(
            f"Checkpoint '{path}' was not written by ganarena-train (no model state or ganarena "
            "counters). Pass checkpoints/last.ckpt from a ganarena run folder."
        )
    return ckpt


def newest_checkpoint(ckpt_dir: str | Path) -> Path:
    """The checkpoint with the most generator steps in a run's checkpoints/ folder.

    `last.ckpt` is normally it, but a kill between writing `step_N.ckpt` and refreshing
    `last.ckpt` can leave the numbered file newer.
    """
    ckpt_dir = Path(ckpt_dir)
    candidates: list[tuple[int, Path]] = []
    for path in ckpt_dir.glob("step_*.ckpt"):
        try:
            candidates.append((int(path.stem.split("_")[1]), path))
        except (IndexError, ValueError):
            continue
    last = ckpt_dir / "last.ckpt"
    if last.is_file():
        candidates.append((int(read_checkpoint(last)["ganarena"]["g_step"]), last))
    if not candidates:
        raise CheckpointError(
            f"Checkpoint not found: no last.ckpt or step_*.ckpt in '{ckpt_dir}'. ckpt_path=last "
            "resumes the run folder given by hydra.run.dir=<run folder>; check that folder, or "
            "drop ckpt_path to start a fresh run."
        )
    return max(candidates, key=lambda c: (c[0], c[1].name == "last.ckpt"))[1]


def check_compatible(module: GANModule, ckpt: dict[str, Any], path: str | Path) -> None:
    """Raise CheckpointError when the checkpoint's weights do not fit `module`."""
    own = module.state_dict()
    theirs = ckpt["state_dict"]
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    wrong = [k for k in own if k in theirs and own[k].shape != theirs[k].shape]
    if missing or unexpected or wrong:
        saved = ckpt.get("ganarena_config", {})
        what = (
            f"model={saved.get('model', {}).get('name')}, dataset={saved.get('dataset', {}).get('name')}"
            if saved
            else "another configuration"
        )
        first = (missing or unexpected or wrong)[0]
        raise CheckpointError(
            f"Checkpoint '{path}' does not fit this model: it was written for {what} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped "
            f"tensors, e.g. '{first}'). Use the same model/dataset/EMA settings as the run that "
            "wrote it (see its .hydra/config.yaml), or drop ckpt_path."
        )


def load_module(ckpt_path: str | Path, map_location: str = "cpu") -> tuple[GANModule, DictConfig]:
    """Rebuild the GANModule saved in a ganarena checkpoint; returns (module, train config)."""
    ckpt = read_checkpoint(ckpt_path)
    if "ganarena_config" not in ckpt:
        raise CheckpointError(
            f"Checkpoint '{ckpt_path}' carries no ganarena config, so its model cannot be rebuilt. "
            "Pass a checkpoint written by ganarena-train."
        )
    cfg = OmegaConf.create(ckpt["ganarena_config"])
    module = build_module(cfg)
    check_compatible(module, ckpt, ckpt_path)
    module.load_state_dict(ckpt["state_dict"])
    module.g_step = int(ckpt["ganarena"]["g_step"])
    module.eval()
    return module.to(map_location), cfg
