"""Adversarial losses as pure functions of discriminator logits.

Every discriminator returns raw logits (B,); each loss decides what to do with them.
`d_*(real, fake)` is the discriminator/critic loss, `g_*(fake)` the generator loss; `Loss`
subclasses pair them (and are what a loss yaml's `objective._target_` names). The relativistic
losses (`RpGAN`, `RaGAN`) read real *and* fake logits on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def d_bce(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logits) (Goodfellow et al. 2014).

    `real_label` < 1 is one-sided label smoothing (Salimans et al. 2016).
    """
    real_term = F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_label))
    return real_term + F.softplus(fake).mean()


def g_minimax(fake: Tensor) -> Tensor:
    """Saturating generator loss E[log(1 - D(G(z)))]; log(1 - sigmoid(l)) = -softplus(l)."""
    return -F.softplus(fake).mean()


def g_nonsaturating(fake: Tensor) -> Tensor:
    """Non-saturating generator loss -E[log D(G(z))] (Goodfellow et al. 2014, sec. 3)."""
    return F.softplus(-fake).mean()


def d_lsgan(real: Tensor, fake: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Least-squares D loss 1/2 E[(D(x)-b)^2] + 1/2 E[(D(G(z))-a)^2] (Mao et al. 2017)."""
    return 0.5 * ((real - b) ** 2).mean() + 0.5 * ((fake - a) ** 2).mean()


def g_lsgan(fake: Tensor, c: float = 1.0) -> Tensor:
    """Least-squares G loss 1/2 E[(D(G(z))-c)^2] (Mao et al. 2017, a=0, b=1, c=1)."""
    return 0.5 * ((fake - c) ** 2).mean()


def d_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss E[D(G(z))] - E[D(x)] (Arjovsky et al. 2017); its negative estimates W1."""
    return fake.mean() - real.mean()


def g_wasserstein(fake: Tensor) -> Tensor:
    """Generator loss -E[D(G(z))] (Arjovsky et al. 2017)."""
    return -fake.mean()


def d_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge D loss E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def d_rpgan(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic pairing D loss E[softplus(-(D(x_i) - D(G(z_i))))] (Jolicoeur-Martineau 2018,
    RSGAN; R3GAN's RpGAN, Huang et al. 2024): real i against fake i of the same batch."""
    return F.softplus(-(real - fake)).mean()


def g_rpgan(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic pairing G loss E[softplus(-(D(G(z_i)) - D(x_i)))] (the D loss, roles swapped)."""
    return F.softplus(-(fake - real)).mean()


def d_ragan(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic average D loss (Jolicoeur-Martineau 2018, eq. 11 with the BCE f):
    -E_r[log sig(C(x_r) - E_f C(x_f))] - E_f[log(1 - sig(C(x_f) - E_r C(x_r)))]."""
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def g_ragan(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic average G loss (eq. 12): the D loss with real and fake swapped."""
    return d_ragan(fake, real)


class Loss:
    """An adversarial loss: the D (critic) side and the G side, each seeing real *and* fake logits.

    The plug-in point for losses: a subclass, chosen in a loss yaml by `objective._target_` (any
    importable class, also outside the package). `d(real, fake)` is D's loss; `g(real, fake)` is
    G's, where `real` is D's logits on a real batch (computed without gradient, and only when
    `g_uses_real` is true: relativistic losses need it, the classic ones do not and get None).
    `prob`: D's logits read as probabilities (logged as d_real_prob/d_fake_prob); `w1`: the
    critic's E[D(x)] - E[D(G(z))] estimates the Wasserstein-1 distance up to scale.
    `decision`: the logit that separates "real" from "fake" for this loss (0 for the logistic and
    hinge losses, 0.5 for LSGAN's 0-1 coding), or None where D is defined only up to a constant
    (WGAN, the relativistic losses): augment=ada reads sign(D(x) - decision) and refuses None.
    """

    prob: bool = False
    w1: bool = False
    g_uses_real: bool = False
    decision: float | None = None

    def d(self, real: Tensor, fake: Tensor, **kwargs: Any) -> Tensor:
        raise NotImplementedError

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Pair(Loss):
    """A loss made of a D function d(real, fake) and a G function g(fake) of the fake logits."""

    d_fn: Callable[..., Tensor]
    g_fn: Callable[[Tensor], Tensor]

    def d(self, real: Tensor, fake: Tensor, **kwargs: Any) -> Tensor:
        return type(self).d_fn(real, fake, **kwargs)

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return type(self).g_fn(fake)


class Minimax(_Pair):
    """Goodfellow et al. 2014, eq. 1 (saturating G)."""

    prob, decision, d_fn, g_fn = True, 0.0, staticmethod(d_bce), staticmethod(g_minimax)


class NonSaturating(_Pair):
    """Goodfellow et al. 2014, sec. 3 (non-saturating G)."""

    prob, decision, d_fn, g_fn = True, 0.0, staticmethod(d_bce), staticmethod(g_nonsaturating)


class LeastSquares(_Pair):
    """Mao et al. 2017 (0-1 coding: D's targets 0 for fakes, 1 for reals, so 0.5 decides)."""

    decision, d_fn, g_fn = 0.5, staticmethod(d_lsgan), staticmethod(g_lsgan)


class Wasserstein(_Pair):
    """Arjovsky et al. 2017 (with clipping or, WGAN-GP, a gradient penalty beside it)."""

    w1, d_fn, g_fn = True, staticmethod(d_wasserstein), staticmethod(g_wasserstein)


class Hinge(_Pair):
    """Miyato et al. 2018 / Lim & Ye 2017."""

    decision, d_fn, g_fn = 0.0, staticmethod(d_hinge), staticmethod(g_wasserstein)


class _Relativistic(Loss):
    """A loss whose D and G sides are functions of (real, fake) logits alike. D is defined up to
    an additive constant (only differences of logits enter), so the raw scores are logged as
    critic_real / critic_fake, not as probabilities, and there is no decision logit."""

    g_uses_real = True
    d_fn: Callable[[Tensor, Tensor], Tensor]
    g_fn: Callable[[Tensor, Tensor], Tensor]

    def d(self, real: Tensor, fake: Tensor, **kwargs: Any) -> Tensor:
        return type(self).d_fn(real, fake)

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        if real is None:
            raise ValueError(f"{type(self).__name__}.g needs D's logits on the real batch.")
        return type(self).g_fn(real, fake)


class RpGAN(_Relativistic):
    """Relativistic pairing GAN (Jolicoeur-Martineau 2018, RSGAN; the loss of R3GAN, Huang et al.
    2024, brownvc/R3GAN Trainer.py): softplus of the paired logit differences. Real and fake
    batches must have the same size (the GAN task draws one fake per real image)."""

    d_fn, g_fn = staticmethod(d_rpgan), staticmethod(g_rpgan)


class RaGAN(_Relativistic):
    """Relativistic average GAN (Jolicoeur-Martineau 2018, eq. 11-12; ESRGAN's adversarial loss):
    each logit against the other side's batch mean."""

    d_fn, g_fn = staticmethod(d_ragan), staticmethod(g_ragan)


LOSSES: dict[str, Loss] = {
    "minimax": Minimax(),
    "nonsaturating": NonSaturating(),
    "lsgan": LeastSquares(),
    "wgan": Wasserstein(),
    "wgan_gp": Wasserstein(),
    "hinge": Hinge(),
    "rpgan": RpGAN(),
    "ragan": RaGAN(),
}
"""The built-in losses by the name of their yaml (conf/loss/<name>.yaml)."""
