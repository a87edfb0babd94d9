"""Regularisers that are not tied to one adversarial loss.

R1 (Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually Converge?",
arXiv:1801.04406, eq. 9): penalise D's gradient on real data only, gamma/2 * E[||grad_x D(x)||^2].
The training loop may apply it lazily (StyleGAN2, Karras et al. 2020, sec. 3.1): every
`r1_interval` D steps, with the term multiplied by `r1_interval` to keep its overall weight.

Path length (StyleGAN2, Karras et al. 2020, sec. 3.2): `PathLengthPenalty`, a module because it
keeps a running mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn


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
