"""CycleGANTask: unpaired image-to-image translation (Zhu, Park, Isola & Efros 2017,
arXiv:1703.10593), after the reference code junyanz/pytorch-CycleGAN-and-pix2pix
(`models/cycle_gan_model.py`).

Two generators, G: A -> B and F: B -> A, and two discriminators, D_A (judges domain A: real A
against F(B)) and D_B (judges domain B: real B against G(A)); the reference names its
discriminators by the generator they judge (its netD_A judges G_A(A), i.e. domain B). One
training batch (x_a, y_a, x_b, y_b) is one generator step followed by one discriminator step, as
the reference's `optimize_parameters`:

  G and F:  L_adv(D_B(G(a))) + L_adv(D_A(F(b)))
            + lambda_cycle * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
            + lambda_cycle * lambda_identity * (|G(b) - b|_1 + |F(a) - a|_1)
  D_A, D_B: 0.5 * (L_D(D_A(a), D_A(pool_A(F(b)))) + L_D(D_B(b), D_B(pool_B(G(a)))))

with the adversarial pair L_adv / L_D from `ganarena.gan.losses.LOSSES[loss]` and the fakes drawn
from an image pool of earlier fakes (Shrivastava et al. 2017). Both optimizers follow a constant
learning rate, then a linear decay (the reference's `--lr_policy linear`), counted in generator
steps. The image pools go into checkpoints, so a resumed run continues exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganarena.errors import CheckpointError, ConfigError, check_int
from ganarena.gan.image_pool import ImagePool
from ganarena.gan.penalties import clip_weights, gradient_penalty
from ganarena.run.defaults import example
from ganarena.tasks.base import (
    Task,
    adversarial_loss,
    check_decay_start,
    check_optimizer,
    discriminator_stats,
    linear_decay,
)

DIRECTIONS = ("ab", "ba")


class CycleGANTask(Task):
    """Two translators and two discriminators trained with cycle consistency; see the module
    docstring. Batches come from a two-domain datamodule (ganarena.data.UnpairedDataModule)."""

    kind = "translation"
    num_classes = None  # translation is unconditional
    grid_nrow = 3  # a grid row: input, translation, reconstruction

    # the regularisers this task applies (to both discriminators); the config checks refuse others
    regularizers_applied = ("GradientPenalty", "WeightClip")

    def __init__(
        self,
        generator_ab: nn.Module,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        loss: Any,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        image_size: int,
        channels: int,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        lambda_adv: float = 1.0,
        d_loss_factor: float = 0.5,
        loss_name: str | None = None,
        pool_size: int = 50,
        decay_start: float = 0.5,
        n_critic: int = 1,
        regularizers: Mapping[str, Any] | None = None,
        label_smoothing: float = 0.0,
        ema_decay: float | None = None,
        augment: Mapping[str, Any] | None = None,
        n_fixed: int = 8,
        name: str = "cyclegan",
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.loss = adversarial_loss(loss, " (the reference's is loss=lsgan)")
        self._check(n_critic, augment, decay_start, pool_size, n_fixed)
        for key, value in (
            ("lambda_cycle", lambda_cycle),
            ("lambda_identity", lambda_identity),
            ("lambda_adv", lambda_adv),
            ("d_loss_factor", d_loss_factor),
        ):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value < 0:
                shown = example(f"task.{key}", 10, "cyclegan")
                raise ConfigError(
                    f"task.{key} must be a finite number >= 0, got {value!r}. Set it on the command "
                    f"line or in the config, e.g. task.{key}={shown} (conf/task/cyclegan.yaml, the "
                    "reference's)."
                )
        for key, net in (("generator_ab", generator_ab), ("generator_ba", generator_ba)):
            if getattr(net, "latent_dim", None) is not None:
                raise ConfigError(
                    f"task=cyclegan maps images to images, but task.{key} is a "
                    f"{type(net).__name__}, which draws images from a latent vector. Use an "
                    "image-to-image model: model=resnet (or experiment=cyclegan_digits)."
                )
        check_optimizer(optimizer_g, "optim.g")
        check_optimizer(optimizer_d, "optim.d")
        self.name = name
        self.generator_ab, self.generator_ba = generator_ab, generator_ba
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.loss_name = loss_name or (loss if isinstance(loss, str) else type(self.loss).__name__)
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_identity = float(lambda_identity)
        self.lambda_adv = float(lambda_adv)
        self.d_loss_factor = float(d_loss_factor)
        self.decay_start = float(decay_start)
        self.clip_value, self.gp_weight = self._regularizers(regularizers)
        self.d_kwargs = {"real_label": 1.0 - label_smoothing} if label_smoothing else {}
        self.pool_size = pool_size
        # Each pool draws from its own generator (seeded by the run): the global RNG is untouched.
        self.pool_a = ImagePool(pool_size, seed=self.seed * 2)
        self.pool_b = ImagePool(pool_size, seed=self.seed * 2 + 1)
        self.ema_ab = None if ema_decay is None else self.keep_ema(generator_ab, ema_decay)
        self.ema_ba = None if ema_decay is None else self.keep_ema(generator_ba, ema_decay)
        # Fixed inputs of the sample grid, drawn from the data at setup (fix_inputs); buffers, so
        # checkpoints carry them to ganarena-eval/-generate and resumed runs.
        shape = (n_fixed, channels, image_size, image_size)
        self.register_buffer("fixed_a", torch.zeros(shape))
        self.register_buffer("fixed_b", torch.zeros(shape))

    @staticmethod
    def _regularizers(entries: Mapping[str, Any] | None) -> tuple[float | None, float]:
        """(clip value or None, gradient-penalty weight) from regularizer=[...]: the two this
        task applies (to both discriminators); any other is refused, not ignored."""
        from ganarena.gan.penalties import GradientPenalty, WeightClip, build_penalties

        clip, gp = None, 0.0
        for name, penalty in build_penalties(entries).items():
            if isinstance(penalty, WeightClip):
                clip = penalty.value
            elif isinstance(penalty, GradientPenalty) and penalty.interval == 1:
                gp = penalty.weight
            else:
                raise ConfigError(
                    f"regularizer.{name} ({type(penalty).__name__}) cannot apply to task=cyclegan: "
                    "it applies only the gradient penalty (regularizer.gp, every step) and weight "
                    f"clipping (regularizer.clip) to its two discriminators. Drop it: ~regularizer.{name}."
                )
        return clip, gp

    @staticmethod
    def _check(n_critic, augment, decay_start, pool_size, n_fixed) -> None:
        if n_critic != 1:
            raise ConfigError(
                f"task=cyclegan updates the generators and the discriminators once per batch (the "
                f"reference's schedule), so optim.n_critic={n_critic} cannot apply. Add "
                "optim.n_critic=1, or use loss=lsgan (the reference's loss)."
            )
        name = (augment or {}).get("name", "none") if isinstance(augment, Mapping) else augment
        if name not in (None, "none"):
            raise ConfigError(
                f"task=cyclegan does not augment its discriminators' inputs (augment={name}); the "
                "reference trains without. Drop augment= (augment=none)."
            )
        check_decay_start(
            decay_start,
            "e.g. task.decay_start=0.5 (the reference: half constant, half linear decay)",
        )
        check_int("task.pool_size", pool_size, 0, "e.g. task.pool_size=50 (the reference's).")
        check_int("task.n_fixed", n_fixed, 1, "e.g. task.n_fixed=8.")

    # -- protocol --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {
            "lambda_cycle": self.lambda_cycle,
            "lambda_identity": self.lambda_identity,
            "lambda_adv": self.lambda_adv,
            "pool_size": self.pool_size,
            "decay_start": self.decay_start,
        }

    @property
    def divergence_hint(self) -> str:
        return (
            f"(task=cyclegan, loss={self.loss_name}) Try lower learning rates "
            "(optim.g.lr / optim.d.lr), the reference's loss=lsgan, or a "
            "smaller task.lambda_cycle."
        )

    def sampler(self, direction: str) -> nn.Module:
        """The translator for `direction` ("ab": G, "ba": F), its EMA copy when kept."""
        if direction not in DIRECTIONS:
            raise ConfigError(
                f"direction must be 'ab' (domain A to B) or 'ba' (B to A), got {direction!r}."
            )
        ema = self.ema_ab if direction == "ab" else self.ema_ba
        if ema is not None and self.sample_with_ema:
            return ema.module
        return self.generator_ab if direction == "ab" else self.generator_ba

    def sampling_modules(self) -> list[nn.Module]:
        return [self.sampler("ab"), self.sampler("ba")]

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] of the source domain -> the other domain, by the
        sampling translator in eval mode, as float32 on the CPU."""
        net = self.sampler(direction)
        was_training = net.training
        net.eval()
        try:
            return net(x.to(self.device, torch.float32)).float().cpu()
        finally:
            net.train(was_training)

    def sample_fixed(self) -> Tensor:
        """Rows (a, G(a), F(G(a))) for the fixed A images, then (b, F(b), G(F(b))) for B's."""
        rows = []
        for x, there, back in ((self.fixed_a, "ab", "ba"), (self.fixed_b, "ba", "ab")):
            fake = self.translate(x, there)
            rec = self.translate(fake, back)
            rows.append(torch.stack([x.float().cpu(), fake, rec], dim=1).flatten(0, 1))
        return torch.cat(rows)

    # -- fixed inputs ----------------------------------------------------------------------------
    @torch.no_grad()
    def fix_inputs(self, images_a: Tensor, images_b: Tensor) -> None:
        """Draw the sample grid's inputs from each domain's images with the run seed (with
        replacement only when a domain holds fewer images than task.n_fixed)."""
        gen = torch.Generator().manual_seed(self.seed)
        for buf, images in ((self.fixed_a, images_a), (self.fixed_b, images_b)):
            n = len(buf)
            idx = torch.randperm(len(images), generator=gen)[:n]
            if len(idx) < n:
                idx = idx[torch.arange(n) % len(idx)]
            if tuple(images.shape[1:]) != tuple(buf.shape[1:]):
                raise ConfigError(
                    f"task=cyclegan was built for images of shape {tuple(buf.shape[1:])} (C, H, W) "
                    f"but the data holds {tuple(images.shape[1:])}: the task takes image_size "
                    "and channels from dataset.image_size / dataset.channels; keep them in step."
                )
            buf.copy_(images[idx].to(buf.device))

    def setup(self, stage: str) -> None:
        dm = self._trainer.datamodule if self._trainer is not None else None
        if dm is None:
            return
        if dm.serves != "translation":
            raise ConfigError(
                f"task=cyclegan translates between two image domains, but dataset "
                f"'{dm.name}' has one. Use a two-domain dataset: "
                "dataset=mnist2inverted, mnist2digits or unpaired_folder."
            )
        dm.setup(stage)
        self.fix_inputs(dm.a.reference()[0], dm.b.reference()[0])

    # -- optimizers ------------------------------------------------------------------------------
    def configure_optimizers(self):
        opt_g = self.make_optimizer(
            self.optimizer_g,
            itertools.chain(self.generator_ab.parameters(), self.generator_ba.parameters()),
        )
        opt_d = self.make_optimizer(
            self.optimizer_d,
            itertools.chain(self.discriminator_a.parameters(), self.discriminator_b.parameters()),
        )
        rule = linear_decay(self.max_steps, self.decay_start)
        # Stepped by training_step once per generator step; Lightning saves and restores their
        # state (last_epoch = generator steps taken) with the checkpoint.
        scheds = [torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=rule) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], scheds

    # -- the losses ------------------------------------------------------------------------------
    def _g_adv(self, d: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """G's adversarial term against `d`; D's real logits only for losses that read them."""
        if not self.loss.g_uses_real:
            return self.loss.g(None, d(fake))
        with torch.no_grad():
            real_logits = d(real)
        return self.loss.g(real_logits, d(fake))

    def generator_loss(self, x_a: Tensor, x_b: Tensor) -> tuple[Tensor, dict[str, Tensor], dict]:
        """(total G+F loss, its terms, the fakes {"a": F(b), "b": G(a)}) for one batch."""
        fake_b = self.generator_ab(x_a)
        fake_a = self.generator_ba(x_b)
        rec_a = self.generator_ba(fake_b)
        rec_b = self.generator_ab(fake_a)
        adv = self._g_adv(self.discriminator_b, x_b, fake_b) + self._g_adv(
            self.discriminator_a, x_a, fake_a
        )
        cycle = F.l1_loss(rec_a, x_a) + F.l1_loss(rec_b, x_b)
        total = self.lambda_adv * adv + self.lambda_cycle * cycle
        terms = {"train/g_adv": adv.detach(), "train/cycle_l1": cycle.detach()}
        if self.lambda_identity > 0:
            idt = F.l1_loss(self.generator_ab(x_b), x_b) + F.l1_loss(self.generator_ba(x_a), x_a)
            total = total + self.lambda_cycle * self.lambda_identity * idt
            terms["train/identity_l1"] = idt.detach()
        terms["train/g_loss"] = total.detach()
        return total, terms, {"a": fake_a, "b": fake_b}

    def discriminator_loss(
        self, x_a: Tensor, x_b: Tensor, fake_a: Tensor, fake_b: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(d_loss_factor x (D_A's loss + D_B's loss), terms) on real images and pooled fakes."""
        terms: dict[str, Tensor] = {}
        total: Tensor | float = 0.0
        for side, d, real, fake in (
            ("a", self.discriminator_a, x_a, fake_a),
            ("b", self.discriminator_b, x_b, fake_b),
        ):
            real_logits, fake_logits = d(real), d(fake)
            loss = self.loss.d(real_logits, fake_logits, **self.d_kwargs)
            if self.gp_weight:
                loss = loss + self.gp_weight * gradient_penalty(d, real, fake)
            terms[f"train/d_{side}_loss"] = loss.detach()
            terms.update(discriminator_stats(self.loss, real_logits, fake_logits, side))
            total = total + loss
        total = self.d_loss_factor * total
        terms["train/d_loss"] = total.detach()
        return total, terms

    # -- training --------------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        x_a, _, x_b, _ = batch
        opt_g, opt_d = self.optimizers()
        snapshot = self.log_due()  # gradient norms, once per log interval

        # Generators first, against the current discriminators (reference order).
        self.toggle_optimizer(opt_g)
        g_loss, stats, fakes = self.generator_loss(x_a, x_b)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        if snapshot:
            stats["train/grad_norm_g"] = self.grad_norm(opt_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        # Discriminators on this batch's fakes (computed before the G update, as the reference
        # does), mixed with earlier ones by the pools.
        self.toggle_optimizer(opt_d)
        pooled_a, pooled_b = self.pool_a.query(fakes["a"]), self.pool_b.query(fakes["b"])
        d_loss, d_stats = self.discriminator_loss(x_a, x_b, pooled_a, pooled_b)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        if snapshot:
            d_stats["train/grad_norm_d"] = self.grad_norm(opt_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        if self.clip_value is not None:
            clip_weights(self.discriminator_a, self.clip_value)
            clip_weights(self.discriminator_b, self.clip_value)

        stats.update(d_stats)
        stats["train/lr_g"] = torch.tensor(opt_g.param_groups[0]["lr"], device=self.device)
        stats["train/lr_d"] = torch.tensor(opt_d.param_groups[0]["lr"], device=self.device)
        for sched in self.lr_schedulers():
            sched.step()
        self.d_step += 1
        self.real_images_seen += len(x_a) + len(x_b)  # both domains' real images
        self.generator_step_done(stats)

    # -- checkpoint state ------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["ganarena_pools"] = {
            "a": self.pool_a.state_dict(),
            "b": self.pool_b.state_dict(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        pools = checkpoint.get("ganarena_pools")
        if pools is None:
            raise CheckpointError(
                "This checkpoint holds no CycleGAN image pools, so it cannot resume task=cyclegan "
                "exactly. Pass a checkpoints/last.ckpt written by a task=cyclegan run."
            )
        self.pool_a.load_state_dict(pools["a"])
        self.pool_b.load_state_dict(pools["b"])
