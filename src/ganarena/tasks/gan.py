"""GANTask: the adversarial recipe — n_critic discriminator steps, then one generator step, with
lazy regularisation phases on either side (StyleGAN2's Gmain / Greg / Dmain / Dreg)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ganarena.errors import ConfigError
from ganarena.gan.penalties import R1, DBatch, GBatch, build_penalties
from ganarena.gan.schedules import Schedule
from ganarena.tasks.base import (
    GenerativeTask,
    adversarial_loss,
    check_decay_start,
    check_optimizer,
    discriminator_stats,
    linear_decay,
)


@dataclass
class Phase:
    """A regularisation term of one network, applied every `interval` steps of that network.

    interval 1: added to the network's main loss. interval I > 1 ("lazy", Karras et al. 2020,
    sec. 3.1): its own optimizer step every I steps with the term multiplied by I, and that
    network's optimizer corrected by I/(I+1) (Task.make_optimizer)."""

    name: str
    interval: int
    weight: float
    term: Callable[..., tuple[Tensor, dict[str, Tensor]]]
    schedule: Callable[[int], float] | None = None  # the weight at generator step t; None: constant

    def due(self, step: int) -> bool:
        return self.weight > 0 and step % self.interval == 0

    def weight_at(self, g_step: int) -> float:
        return self.weight if self.schedule is None else self.schedule(g_step)


class GANTask(GenerativeTask):
    """Alternates `n_critic` discriminator steps (one real batch each) with one generator step.

    A conditional generator (one with `num_classes`) gets each real batch's labels for its fakes,
    and D sees (image, label) pairs. `augment` (ganarena.gan.augment) transforms D's inputs: the real
    images only (`applies_to == "real"`) or real and fake alike in both steps ("both",
    DiffAugment). Regularisation (`regularizers`: regularizer=[...], ganarena.gan.penalties): each
    Penalty is a phase of its network at its own interval — the gradient penalty, R1/R2 and LeCam
    on D, path length on G (needs a style-based generator with `mapping`/`synthesis`) — and
    constraints (weight clipping) act after each step of theirs. A phase's weight may follow a
    cosine schedule (a penalty's `weight_end` / `gamma_end`), and so may both learning rates and Adam's
    beta2 (`schedule`: R3GAN's ramps), all functions of the generator step over the horizon
    `schedule.steps` (default max_steps), so a resumed run reads the same values.

    Style-based generators (`mapping(z, y, psi=)` -> ws, `synthesis(ws, noise_mode=)` -> images,
    as StyleGAN2Generator) make the task `style_based`: map/synthesize delegate to them, and
    decode() synthesises with constant noise, so a latent always gives the same image. A generator
    with a `stats()` method (-> {name: scalar}) gets those scalars logged as train/<name>.
    """

    freezable_d = True  # one discriminator: FreezeD (freeze_d=K) applies

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: Any,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        n_critic: int = 1,
        label_smoothing: float = 0.0,
        ema_decay: float | None = None,
        augment: Mapping[str, Any] | None = None,
        d_input: Mapping[str, Any] | None = None,
        loss_name: str | None = None,
        regularizers: Mapping[str, Any] | None = None,
        n_fixed: int = 64,
        grid_nrow: int = 8,
        name: str = "gan",
        decay_start: float | None = None,
        schedule: Mapping[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if decay_start is not None:
            check_decay_start(decay_start, "e.g. task.decay_start=0.67 (the last third decays)")
        self.decay_start = decay_start
        from ganarena.gan.augment import build_augment, build_d_input

        self.loss = adversarial_loss(loss)
        check_optimizer(optimizer_g, "optim.g")
        check_optimizer(optimizer_d, "optim.d")
        self.name = name
        self.generator = generator
        self.discriminator = discriminator
        self.loss_name = loss_name or (loss if isinstance(loss, str) else type(self.loss).__name__)
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.n_critic = n_critic
        self.d_kwargs = {"real_label": 1.0 - label_smoothing} if label_smoothing else {}
        self.latent_dim = generator.latent_dim
        self.num_classes = getattr(generator, "num_classes", None)
        self.augment = build_augment(augment)  # augment=ada: a module, so p is checkpointed
        self._check_adaptive()
        self.d_input = build_d_input(d_input, conditional=self.num_classes is not None)
        self.grid_nrow = grid_nrow
        self.ema = None if ema_decay is None else self.keep_ema(generator, ema_decay)

        self.schedule = Schedule.from_config(schedule, self.max_steps, decay_start)
        self._check_beta2_schedule()
        self._build_phases(regularizers)

        # Fixed latent batch: sample grids stay comparable across steps, runs and resumes.
        if self.num_classes is not None:  # one grid row per class: row r shows class r mod C
            n_fixed = self.num_classes * grid_nrow
        z = torch.randn(
            n_fixed, self.latent_dim, generator=torch.Generator().manual_seed(self.seed)
        )
        self.register_buffer("fixed_z", z)
        if self.num_classes is not None:
            self.register_buffer("fixed_y", (torch.arange(n_fixed) // grid_nrow) % self.num_classes)

    def _build_phases(self, regularizers: Mapping[str, Any] | None) -> None:
        """The regularisers (regularizer=[...], in config order) as phases of their network."""
        self.penalties = nn.ModuleDict(build_penalties(regularizers))  # buffers in checkpoints
        self.d_phases, self.g_phases = [], []
        for name, penalty in self.penalties.items():
            if penalty.style_based and penalty.weight > 0 and not self.style_based:
                raise ConfigError(
                    f"regularizer.{name} ({type(penalty).__name__}) regularises the synthesis "
                    f"network of a style-based generator (one with `mapping` and `synthesis`, e.g. "
                    f"model=stylegan2), but this generator ({type(self.generator).__name__}) maps "
                    f"z to images directly. Use model=stylegan2, or drop it: ~regularizer.{name}."
                )
            if not penalty.adds_term:
                continue
            ramp = self.schedule.of(penalty.weight, penalty.weight_end)
            phase = Phase(
                name, penalty.interval, penalty.weight, partial(self._penalty, name), ramp
            )
            (self.g_phases if penalty.network == "g" else self.d_phases).append(phase)

    def _after_step(self, network: str) -> None:
        """The constraints of `network` ("d" or "g") after its optimizer step (weight clipping)."""
        module = self.discriminator if network == "d" else self.generator
        for penalty in self.penalties.values():
            if penalty.network == network:
                penalty.after_step(module)

    def _check_beta2_schedule(self) -> None:
        """task.schedule.beta2_end needs optimizers with betas (Adam and its kin)."""
        if self.schedule.beta2_end is None:
            return
        for factory in (self.optimizer_g, self.optimizer_d):
            opt = factory(params=[nn.Parameter(torch.zeros(1))])
            if "betas" not in opt.param_groups[0]:
                raise ConfigError(
                    f"task.schedule.beta2_end ramps Adam's beta2, but loss={self.loss_name}'s "
                    f"{type(opt).__name__} has no betas. Drop task.schedule.beta2_end, or use an "
                    "Adam optimizer (e.g. loss=rpgan or loss=nonsaturating)."
                )

    def _check_adaptive(self) -> None:
        """augment=ada reads sign(D(x) - decision): refused for a loss without a decision logit."""
        from ganarena.gan.augment import AdaptiveAugment

        if isinstance(self.augment, AdaptiveAugment) and self.loss.decision is None:
            raise ConfigError(
                f"augment=ada adapts its probability p to r_t = E[sign(D(x_real))], which measures "
                f"D's overfitting only when the sign of D's logit means real or fake (the logistic "
                f"and hinge losses; LSGAN's 0.5). loss={self.loss_name} defines D only up to a "
                "constant (only differences of logits or scores enter it), so that sign says "
                "nothing. Use augment=diffaugment (a fixed p of 1) with this loss, or ADA with "
                "loss=nonsaturating (or hinge, lsgan); a Loss subclass can declare `decision`."
            )

    # -- protocol --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        r1 = [p for p in self.penalties.values() if isinstance(p, R1)]
        pl = [p for p in self.penalties.values() if p.network == "g" and p.adds_term]
        r1_end = r1[0].weight_end if r1 else None
        return {
            "n_critic": self.n_critic,
            "r1_gamma": r1[0].gamma if r1 else 0.0,
            "pl_weight": pl[0].weight if pl else 0.0,
            **({"decay_start": self.decay_start} if self.decay_start is not None else {}),
            **({"r1_gamma_end": 2 * r1_end} if r1_end is not None else {}),
            **self.schedule.summary(),
        }

    @property
    def divergence_hint(self) -> str:
        return (
            f"(loss={self.loss_name}) Try a lower learning rate (optim.d.lr / "
            "optim.g.lr), a different loss (loss=wgan_gp or loss=hinge), or fewer "
            "critic steps."
        )

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and evaluation (the EMA copy when enabled)."""
        return self.ema.module if self.ema is not None and self.sample_with_ema else self.generator

    def sampling_modules(self) -> list[nn.Module]:
        return [self.sampler]

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.style_based:  # constant noise: the same latent always gives the same image
            return self.synthesize(self.map(z, labels))
        with _eval_mode(self.sampler) as g:
            z = z.to(self.device)
            out = g(z) if labels is None else g(z, labels.to(self.device))
            return out.float().cpu()

    @property
    def style_based(self) -> bool:
        return hasattr(self.generator, "mapping") and hasattr(self.generator, "synthesis")

    @torch.no_grad()
    def map(self, z: Tensor, labels: Tensor | None = None, psi: float = 1.0) -> Tensor:
        if not self.style_based:
            return super().map(z, labels, psi)
        with _eval_mode(self.sampler) as g:
            y = None if labels is None else labels.to(self.device)
            return g.mapping(z.to(self.device), y, psi=psi).float().cpu()

    @torch.no_grad()
    def synthesize(self, ws: Tensor) -> Tensor:
        if not self.style_based:
            return super().synthesize(ws)
        with _eval_mode(self.sampler) as g:
            return g.synthesis(ws.to(self.device), noise_mode="const").float().cpu()

    def sample_fixed(self) -> Tensor:
        return self.decode(self.fixed_z, self.fixed_y if self.num_classes is not None else None)

    # -- optimizers ------------------------------------------------------------------------------
    @staticmethod
    def _lazy_ratio(phases: list[Phase]) -> float:
        lazy = [p.interval for p in phases if p.weight > 0 and p.interval > 1]
        return lazy[0] / (lazy[0] + 1) if lazy else 1.0

    def configure_optimizers(self):
        ratios = [self._lazy_ratio(self.g_phases), self._lazy_ratio(self.d_phases)]
        opts = [
            self.make_optimizer(self.optimizer_g, self.generator.parameters(), ratios[0]),
            self.make_optimizer(self.optimizer_d, self.discriminator.parameters(), ratios[1]),
        ]
        self._opt_bases = [
            self._schedule_base(o, ratio) for o, ratio in zip(opts, ratios, strict=True)
        ]
        if self.decay_start is None:
            return opts
        # Both rates decay linearly to ~0 over the last (1 - decay_start) of max_steps, stepped
        # once per generator step (Lightning keeps the schedulers' state in checkpoints).
        rule = linear_decay(self.max_steps, self.decay_start)
        return opts, [torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=rule) for o in opts]

    def _schedule_base(self, opt: torch.optim.Optimizer, ratio: float) -> tuple:
        """(lr as built, beta2 as configured or None, lazy ratio): what the ramps start from."""
        group = opt.param_groups[0]
        beta2 = float(group["betas"][1]) ** (1 / ratio) if "betas" in group else None
        return float(group["lr"]), beta2, ratio

    def _apply_schedules(self) -> None:
        """R3GAN's optimizer ramps at this generator step, set before every step: functions of
        g_step, so a resumed run continues them where it stopped."""
        if not self.schedule.optimizers:
            return
        factor = self.schedule.lr_factor(self.g_step)
        for opt, (lr, beta2, ratio) in zip(self.trainer.optimizers, self._opt_bases, strict=True):
            for group in opt.param_groups:
                group["lr"] = lr * factor
                if self.schedule.beta2_end is not None:
                    b2 = self.schedule.beta2(beta2, self.g_step) ** ratio
                    group["betas"] = (group["betas"][0], b2)

    # -- training --------------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        y = y if self.num_classes is not None else None  # fakes get the real batch's labels
        opt_g, opt_d = self.optimizers()
        n = x.shape[0]
        self._apply_schedules()

        # The generator step follows the n_critic-th critic step and reuses its fakes (as the
        # PyTorch DCGAN example does): one generator forward per iteration instead of two.
        g_now = (self.d_step + 1) % self.n_critic == 0
        snapshot = g_now and self.log_due()  # gradient norms and learning rates, once per log
        z = torch.randn(n, self.latent_dim, device=self.device)
        with torch.set_grad_enabled(g_now):
            fake = self._g(z, y)

        # Discriminator / critic step on this real batch.
        self.toggle_optimizer(opt_d)
        real_in, fake_in = self._augment(x, real=True), self._augment(fake.detach(), real=False)
        real_logits = self._d(real_in, y)
        fake_logits = self._d(fake_in, y)
        d_loss = self.loss.d(real_logits, fake_logits, **self.d_kwargs)
        logits = (real_logits, fake_logits)  # with their graph, for the eager phases
        d_loss = d_loss + self._eager(self.d_phases, self.d_step, real_in, fake_in, y, logits)
        stats = {"train/d_loss": d_loss.detach()}  # D's main objective, its eager terms included
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        if snapshot:
            stats.update(self.optimizer_stats(opt_d, "d"))
        opt_d.step()
        self._lazy(self.d_phases, self.d_step, opt_d, real_in, fake_in, y, None)
        self.untoggle_optimizer(opt_d)
        self._after_step("d")
        self.d_step += 1
        self.real_images_seen += n

        stats.update(discriminator_stats(self.loss, real_logits, fake_logits))
        stats.update(self._adapt(real_logits, n))
        self.accumulate(stats)
        if not g_now:
            return

        # Generator step against the freshly updated discriminator.
        self.toggle_optimizer(opt_g)
        g_loss = self.loss.g(
            self._real_logits_for_g(x, y), self._d(self._augment(fake, real=False), y)
        )
        g_total = g_loss + self._eager(self.g_phases, self.g_step, n, y)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_total)
        g_stats = self.optimizer_stats(opt_g, "g") if snapshot else {}
        opt_g.step()
        self._lazy(self.g_phases, self.g_step, opt_g, n, y)
        self.untoggle_optimizer(opt_g)
        self._after_step("g")
        g_stats.update({"train/g_loss": g_loss.detach(), **self._generator_stats()})
        if self.decay_start is not None:
            for sched in self.lr_schedulers():
                sched.step()
        self.generator_step_done(g_stats)

    def probe_networks(self) -> tuple[nn.Module, nn.Module, Any]:
        return self.generator, self.discriminator, self._augment

    def freeze_d(self, k: int) -> list[str]:
        from ganarena.tasks.loading import freeze_layers

        return freeze_layers(self.discriminator, k)

    def _generator_stats(self) -> dict[str, Tensor]:
        """The generator's own scalars, from its optional stats() (StyleGAN2: w_avg_norm)."""
        stats = getattr(self.generator, "stats", None)
        if not callable(stats):
            return {}
        return {f"train/{k}": torch.as_tensor(v) for k, v in stats().items()}

    def _eager(self, phases: list[Phase], step: int, *args: Any) -> Tensor | float:
        """The interval-1 phases' terms, added to the main loss."""
        total: Tensor | float = 0.0
        for p in phases:
            if p.interval == 1 and p.due(step):
                term, stats = p.term(*args)
                self.accumulate({**stats, **self._weight_stat(p)})
                total = total + p.weight_at(self.g_step) * term
        return total

    def _lazy(self, phases: list[Phase], step: int, opt, *args: Any) -> None:
        """The lazy phases due at this step: their own backward and optimizer step."""
        for p in phases:
            if p.interval > 1 and p.due(step):
                term, stats = p.term(*args)
                self.accumulate({**stats, **self._weight_stat(p)})
                opt.zero_grad(set_to_none=True)
                self.manual_backward(p.weight_at(self.g_step) * p.interval * term)
                opt.step()

    def _weight_stat(self, p: Phase) -> dict[str, Tensor]:
        """A scheduled phase's weight now, as train/<name>_weight (R1: train/r1_gamma)."""
        if p.schedule is None:
            return {}
        weight = p.weight_at(self.g_step)
        if p.name == "r1":
            return {"train/r1_gamma": torch.tensor(2 * weight, device=self.device)}
        return {f"train/{p.name}_weight": torch.tensor(weight, device=self.device)}

    def _adapt(self, real_logits: Tensor, n: int) -> dict[str, Tensor]:
        """augment=ada: feed the D step's real logits to the controller; its p and r_t to log."""
        from ganarena.gan.augment import AdaptiveAugment

        if not isinstance(self.augment, AdaptiveAugment):
            return {}
        self.augment.observe(real_logits.detach().float() - self.loss.decision, n)
        return self.augment.stats()

    def _penalty(self, name: str, *args: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """A regulariser's term (regularizer=[name]), logged as train/<name> (plus the stats it
        returns). D side: args (real, fake, labels, logits: D's (real, fake) outputs with their
        graph in an eager phase, None in a lazy one); G side: (n, labels)."""
        penalty = self.penalties[name]
        if penalty.network == "g":
            n, y = args
            batch: Any = GBatch(self.generator, n, y, self.latent_dim, self.device)
        else:
            real, fake, y, logits = args
            real_logits, fake_logits = logits if logits is not None else (None, None)
            batch = DBatch(
                partial(self._d, y=y), real.detach(), fake.detach(), y, real_logits, fake_logits
            )
        out = penalty(batch)
        value, extra = out if isinstance(out, tuple) else (out, {})
        return value, {f"train/{name}": value.detach(), **{k: v.detach() for k, v in extra.items()}}

    def _g(self, z: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(z) if y is None else self.generator(z, y)

    def _d(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def _augment(self, x: Tensor, real: bool) -> Tensor:
        """D's input: the augmentation (augment=), then the D-input transforms (d_input=) in order."""
        aug = self.augment
        if aug is not None and (real or getattr(aug, "applies_to", "both") == "both"):
            x = aug(x)
        for transform in self.d_input:
            x = transform(x, real=real)
        return x

    def _real_logits_for_g(self, x: Tensor, y: Tensor | None) -> Tensor | None:
        """D's logits on the real batch for a loss whose G side reads them (relativistic losses),
        against the discriminator as it is now; constants for G, so without a graph."""
        if not self.loss.g_uses_real:
            return None
        with torch.no_grad():
            return self._d(self._augment(x, real=True), y)


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode for the block, its previous mode restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
