"""Adversarial losses as pure functions of discriminator logits, plus the gradient penalty.

Every discriminator returns raw logits (B,); each loss decides what to do with them.
`d_*(real, fake)` is the discriminator/critic loss, `g_*(fake)` the generator loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Loss:
    """A named pair of D and G losses; `prob` says whether D's logits read as probabilities,
    `w1` whether E[D(x)] - E[D(G(z))] of its (Lipschitz-constrained) critic estimates the
    Wasserstein-1 distance up to scale."""

    d: Callable[..., Tensor]
    g: Callable[[Tensor], Tensor]
    prob: bool
    w1: bool = False


LOSSES: dict[str, Loss] = {
    "minimax": Loss(d_bce, g_minimax, prob=True),
    "nonsaturating": Loss(d_bce, g_nonsaturating, prob=True),
    "lsgan": Loss(d_lsgan, g_lsgan, prob=False),
    "wgan": Loss(d_wasserstein, g_wasserstein, prob=False, w1=True),
    "wgan_gp": Loss(d_wasserstein, g_wasserstein, prob=False, w1=True),
    "hinge": Loss(d_hinge, g_wasserstein, prob=False),
}
