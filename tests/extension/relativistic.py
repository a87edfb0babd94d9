"""A loss that lives outside the package: the worked example of a plug-in loss.

RaGAN, the relativistic average GAN (Jolicoeur-Martineau 2018, "The relativistic discriminator:
a key element missing from standard GAN", arXiv:1807.00734, eq. 11-12 with the BCE f): D judges
how much more real a real image looks than the average fake, and G the reverse, so G's loss reads
D's logits on real images too (which the classic losses never do: `g_uses_real = True`).

    D: -E_r[log sig(C(x_r) - E_f C(x_f))] - E_f[log(1 - sig(C(x_f) - E_r C(x_r)))]
    G: -E_f[log sig(C(x_f) - E_r C(x_r))] - E_r[log(1 - sig(C(x_r) - E_f C(x_f)))]

With -log sig(t) = softplus(-t) and -log(1 - sig(t)) = softplus(t). Selected from the command
line by `hydra.searchpath=[file://tests/extension/conf] loss=ragan` with this folder on PYTHONPATH
(tests/test_extension_plugins.py).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ganarena.losses import Loss


class RaGAN(Loss):
    prob = True  # sigmoid of D's raw logits is still logged as d_real_prob / d_fake_prob
    g_uses_real = True

    def d(self, real: Tensor, fake: Tensor, **kwargs) -> Tensor:
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()
