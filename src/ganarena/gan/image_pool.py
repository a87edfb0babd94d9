"""CycleGAN's history of generated images (Shrivastava et al. 2017, used by Zhu et al. 2017 sec. 4):
the discriminators see a mix of current and earlier fakes, which damps oscillation.

Same semantics as the reference's `util/image_pool.py` (junyanz/pytorch-CycleGAN-and-pix2pix),
image by image: while the pool holds fewer than `size` images, the new image is stored and
returned; once full, with probability 1/2 a uniformly chosen stored image is returned and
replaced by the new one, otherwise the new image is returned. The reference draws from Python's
global `random`; here the draws come from the pool's own `torch.Generator`, so the global RNG
stream is untouched and `state_dict()` / `load_state_dict()` resume the pool exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganarena.errors import CheckpointError, ConfigError


class ImagePool:
    """A buffer of up to `size` earlier fakes; `query(images)` returns a batch for D (detached).

    size=0 passes every batch through (detached). Stored images keep the device and dtype of
    the batches queried; `state_dict()` holds them on the CPU. Seed it per process (e.g. with the
    run seed, plus the rank under DDP) so that ranks do not draw alike.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        for key, value in (("size", size), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"ImagePool `{key}` must be an integer >= 0, got {value!r} (the reference "
                    "uses a pool of 50 images; 0 turns the pool off)."
                )
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self.images: Tensor | None = None  # (size, C, H, W) once the first batch arrives
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Images for D: (N, C, H, W) in, the same shape out, detached from the graph."""
        images = images.detach()
        if self.size == 0:
            return images
        if images.ndim < 1:
            raise ValueError("ImagePool.query expects a batch of images (N, ...).")
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"ImagePool holds images of shape {tuple(self.images.shape[1:])}, got a batch of "
                f"{tuple(images.shape[1:])}: use one pool per image shape."
            )
        if self.images.device != images.device or self.images.dtype != images.dtype:
            self.images = self.images.to(images.device, images.dtype)
        out = images.clone()
        for i in range(images.shape[0]):
            if self.count < self.size:
                self.images[self.count] = images[i]
                self.count += 1
            elif float(torch.rand((), generator=self.generator)) > 0.5:
                j = int(torch.randint(self.size, (), generator=self.generator))
                out[i] = self.images[j]
                self.images[j] = images[i]
        return out

    def state_dict(self) -> dict[str, Tensor]:
        """Stored images (on the CPU) and generator state: tensors only, for torch.load(weights_only=True)."""
        stored = self.images[: self.count] if self.images is not None else torch.empty(0)
        return {
            "size": torch.tensor(self.size),
            "images": stored.detach().cpu().clone(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what `state_dict()` saved; the pool then continues exactly as the saved one."""
        try:
            size, stored, rng = int(state["size"]), state["images"], state["generator"]
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"Not an ImagePool state (expected keys size, images, generator): {err!r}. "
                "Resume from a checkpoint written by the same training task."
            ) from None
        if size != self.size:
            raise CheckpointError(
                f"The checkpoint's image pool holds up to {size} images, this run's {self.size}. "
                f"Resume with the pool size it was trained with (pool size {size})."
            )
        self.generator.set_state(rng)
        self.count = len(stored) if stored.ndim > 1 else 0
        self.images = None
        if self.count:
            self.images = stored.new_empty((self.size, *stored.shape[1:]))
            self.images[: self.count] = stored
