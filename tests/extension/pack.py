"""A discriminator-input transform that lives outside the package: PacGAN's packing.

PacGAN (Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative adversarial
networks", arXiv:1712.04086, sec. 3): D judges m samples at once, stacked along the channel axis,
all real or all fake, which penalises a generator that puts its mass on few modes. A batch of B
images (C channels) becomes B // m inputs of m * C channels, so D is built for m * C channels
(conf/d_input/pack2.yaml sets that) and gives one logit per pack (`keeps_batch = False`).
"""

from __future__ import annotations

from torch import Tensor


class Pack:
    keeps_batch = False  # one logit per m images: no longer one per (image, label) pair

    def __init__(self, m: int = 2) -> None:
        if int(m) < 1:
            raise ValueError(f"pack size m must be >= 1, got {m}")
        self.m = int(m)

    def __call__(self, x: Tensor, real: bool) -> Tensor:
        b = x.shape[0] // self.m * self.m  # a last partial pack is dropped
        return x[:b].reshape(b // self.m, self.m * x.shape[1], *x.shape[2:])
