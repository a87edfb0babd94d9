"""Adversarial losses as pure functions of discriminator logits, plus the gradient penalty.

Every discriminator returns raw logits (B,); each loss decides what to do with them.
`d_*(real, fake)` is the discriminator/critic loss, `g_*(fake)` the generator loss; `Loss`
subclasses pair them (and are what a loss yaml's `objective._target_` names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


class Loss:
    """An adversarial loss: the D (critic) side and the G side, each seeing real *and* fake logits.

    The plug-in point for losses: a subclass, chosen in a loss yaml by `objective._target_` (any
    importable class, also outside the package). `d(real, fake)` is D's loss; `g(real, fake)` is
    G's, where `real` is D's logits on a real batch (computed without gradient, and only when
    `g_uses_real` is true: relativistic losses need it, the classic ones do not and get None).
    `prob`: D's logits read as probabilities (logged as d_real_prob/d_fake_prob); `w1`: the
    critic's E[D(x)] - E[D(G(z))] estimates the Wasserstein-1 distance up to scale.
    """

    prob: bool = False
    w1: bool = False
    g_uses_real: bool = False

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

    prob, d_fn, g_fn = True, staticmethod(d_bce), staticmethod(g_minimax)


class NonSaturating(_Pair):
    """Goodfellow et al. 2014, sec. 3 (non-saturating G)."""

    prob, d_fn, g_fn = True, staticmethod(d_bce), staticmethod(g_nonsaturating)


class LeastSquares(_Pair):
    """Mao et al. 2017 (0-1 coding)."""

    d_fn, g_fn = staticmethod(d_lsgan), staticmethod(g_lsgan)


class Wasserstein(_Pair):
    """Arjovsky et al. 2017 (with clipping or, WGAN-GP, a gradient penalty beside it)."""

    w1, d_fn, g_fn = True, staticmethod(d_wasserstein), staticmethod(g_wasserstein)


class Hinge(_Pair):
    """Miyato et al. 2018 / Lim & Ye 2017."""

    d_fn, g_fn = staticmethod(d_hinge), staticmethod(g_wasserstein)


LOSSES: dict[str, Loss] = {
    "minimax": Minimax(),
    "nonsaturating": NonSaturating(),
    "lsgan": LeastSquares(),
    "wgan": Wasserstein(),
    "wgan_gp": Wasserstein(),
    "hinge": Hinge(),
}
"""The built-in losses by the name of their yaml (conf/loss/<name>.yaml)."""
