"""Task: what every adversarial training recipe shares, and the protocol the rest of ganarena uses.

A task is a LightningModule in manual optimization. Subclasses write `training_step` (their
recipe) and call `self.generator_step_done()` after each generator update; the base keeps the
counters, stops at `max_steps`, averages the logged statistics (and stops on NaN/inf), keeps EMA
copies of the generators, puts counters and RNG state into checkpoints, and builds optimizers.

THE protocol. Callbacks, the evaluators, `ganarena-eval`, `ganarena-generate` and `train.py` use
these members and nothing else of a task:

    kind                 "generative" (samples from noise) or "translation" (maps images)
    g_step, d_step       generator steps / discriminator steps (= training batches consumed)
    max_steps, seed      the run's generator-step budget and seed
    real_images_seen     real images consumed (throughput)
    config               the resolved train config (saved in checkpoints)
    sample_fixed()       images (N, C, H, W) in [-1, 1] for the sample grid, from fixed inputs
    grid_nrow            images per grid row
    sampling_modules()   the networks that produce samples (EMA copies when kept)
    summary()            task settings that identify a run (metrics.json "config")
    counters() / load_counters(d)
    probe_networks()     (G, D, D's input transform) for trainer.precision=auto's probe, or None

Generative tasks add `num_classes` (None: unconditional), `latent_dim`, `sample(n, seed, labels,
start, psi)` and `decode(z, labels)`; translation tasks add `translate(x, direction)`.

Style-based generative tasks (`style_based` True: the generator maps z to per-layer styles, StyleGAN)
also offer `map(z, labels, psi)` -> ws (N, num_ws, w_dim) and `synthesize(ws)` -> images, which
ganarena-generate uses for truncation, interpolation in W and style-mixing grids.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from ganarena.errors import CheckpointError, ConfigError, DivergedError

LATENT_BLOCK = 1000  # latents are drawn in seeded blocks of this many (see seeded_normal)


def seeded_normal(seed: int, start: int, n: int, *shape: int) -> Tensor:
    """Items start..start+n-1 of an endless stream of N(0, I) draws of `shape`, defined by `seed`.

    Item i depends only on (seed, i): block i // LATENT_BLOCK is drawn from its own generator
    seeded by (seed, block). So the same images come out whatever the batch size, and a DDP rank
    draws its own share of an evaluation without replaying the other ranks' draws."""
    out = []
    first, last = start // LATENT_BLOCK, (start + n - 1) // LATENT_BLOCK
    for block in range(first, last + 1) if n > 0 else ():
        key = int(np.random.SeedSequence([int(seed), block]).generate_state(1, np.uint64)[0])
        z = torch.randn(LATENT_BLOCK, *shape, generator=torch.Generator().manual_seed(key))
        lo = max(start - block * LATENT_BLOCK, 0)
        hi = min(start + n - block * LATENT_BLOCK, LATENT_BLOCK)
        out.append(z[lo:hi])
    return torch.cat(out) if out else torch.empty(0, *shape)


def ema_with_warmup(decay: float) -> Callable:
    """AveragedModel's multi_avg_fn for an EMA whose decay ramps up: min(decay, (1+t)/(10+t))
    after t updates, as TensorFlow's ExponentialMovingAverage(num_updates) does. A plain 0.999
    EMA still holds 74 % of the initial weights after 300 steps; the ramp follows the generator
    early and settles at `decay` after ~10,000 steps (0.99 by step 900)."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        t = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + t) / (10.0 + t))
        torch._foreach_lerp_(averaged, current, weight)

    return update


def linear_decay(max_steps: int | None, decay_start: float) -> Callable[[int], float]:
    """The reference's `lambda_rule` (models/networks.py, lr_policy "linear") in generator steps:
    factor 1 for the first C = floor(decay_start * max_steps) steps, then
    1 - (s + 1 - C) / (D + 1) at step s over the D = max_steps - C remaining steps (the reference
    counts epochs: --n_epochs constant, --n_epochs_decay decaying, ending at 1 / (D + 1)).
    Without max_steps the rate stays constant."""
    if max_steps is None:
        return lambda step: 1.0
    constant = int(decay_start * max_steps)
    decay = max_steps - constant

    def factor(step: int) -> float:
        return 1.0 - max(0, step + 1 - constant) / float(decay + 1)

    return factor


def check_decay_start(value: Any, example: str) -> None:
    """ConfigError unless `value` is a fraction of max_steps in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= 1):
        raise ConfigError(
            f"task.decay_start must be a fraction of trainer.max_steps between 0 and 1, got "
            f"{value!r}; {example}."
        )


def accepts_fused(factory: Callable[..., torch.optim.Optimizer]) -> bool:
    """True for optimizer partials whose class takes `fused` and that do not set it already."""
    cls = getattr(factory, "func", factory)
    given = getattr(factory, "keywords", {}) or {}
    try:
        return "fused" in inspect.signature(cls).parameters and given.get("fused") is None
    except (TypeError, ValueError):
        return False


def state_like_params(optimizer: torch.optim.Optimizer) -> None:
    """After an optimizer's state is loaded: each state tensor in its parameter's memory layout.

    A checkpoint written with speed.channels_last on and resumed with it off (or the reverse)
    holds Adam's moments in the other layout, and torch's fused Adam pairs elements by memory
    position, not by index: wrong updates without an error (tests/test_speed.py)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if (
                    torch.is_tensor(value)
                    and value.shape == p.shape
                    and value.stride() != p.stride()
                ):
                    state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def check_optimizer(factory: Any, key: str) -> None:
    """Build the optimizer partial once on a dummy parameter so bad arguments fail up front."""
    try:
        factory(params=[nn.Parameter(torch.zeros(1))])
    except Exception as e:  # noqa: BLE001 - any failure to build it means the settings are bad
        raise ConfigError(
            f"{key} is not a valid optimizer setting: {type(e).__name__}: {e}. Fix it on the "
            f"command line, e.g. {key}.lr=0.0002 {key}.betas=[0.5,0.999]."
        ) from None


def adversarial_loss(loss: Any, hint: str = ""):
    """The task's adversarial loss: a ganarena.gan.losses.Loss (what a loss yaml's `objective` builds,
    also a user's own subclass), or a built-in's name (LOSSES); a ConfigError otherwise."""
    from ganarena.gan.losses import LOSSES, Loss

    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ConfigError(
        f"loss.objective={loss!r} is not an adversarial loss: expected a ganarena.gan.losses.Loss "
        f"(d(real, fake) and g(real, fake)) or a built-in name ({', '.join(LOSSES)}). Choose one "
        f"with loss=<name>{hint}, or point loss.objective._target_ at a Loss subclass."
    )


def discriminator_stats(loss: Any, real: Tensor, fake: Tensor, side: str = "") -> dict[str, Tensor]:
    """What a discriminator made of a batch, under tags that mean one thing whatever the loss.

    Probability losses (minimax, non-saturating): train/d_real_prob, train/d_fake_prob, the mean
    sigmoid(D) in [0, 1]. The others (lsgan, wgan, wgan_gp, hinge): train/critic_real,
    train/critic_fake, the mean raw score; for WGAN(-GP) also train/wasserstein, their difference
    (the critic's W1 estimate, up to scale). `side` names one of several discriminators (d_a_...).
    """
    real, fake = real.detach().float(), fake.detach().float()
    if loss.prob:
        d = f"train/d_{side}_" if side else "train/d_"
        return {
            f"{d}real_prob": torch.sigmoid(real).mean(),
            f"{d}fake_prob": torch.sigmoid(fake).mean(),
        }
    c = f"train/critic_{side}_" if side else "train/critic_"
    stats = {f"{c}real": real.mean(), f"{c}fake": fake.mean()}
    if loss.w1:
        stats[f"train/wasserstein{'_' + side if side else ''}"] = real.mean() - fake.mean()
    return stats


class Task(L.LightningModule):
    """The shared base of ganarena's training recipes; see the module docstring."""

    kind = "generative"
    grid_nrow = 8

    def __init__(
        self,
        max_steps: int | None = None,
        log_every_n_steps: int = 50,
        seed: int | None = 0,
        fused_optimizers: bool = True,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.max_steps = max_steps
        self.log_every_n_steps = log_every_n_steps
        self.seed = 0 if seed is None else int(seed)
        self.fused_optimizers = fused_optimizers
        self.config: dict | None = None  # the resolved train config, saved in checkpoints
        self.g_step = 0
        self.d_step = 0
        self.real_images_seen = 0
        self._sums: dict[str, tuple[Tensor, int]] = {}  # key -> (sum on the device, count)
        self._emas: list[tuple[nn.Module, AveragedModel]] = []
        self.sample_with_ema = True  # use_ema(False): sample from the trained networks

    # -- protocol defaults ---------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Task settings that identify a run beside the common keys (ganarena.run.records)."""
        return {}

    def sampling_modules(self) -> list[nn.Module]:
        """The networks that produce samples (EMA copies when kept)."""
        raise NotImplementedError

    def sample_fixed(self) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] for the sample grid, from inputs fixed for the run."""
        raise NotImplementedError

    def probe_networks(self) -> tuple[nn.Module, nn.Module, Any] | None:
        """(generator, discriminator, transform(x, real=) of D's input) that
        trainer.precision=auto times in float32 and bf16 (ganarena.run.precision); None: the
        task has no single such pair, and auto keeps float32."""
        return None

    def counters(self) -> dict[str, int]:
        return {
            "g_step": self.g_step,
            "d_step": self.d_step,
            "real_images_seen": self.real_images_seen,
        }

    def load_counters(self, counters: dict[str, Any]) -> None:
        for k in ("g_step", "d_step", "real_images_seen"):
            if k in counters:
                setattr(self, k, int(counters[k]))

    def freeze_d(self, k: int) -> list[str]:
        """FreezeD: keep the first `k` layers of the discriminator as loaded (freeze_d=K);
        returns the names frozen. Tasks with one discriminator implement it."""
        raise ConfigError(
            f"freeze_d applies to tasks with one discriminator, not to {type(self).__name__}."
        )

    @property
    def divergence_hint(self) -> str:
        """What to try when training diverges (subclasses name their own knobs)."""
        return "Try lower learning rates."

    # -- EMA -----------------------------------------------------------------------------------
    def keep_ema(self, source: nn.Module, decay: float) -> AveragedModel:
        """An EMA copy of `source`, updated after every generator step: parameters averaged,
        buffers (batch-norm running statistics) copied, as StyleGAN2-ADA's G_ema does.
        Averaging the buffers too (AveragedModel's use_buffers=True) keeps most of the initial
        running variance for thousands of steps at decay 0.999: a DCGAN's EMA samples came out
        flat grey (output std 0.09 against the generator's 0.61 after 1,000 steps)."""
        ema = AveragedModel(source, multi_avg_fn=ema_with_warmup(decay), use_buffers=False)
        ema.requires_grad_(False)
        self._emas.append((source, ema))
        return ema

    @property
    def samples_from_ema(self) -> bool:
        """Whether samples (and scores) come from EMA copies: kept, and not turned off."""
        return self.sample_with_ema and bool(self._emas)

    def use_ema(self, on: bool) -> None:
        """Sample (and so evaluate) with the EMA copies when kept (on, the default) or with the
        trained networks themselves (ganarena-eval ema=false)."""
        self.sample_with_ema = bool(on)

    @torch.no_grad()
    def _update_emas(self) -> None:
        for source, ema in self._emas:
            ema.update_parameters(source)
            for mine, theirs in zip(ema.module.buffers(), source.buffers(), strict=True):
                mine.copy_(theirs)

    # -- optimizers ----------------------------------------------------------------------------
    def make_optimizer(
        self,
        factory: Callable[..., torch.optim.Optimizer],
        params: Iterable,
        lazy_ratio: float = 1.0,
    ) -> torch.optim.Optimizer:
        """`factory(params)`, fused where torch offers it, with the lazy-regularisation correction.

        lazy_ratio = I/(I+1) when a regulariser takes its own optimizer step every I steps
        (StyleGAN2, Karras et al. 2020, training_loop.py: "mb_ratio"): lr *= ratio and each
        beta -> beta ** ratio, so the I+1 steps per I minibatches move the weights as far as I
        steps of the unregularised optimizer would."""
        kwargs: dict[str, Any] = {}
        if self.fused_optimizers and accepts_fused(factory) and self.device.type in ("cpu", "cuda"):
            # Same update rule in one kernel per step instead of several per tensor: on 2 CPU
            # cores Adam's step for the MLP D takes 0.19 ms fused vs 0.69 ms per-tensor.
            kwargs["fused"] = True
        if lazy_ratio != 1.0:
            given = getattr(factory, "keywords", {}) or {}
            kwargs["lr"] = given.get("lr", 1e-3) * lazy_ratio
            if "betas" in given:
                kwargs["betas"] = tuple(b**lazy_ratio for b in given["betas"])
        optimizer = factory(params=params, **kwargs)
        optimizer.register_load_state_dict_post_hook(state_like_params)
        return optimizer

    # -- loop ----------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        # Every batch is one D step, so d_step (restored from the checkpoint by now) says how far
        # into the data order a resumed run is; under DDP too (a streamed set's sampler resumes
        # each rank's share). Here, not in on_train_start: Lightning creates the train loader's
        # iterator in between, and loader workers prefetch batches from the sampler at once.
        self.trainer.datamodule.seek(self.d_step)

    def on_train_start(self) -> None:
        if self.trainer.world_size > 1:
            # Every rank was seeded alike; distinct draws per rank, or all ranks draw the same z.
            torch.manual_seed(self.seed + 1_000_003 * self.global_rank + self.g_step)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        if self.max_steps is not None and self.g_step >= self.max_steps:
            self.trainer.should_stop = True
            return -1  # ends the epoch; should_stop ends fit
        return None

    def generator_step_done(self, stats: dict[str, Tensor]) -> None:
        """Book-keeping after a generator update: EMA, counter, logs, stopping."""
        self._update_emas()
        self.g_step += 1
        # A plain float, so no host sync; the checkpoint callback names files by it.
        self.log("g_step", float(self.g_step), logger=False, on_step=True, on_epoch=False)
        self.accumulate(stats)
        if self.g_step % self.log_every_n_steps == 0:
            self._flush_logs()
        if self.max_steps is not None and self.g_step >= self.max_steps:
            self.trainer.should_stop = True

    def log_due(self) -> bool:
        """True when the coming generator step flushes the logs: snapshots such as gradient
        norms are taken only then (train/grad_norm_*, train/lr_*)."""
        return (self.g_step + 1) % self.log_every_n_steps == 0

    def grad_norm(self, optimizer: Any) -> Tensor:
        """The L2 norm of the gradients `optimizer` is about to apply (all its parameters)."""
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        return nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=self.device)

    def optimizer_stats(self, optimizer: Any, name: str) -> dict[str, Tensor]:
        """train/grad_norm_<name> (see grad_norm) and train/lr_<name>, the learning rate now."""
        norm = self.grad_norm(optimizer)
        lr = torch.tensor(float(optimizer.param_groups[0]["lr"]), device=norm.device)
        return {f"train/grad_norm_{name}": norm, f"train/lr_{name}": lr}

    def accumulate(self, stats: dict[str, Tensor]) -> None:
        """Add scalars to the running means logged every log_every_n_steps generator steps.
        Sums stay on the device: one host sync per logging interval, not per step."""
        for k, v in stats.items():
            total, count = self._sums.get(k, (None, 0))
            self._sums[k] = (
                v.detach().float() if total is None else total + v.detach().float(),
                count + 1,
            )

    def _flush_logs(self, progress_bar: bool = True) -> None:
        if not self._sums:
            return
        keys = list(self._sums)
        sums = torch.stack([self._sums[k][0] for k in keys]).tolist()
        # Each key is averaged over its own count: D-step stats, G-step stats and lazy
        # regularisation terms are recorded at different rates.
        means = {k: total / self._sums[k][1] for k, total in zip(keys, sums, strict=True)}
        self._sums = {}
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise DivergedError(
                f"Training diverged by generator step {self.g_step}: {', '.join(bad)} became "
                f"NaN/inf. The run stopped; {self._kept_checkpoint()} {self.divergence_hint}"
            )
        for lg in self.loggers:
            lg.log_metrics(means, step=self.g_step)
        if not progress_bar:  # self.log is not allowed outside the training hooks
            return
        shown = {k.split("/")[-1]: v for k, v in means.items() if k.endswith("_loss")}
        self.log_dict(shown, prog_bar=True, logger=False, on_step=True, on_epoch=False)

    def on_train_end(self) -> None:
        self._flush_logs(progress_bar=False)

    def _kept_checkpoint(self) -> str:
        """Which checkpoint survives a divergence, in words (none is claimed that does not exist)."""
        try:
            callback = self.trainer.checkpoint_callback
        except RuntimeError:  # not attached to a Trainer
            callback = None
        path = getattr(callback, "last_model_path", "") or ""
        if path and Path(path).is_file():
            return f"the newest good checkpoint, {path}, is kept (resume from it with ckpt_path=)."
        return "no checkpoint had been written before it, so there is nothing to resume."

    # -- checkpoint state ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = [n for n, p in self.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise DivergedError(
                f"Refusing to save a checkpoint with non-finite weights ({bad[0]} and "
                f"{len(bad) - 1} more) at generator step {self.g_step}; "
                f"{self._kept_checkpoint()} {self.divergence_hint}"
            )
        np_state = np.random.get_state()
        if self.config is not None:
            checkpoint["ganarena_config"] = self.config
        checkpoint["ganarena"] = {
            **self.counters(),
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
        self.load_counters(state)
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        kind, key, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, key.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
        random.setstate(rng["python"])


class GenerativeTask(Task):
    """A task whose generator maps latents z (and optional class labels) to samples."""

    kind = "generative"
    latent_dim: int
    num_classes: int | None = None
    # True when the generator maps latents to per-layer styles ws before synthesising (StyleGAN):
    # then map() and synthesize() work, and sample() takes psi != 1.
    style_based: bool = False

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z[, labels]) from the sampling generator in eval mode, as float32 on the CPU."""
        raise NotImplementedError

    def map(self, z: Tensor, labels: Tensor | None = None, psi: float = 1.0) -> Tensor:
        """Style-based tasks: the sampling generator's styles ws (N, num_ws, w_dim) for z (and
        labels), as float32 on the CPU, truncated towards the tracked average w by `psi`
        (w_avg + psi (w - w_avg): 1 leaves them, 0 gives the average itself)."""
        raise NotImplementedError(f"{type(self).__name__} is not style-based: it has no map().")

    def synthesize(self, ws: Tensor) -> Tensor:
        """Style-based tasks: images (N, C, H, W) in [-1, 1] from styles ws, float32 on the CPU,
        deterministic (no random noise). decode(z, labels) == synthesize(map(z, labels))."""
        raise NotImplementedError(f"{type(self).__name__} is not style-based: no synthesize().")

    def default_labels(self, n: int, start: int = 0) -> Tensor | None:
        """The class-balanced labels start, start+1, ... mod C of a conditional task (else None)."""
        if self.num_classes is None:
            return None
        return torch.arange(start, start + n) % self.num_classes

    def sample(
        self, n: int, seed: int, labels: Tensor | None = None, start: int = 0, psi: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """Items start..start+n-1 of the sample stream of `seed`: (images in [-1, 1], labels).

        Latents come from seeded_normal, so sample i depends only on (seed, i). A conditional task
        uses `labels` (n,), by default the class-balanced default_labels; an unconditional one
        refuses labels. psi != 1 (style-based tasks only): the same latents, truncated (map)."""
        if self.num_classes is None and labels is not None:
            raise ConfigError("This generator is unconditional: sample() takes no labels.")
        if labels is None:
            labels = self.default_labels(n, start)
        z = seeded_normal(seed, start, n, self.latent_dim)
        if psi != 1:
            return self.synthesize(self.map(z, labels, psi)), labels
        return self.decode(z, labels), labels
