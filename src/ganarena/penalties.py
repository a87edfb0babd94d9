"""Discriminator regularisers that are not tied to one adversarial loss.

R1 (Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually Converge?",
arXiv:1801.04406, eq. 9): penalise D's gradient on real data only, gamma/2 * E[||grad_x D(x)||^2].
The training loop may apply it lazily (StyleGAN2, Karras et al. 2020, sec. 3.1): every
`r1_interval` D steps, with the term multiplied by `r1_interval` to keep its overall weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


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
