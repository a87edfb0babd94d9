"""Regularisers: one concept, one group (`regularizer=[name, ...]`, conf/regularizer/<name>.yaml).

Every regulariser is a `Penalty` subclass declaring the network it acts on, its interval, whether
it is a per-sample gradient penalty and whether it needs a double backward; the config checks
(run/config.py, via gan/regularizers.py) read those declarations, never names. Built in:
- `GradientPenalty` (regularizer.gp; Gulrajani et al. 2017): loss=wgan_gp brings it, weight 10;
- `WeightClip` (regularizer.clip; Arjovsky et al. 2017): not a term but a constraint after each
  D step; loss=wgan brings it, value 0.01;
- `R1` / `R2` (Mescheder et al. 2018, eqs. 9/10): gamma/2 E||grad_x D(x)||^2 on real / generated
  data; lazily every `interval` D steps (StyleGAN2, Karras et al. 2020, sec. 3.1: term x interval);
- `LeCam` (Tseng et al. 2021);
- `PathLength` (StyleGAN2 sec. 3.2), on the generator: `network = "g"`, sees a `GBatch`.
A penalty's weight may follow a cosine schedule to `weight_end` (R3GAN's gamma decay,
ganarena.gan.schedules), over the GAN task's `task.schedule.steps`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat (Gulrajani et al. 2017)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = discriminator(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, c: float) -> None:
    """Clamp every parameter to [-c, c] (WGAN weight clipping, Arjovsky et al. 2017)."""
    for p in module.parameters():
        p.clamp_(-c, c)


def r1_penalty(
    discriminator: Callable[..., Tensor], real: Tensor, labels: Tensor | None = None
) -> Tensor:
    """E_x[||grad_x D(x)||_2^2] over the real batch (the R1 term without its gamma/2 weight).

    `discriminator` is called as D(x) or, with `labels`, as D(x, labels); the graph is kept
    (create_graph) so the penalty can be backpropagated into D's parameters.
    """
    x = real.detach().requires_grad_(True)
    out = discriminator(x) if labels is None else discriminator(x, labels)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(dim=1).mean()


class PathLengthPenalty(nn.Module):
    """StyleGAN2's path length regulariser (Karras et al. 2020, arXiv:1912.04958, sec. 3.2, eq. 4).

    E_{w, y~N(0, I)} (||J_w^T y||_2 - a)^2, with J_w the Jacobian of the synthesis network at w,
    y random images scaled by 1/sqrt(H*W), and `a` (buffer `pl_mean`) the running mean of the
    lengths, `pl_mean <- pl_mean + decay * (mean length - pl_mean)`. As NVIDIA's loss.py (Gpl):
    the length is averaged over the num_ws copies of w, and the penalty uses the just-updated mean
    (its gradient flows through it too; only the stored buffer is detached).

    The caller applies what NVIDIA applies around it: the weight (pl_weight = 2), the lazy interval
    (every 4 G steps, multiplying the term by 4) and the batch shrink (half of the G batch,
    pl_batch_shrink = 2). Keep this module as a submodule of the training module so that `pl_mean`
    is saved in checkpoints. `generator` must offer `mapping(z, y)` -> ws (N, num_ws, w_dim) and
    `synthesis(ws)` -> images, as StyleGAN2Generator does; NVIDIA also style-mixes the ws here when
    style mixing is on, this module does not.
    """

    def __init__(self, decay: float = 0.01):
        super().__init__()
        self.decay = float(decay)
        self.register_buffer("pl_mean", torch.zeros([]))

    def forward(
        self, generator: nn.Module, z: Tensor, y: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Return (penalty, mean path length); the penalty carries the graph into G."""
        ws = generator.mapping(z, y)
        img = generator.synthesis(ws)
        pl_noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)
        # in the buffer's dtype (float32 unless converted), also under mixed precision
        lengths = grads.to(self.pl_mean.dtype).square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        self.pl_mean.copy_(pl_mean.detach())
        return (lengths - pl_mean).square().mean(), lengths.mean().detach()


# -- plug-in regularisers (regularizer=[name, ...], conf/regularizer/<name>.yaml) ---------------
@dataclass
class DBatch:
    """What a discriminator-side regulariser sees at a D step: `d(x)` (D with the batch's labels
    bound), D's real and fake inputs (after augment= and d_input=, detached) and the labels.

    `real_logits` / `fake_logits`: D's outputs on those inputs with their graph, when the term is
    added to D's main loss (interval 1), so a term of the logits needs no second forward; None in
    a lazy phase (after D's step): call `d` then. `logits(real=...)` gives either."""

    d: Callable[[Tensor], Tensor]
    real: Tensor
    fake: Tensor
    labels: Tensor | None
    real_logits: Tensor | None = None
    fake_logits: Tensor | None = None

    def logits(self, real: bool) -> Tensor:
        kept = self.real_logits if real else self.fake_logits
        return kept if kept is not None else self.d(self.real if real else self.fake)


class Penalty(nn.Module):
    """A regulariser from a config file: a term added to its network's loss, `weight` x
    `__call__(batch)`, every `interval` steps of that network (interval > 1: lazily, StyleGAN2's
    phases, with the term x interval and the optimizer corrected by interval / (interval + 1)).

    A subclass declares what the config checks need: `network` ("d": sees a `DBatch` at D steps;
    "g": a `GBatch` at G steps), `per_sample` (a per-sample gradient penalty: refused with batch
    norm in D), `double_backward` (refused with torch.compile), `d_norm` (what model.d_norm=auto
    picks with it on; None: no prescription), `why` (the paper's reason, for the batch-norm
    refusal) and `style_based` (it needs a generator with mapping/synthesis). `forward` returns
    the term, or (term, {stat: value}) to log more than train/<name>. A constraint that adds no
    term (`adds_term = False`, weight clipping) acts in `after_step(network)` instead. It is a
    module, so buffers it keeps (running means) are saved in checkpoints.

    `weight_end` (None: constant): the weight follows a cosine from `weight` to `weight_end` over
    the task's schedule horizon (ganarena.gan.schedules; R3GAN decays its gamma 10x this way).
    """

    network = "d"
    per_sample = True
    double_backward = True
    d_norm: str | None = None
    why = ""
    style_based = False
    adds_term = True

    def __init__(self, weight: float, interval: int = 1, weight_end: float | None = None) -> None:
        super().__init__()
        from ganarena.errors import ConfigError

        what = f"{type(self).__name__}"
        for key, value in (("weight", weight), ("weight_end", weight_end)):
            if value is None and key == "weight_end":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{what}: {key} must be a number >= 0, got {value!r}.")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"{what}: interval must be an integer >= 1, got {interval!r}.")
        if weight_end is not None and weight == 0:
            raise ConfigError(
                f"{what}: a schedule decays the weight from its start value, but that is 0 (the "
                "term is off): give the start value too, or drop the end value."
            )
        self.weight, self.interval = float(weight), interval
        self.weight_end = None if weight_end is None else float(weight_end)

    def forward(self, batch: Any) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def after_step(self, network: nn.Module) -> None:
        """Called after every optimizer step of its network (constraints such as clipping)."""


@dataclass
class GBatch:
    """What a generator-side regulariser sees at a G step: the generator, the batch size n of the
    step, the labels (None: unconditional), the latent size and the device."""

    generator: nn.Module
    n: int
    labels: Tensor | None
    latent_dim: int
    device: torch.device


class GradientPenalty(Penalty):
    """WGAN-GP's penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
    Algorithm 1): weight x E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates x_hat of D's real
    and fake inputs, at every D step (added to the critic's loss)."""

    d_norm = "layer"
    why = "(Gulrajani et al. 2017, sec. 4)"

    def forward(self, batch: DBatch) -> Tensor:
        return gradient_penalty(batch.d, batch.real, batch.fake)


class WeightClip(Penalty):
    """WGAN's weight clipping (Arjovsky et al. 2017, Algorithm 1): every D parameter clamped to
    [-value, value] after each D step. A constraint, not a term."""

    per_sample = False
    double_backward = False
    adds_term = False

    def __init__(self, value: float) -> None:
        from ganarena.errors import ConfigError
        from ganarena.run.defaults import example

        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(
                f"WeightClip: value must be a number > 0 (the bound c of [-c, c]), got {value!r}. "
                f"Fix it, e.g. regularizer.clip.value={example('regularizer.clip.value', 0.01)} "
                "(the WGAN paper's), or drop the clipping with ~regularizer.clip."
            )
        super().__init__(0.0)
        self.value = float(value)

    def after_step(self, network: nn.Module) -> None:
        clip_weights(network, self.value)


class _GammaPenalty(Penalty):
    """gamma/2 * E||grad_x D(x)||^2 (Mescheder et al. 2018) on one side of D's input: the weight
    is gamma/2, and so is the end of its schedule (gamma_end/2)."""

    d_norm = "none"
    why = "(Mescheder et al. 2018), which mixes the samples of a batch"
    default_interval = 1

    def __init__(
        self, gamma: float, interval: int | None = None, gamma_end: float | None = None
    ) -> None:
        interval = self.default_interval if interval is None else interval
        super().__init__(_half(gamma), interval, _half(gamma_end))  # (bad values: named there)
        self.gamma = float(gamma)


class R1(_GammaPenalty):
    """R1 (Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406, eq. 9) on the real data (D's real
    input). StyleGAN2 applies it lazily, every 16 D steps."""

    default_interval = 16

    def forward(self, batch: DBatch) -> Tensor:
        return r1_penalty(batch.d, batch.real)


class R2(_GammaPenalty):
    """R2 (eq. 10 of the same paper): on the *generated* samples, R1's counterpart; R3GAN (Huang
    et al. 2024) trains RpGAN with R1 + R2 at the same gamma."""

    def forward(self, batch: DBatch) -> Tensor:
        return r1_penalty(batch.d, batch.fake)


class PathLength(Penalty):
    """StyleGAN2's path-length regularisation of G (Karras et al. 2020, sec. 3.2): weight x
    PathLengthPenalty on batch/batch_shrink fresh latents, every `interval` G steps (lazily),
    against a running mean of the lengths with rate `decay`. Needs a style-based generator."""

    network = "g"
    per_sample = False
    style_based = True

    def __init__(
        self, weight: float, interval: int = 4, decay: float = 0.01, batch_shrink: int = 2
    ) -> None:
        from ganarena.errors import ConfigError
        from ganarena.run.defaults import example

        super().__init__(weight, interval)
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay <= 1:
            raise ConfigError(
                f"PathLength: decay must be a number in [0, 1] (the running mean's rate), got "
                f"{decay!r}. Fix it, e.g. regularizer.path_length.decay="
                f"{example('regularizer.path_length.decay', 0.01)} (StyleGAN2's)."
            )
        if isinstance(batch_shrink, bool) or not isinstance(batch_shrink, int) or batch_shrink < 1:
            raise ConfigError(
                f"PathLength: batch_shrink must be an integer >= 1, got {batch_shrink!r}. Fix "
                f"it, e.g. regularizer.path_length.batch_shrink="
                f"{example('regularizer.path_length.batch_shrink', 2)} (StyleGAN2's)."
            )
        self.batch_shrink = batch_shrink
        self.length = PathLengthPenalty(decay=float(decay))

    def forward(self, batch: GBatch) -> tuple[Tensor, dict[str, Tensor]]:
        m = max(batch.n // self.batch_shrink, 1)
        z = torch.randn(m, batch.latent_dim, device=batch.device)
        y = None if batch.labels is None else batch.labels[:m]
        penalty, mean_length = self.length(batch.generator, z, y)
        return penalty, {"train/pl_length": mean_length}


def _half(gamma: Any) -> Any:
    """gamma/2 (the weight of gamma/2 E||grad||^2) for a number; anything else as given."""
    ok = isinstance(gamma, int | float) and not isinstance(gamma, bool)
    return gamma / 2 if ok else gamma


class LeCam(Penalty):
    """LeCam regularisation (Tseng, Jiang, Liu, Yang & Yang 2021, "Regularizing Generative
    Adversarial Networks under Limited Data", arXiv:2104.03310, eq. 3):
    E[(D(x) - a_F)^2] + E[(D(G(z)) - a_R)^2], with a_R and a_F exponential moving averages of D's
    mean output on real and on generated images (buffers, so kept in checkpoints), updated with
    this batch before the term is taken, as the authors' code does (google/lecam-gan). It keeps
    D's real and fake outputs from drifting apart, which limits D's overfitting to few images.

    `one_sided`: the authors' code clamps each difference (relu(D(x) - a_F)^2 + relu(a_R -
    D(G(z)))^2, only the part pushing the outputs apart is penalised); the paper writes the plain
    squares, our default. Not a gradient penalty: batch norm in D is allowed, so is compile.
    """

    per_sample = False
    double_backward = False

    def __init__(
        self,
        weight: float,
        interval: int = 1,
        decay: float = 0.99,
        one_sided: bool = False,
        weight_end: float | None = None,
    ) -> None:
        super().__init__(weight, interval, weight_end)
        from ganarena.errors import ConfigError

        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay < 1:
            raise ConfigError(f"LeCam: decay must be a number in [0, 1), got {decay!r}.")
        if not isinstance(one_sided, bool):
            raise ConfigError(f"LeCam: one_sided must be true or false, got {one_sided!r}.")
        self.decay, self.one_sided = float(decay), one_sided
        self.register_buffer("alpha_real", torch.zeros([]))
        self.register_buffer("alpha_fake", torch.zeros([]))

    def forward(self, batch: DBatch) -> Tensor:
        real, fake = batch.logits(real=True), batch.logits(real=False)
        with torch.no_grad():
            self.alpha_real.lerp_(real.detach().float().mean(), 1 - self.decay)
            self.alpha_fake.lerp_(fake.detach().float().mean(), 1 - self.decay)
        apart_real = real.float() - self.alpha_fake
        apart_fake = self.alpha_real - fake.float()
        if self.one_sided:
            apart_real, apart_fake = apart_real.relu(), apart_fake.relu()
        return apart_real.pow(2).mean() + apart_fake.pow(2).mean()


def build_penalties(entries) -> dict[str, Penalty]:
    """regularizer=[...]'s entries as built by Hydra (name -> Penalty), in config order; an entry
    set to null is off."""
    from ganarena.errors import ConfigError

    out = {}
    for name, penalty in (entries or {}).items():
        if penalty is None:
            continue
        if not isinstance(penalty, Penalty):
            raise ConfigError(
                f"regularizer.{name} built a {type(penalty).__name__}, not a "
                "ganarena.gan.penalties.Penalty: point its _target_ at a Penalty subclass."
            )
        out[str(name)] = penalty
    return out
