"""A second training recipe that lives outside the package: the worked example of a task.

Two generators share the work (each draws the fakes whose latent has its sign in the first
coordinate), one discriminator judges them with the non-saturating loss. It touches nothing of
ganarena but the Task protocol (ganarena/tasks/base.py); tests/test_extension.py trains it,
resumes it, evaluates it and generates from it through the ordinary commands.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from ganarena.gan.losses import LOSSES
from ganarena.tasks import GenerativeTask


class TwoGeneratorTask(GenerativeTask):
    def __init__(self, image_size: int, channels: int, latent_dim: int = 16, hidden: int = 64,
                 lr: float = 2e-4, n_fixed: int = 16, grid_nrow: int = 4,
                 name: str = "two_generators", **base) -> None:  # fmt: skip
        super().__init__(**base)  # max_steps, log_every_n_steps, seed, fused_optimizers
        self.name, self.latent_dim, self.lr, self.grid_nrow = name, latent_dim, lr, grid_nrow
        self.shape = (channels, image_size, image_size)
        size = channels * image_size * image_size
        self.generators = nn.ModuleList(
            nn.Sequential(
                nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, size), nn.Tanh()
            )
            for _ in range(2)
        )
        self.discriminator = nn.Sequential(
            nn.Flatten(), nn.Linear(size, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )
        z = torch.randn(n_fixed, latent_dim, generator=torch.Generator().manual_seed(self.seed))
        self.register_buffer("fixed_z", z)
        self.loss = LOSSES[
            "nonsaturating"
        ]  # a ganarena.gan.losses.Loss: d(real, fake), g(real, fake)

    def generate(self, z: Tensor) -> Tensor:
        second = (z[:, :1] > 0).float()
        out = (1 - second) * self.generators[0](z) + second * self.generators[1](z)
        return out.view(-1, *self.shape)

    def configure_optimizers(self):
        adam = partial(torch.optim.Adam, lr=self.lr, betas=(0.5, 0.999))
        return [
            self.make_optimizer(adam, self.generators.parameters()),
            self.make_optimizer(adam, self.discriminator.parameters()),
        ]

    def training_step(self, batch, batch_idx: int) -> None:
        x, _ = batch
        opt_g, opt_d = self.optimizers()
        fake = self.generate(torch.randn(len(x), self.latent_dim, device=self.device))
        self.toggle_optimizer(opt_d)
        d_loss = self.loss.d(self.discriminator(x), self.discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.d_step += 1
        self.real_images_seen += len(x)
        self.accumulate({"train/d_loss": d_loss})
        self.toggle_optimizer(opt_g)
        g_loss = self.loss.g(None, self.discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.generator_step_done({"train/g_loss": g_loss})

    # -- the protocol --------------------------------------------------------------------------
    def sampling_modules(self) -> list[nn.Module]:
        return [self.generators]

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generate(z.to(self.device)).float().cpu()

    def sample_fixed(self) -> Tensor:
        return self.decode(self.fixed_z)

    def summary(self) -> dict:
        return {"generators": 2}
