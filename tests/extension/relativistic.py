"""A loss that lives outside the package: the worked example of a plug-in loss.

RaLSGAN, the relativistic average least-squares GAN (Jolicoeur-Martineau 2018, "The relativistic
discriminator: a key element missing from standard GAN", arXiv:1807.00734, sec. 4.3 and the
RaLSGAN loss of the author's code, AlexiaJM/RelativisticGAN): D pushes each real logit one unit
above the average fake's and each fake one unit below the average real's, and G the reverse, so
G's loss reads D's logits on real images too (`g_uses_real = True`). ganarena ships RaGAN and
RpGAN (the BCE forms); this least-squares form it does not.

    D: 1/2 E_r[(C(x_r) - E_f C(x_f) - 1)^2] + 1/2 E_f[(C(x_f) - E_r C(x_r) + 1)^2]
    G: 1/2 E_f[(C(x_f) - E_r C(x_r) - 1)^2] + 1/2 E_r[(C(x_r) - E_f C(x_f) + 1)^2]

(the halves as in the author's code). Selected from the command line by
`hydra.searchpath=[file://tests/extension/conf] loss=ralsgan` with this folder on PYTHONPATH
(tests/test_extension_plugins.py).
"""

from __future__ import annotations

from torch import Tensor

from ganarena.gan.losses import Loss


def _ra_ls(up: Tensor, down: Tensor) -> Tensor:
    """`up` one unit above `down`'s mean, `down` one unit below `up`'s, in least squares."""
    return 0.5 * ((up - down.mean() - 1) ** 2).mean() + 0.5 * ((down - up.mean() + 1) ** 2).mean()


class RaLSGAN(Loss):
    g_uses_real = True  # the G step hands g() D's logits on the real batch

    def d(self, real: Tensor, fake: Tensor, **kwargs) -> Tensor:
        return _ra_ls(real, fake)

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return _ra_ls(fake, real)
