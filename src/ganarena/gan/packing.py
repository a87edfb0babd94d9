"""PacGAN packing (Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative
adversarial networks", arXiv:1712.04086): the discriminator judges m samples at once.

`d_input=[pack2]` (conf/d_input/pack<m>.yaml) makes two pieces work together:

- `Pack(m)`, a D-input transform (ganarena.gan.augment.build_d_input): a batch of B images with C
  channels becomes B // m packs of m * C channels (consecutive samples, all real or all fake,
  stacked along the channel axis as PacGAN's code concatenates them), one D logit per pack;
- `packed_discriminator`, which builds the model's discriminator for m times the dataset's
  channels, so any model whose discriminator takes a `channels` argument packs unchanged.

m = 1 is the identity and builds the very same discriminator: today's numbers exactly. A pack is
not one (image, label) pair, so packing is refused with a class-conditional D (`keeps_batch`).
PacGAN's minibatch counts *packs* (100 in its 2-D experiments, 64 on Stacked MNIST): to compare
as the paper does, give the packed run m times the batch (dataset.batch_size), as
scripts/reproduce_mode_collapse.py does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ganarena.errors import ConfigError

__all__ = ["Pack", "packed_discriminator"]


def _check_m(m: Any) -> int:
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ConfigError(
            f"The PacGAN pack size m must be an integer >= 1 (samples D judges at once), got "
            f"{m!r}. Use d_input=[pack2] (or pack3, pack4), or set d_input.<name>.m=2."
        )
    return m


class Pack:
    """D's input as packs of `m` consecutive samples stacked along channels: (B, C, H, W) ->
    (B // m, m * C, H, W). A last partial pack is dropped; m = 1 returns the input itself."""

    keeps_batch = False  # one logit per m images: no longer one per (image, label) pair

    def __init__(self, m: int = 2) -> None:
        self.m = _check_m(m)

    def __call__(self, x: Tensor, real: bool) -> Tensor:
        if self.m == 1:
            return x
        packs = x.shape[0] // self.m
        if packs == 0:
            raise ConfigError(
                f"PacGAN packing of m={self.m} samples got a batch of {x.shape[0]}, too few for "
                f"one pack. Raise dataset.batch_size to a multiple of {self.m}."
            )
        return x[: packs * self.m].reshape(packs, self.m * x.shape[1], *x.shape[2:])

    def __repr__(self) -> str:
        return f"Pack(m={self.m})"


def packed_discriminator(discriminator: Mapping[str, Any], m: int) -> nn.Module:
    """The model's discriminator (its config node, `_target_` and arguments) built for packs of
    `m`: its `channels` argument multiplied by m. Named by conf/d_input/pack<m>.yaml as
    task.discriminator (with `_recursive_: false`, so the node arrives unbuilt)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    m = _check_m(m)
    node = OmegaConf.to_container(discriminator, resolve=True) if OmegaConf.is_config(
        discriminator
    ) else dict(discriminator)  # fmt: skip
    channels = node.get("channels")
    if isinstance(channels, bool) or not isinstance(channels, int):
        raise ConfigError(
            f"PacGAN packing builds the discriminator for m x the data's channels, but this "
            f"model's discriminator ({node.get('_target_')}) has no integer `channels` argument "
            f"(got {channels!r}). Use a model whose discriminator takes `channels` (mlp, dcgan, "
            "stylegan2, pacgan_*), or drop d_input=[pack...]."
        )
    node["channels"] = channels * m
    return instantiate(node)
