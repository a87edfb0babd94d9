"""A discriminator-input transform that lives outside the package: instance noise.

Sonderby, Caballero, Theis, Shi & Huszar 2016 ("Amortised MAP Inference for Image
Super-resolution", arXiv:1610.04490, sec. 3.2) and Arjovsky & Bottou 2017 ("Towards Principled
Methods for Training Generative Adversarial Networks", arXiv:1701.04862, sec. 3.1): Gaussian
noise added to D's real *and* fake inputs makes the two distributions overlap, so D's gradient
stays informative; its standard deviation is annealed to zero as training goes on (linearly here,
as Sonderby et al. do). ganarena has no such transform built in (ganarena.gan.packing is PacGAN's
packing, ganarena.gan.augment the augmentations): this file and conf/d_input/instance_noise.yaml
add it through the config search path alone.

The transform counts the real batches it sees (one per D step; a loss whose G side reads D's
real logits sees one more per G step), so `steps` is counted in D's real batches. Its count is
not saved in checkpoints: a resumed run starts the schedule again.
"""

from __future__ import annotations

import torch
from torch import Tensor


class InstanceNoise:
    keeps_batch = True  # one D input per image: works with a class-conditional D too

    def __init__(self, sigma: float = 0.1, steps: int = 1000) -> None:
        if not sigma >= 0 or int(steps) < 1:
            raise ValueError(f"need sigma >= 0 and steps >= 1, got {sigma!r} and {steps!r}")
        self.sigma0, self.steps, self.seen = float(sigma), int(steps), 0

    @property
    def sigma(self) -> float:
        """The standard deviation now: sigma0 x (1 - seen / steps), 0 once `steps` are seen."""
        return self.sigma0 * max(0.0, 1.0 - self.seen / self.steps)

    def __call__(self, x: Tensor, real: bool) -> Tensor:
        sigma = self.sigma
        if real:
            self.seen += 1
        return x if sigma == 0 else x + sigma * torch.randn_like(x)
