"""Latents and images for ganarena-generate (and anyone scripting it): interpolation paths,
the seeded sample stream, style-mixing figures, grids and PNGs. Imports torch; the command's checks
in ganarena.generate run before this module is loaded, so a bad option answers without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import save_image

from ganarena.errors import ConfigError
from ganarena.run.files import atomic_write, to_uint8


# -- latents -----------------------------------------------------------------------------------
def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents) at fractions `t`.

    z0, z1: (D,); t: (T,) in [0, 1]. Returns (T, D): sin((1-t)w)/sin(w) z0 + sin(tw)/sin(w) z1,
    w being the angle between z0 and z1; falls back to linear interpolation when they are
    (anti)parallel. The norm moves smoothly between |z0| and |z1| instead of dipping towards the
    origin as a straight line does, which keeps latents where N(0, I) puts its mass.
    """
    z0, z1 = z0.reshape(-1).double(), z1.reshape(-1).double()
    t = t.reshape(-1, 1).double()
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    if sin.abs() < 1e-6:
        out = (1 - t) * z0 + t * z1
    else:
        out = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin
    return out.float()


def interpolate_latents(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """`steps` latents (steps, D) on the slerp path from z0 to z1, both endpoints included exactly."""
    if steps < 2:
        raise ConfigError(f"steps must be at least 2 (the two endpoints), got {steps}.")
    out = slerp(z0, z1, torch.linspace(0.0, 1.0, steps, dtype=torch.float64))
    out[0], out[-1] = z0.reshape(-1), z1.reshape(-1)
    return out


def latent_endpoints(latent_dim: int, seed: int) -> tuple[Tensor, Tensor]:
    """The two interpolation endpoints: z0, z1 ~ N(0, I), drawn in that order from `seed`."""
    return _endpoints(latent_dim, torch.Generator().manual_seed(seed))


def _endpoints(latent_dim: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    z0 = torch.randn(latent_dim, generator=gen)
    z1 = torch.randn(latent_dim, generator=gen)
    return z0, z1


# -- sampling ----------------------------------------------------------------------------------
def run_generator(
    task: Any, z: Tensor, labels: Tensor | None = None, batch_size: int = 500
) -> Tensor:
    """G(z[, labels]) with the task's sampling generator (EMA when enabled), eval mode, on CPU."""
    out = [
        task.decode(z[s : s + batch_size], None if labels is None else labels[s : s + batch_size])
        for s in range(0, len(z), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0)


def interpolation_images(
    task: Any,
    steps: int,
    seed: int,
    label: int | None = None,
    psi: float = 1.0,
    space: str = "z",
) -> tuple[Tensor, Tensor, int | None]:
    """(images (steps, C, H, W) in [-1, 1], latents, label) along the path from z0 to z1.

    space="z": slerp between the latents (steps, D). space="w" (style-based tasks): z0 and z1 are
    mapped to styles, which are interpolated linearly (steps, num_ws, w_dim), as StyleGAN's
    perceptual path length does in W. psi != 1 truncates the styles (style-based tasks). For a
    conditional model without `label`, the class is drawn from `seed` after z0 and z1.
    """
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = _endpoints(task.latent_dim, gen)  # the same pair as latent_endpoints(D, seed)
    labels = None
    n_classes = task.num_classes
    if n_classes is not None:
        if label is None:
            label = int(torch.randint(n_classes, (1,), generator=gen))
        labels = torch.full((steps,), label, dtype=torch.long)
    if space == "w":
        ws = task.map(torch.stack([z0, z1]), None if labels is None else labels[:2], psi)
        t = torch.linspace(0.0, 1.0, steps).view(-1, 1, 1)
        path = torch.lerp(ws[:1], ws[1:], t)  # exact at both ends (torch.lerp's t=1 branch)
        path[0], path[-1] = ws[0], ws[1]
        return task.synthesize(path), path, label
    z = interpolate_latents(z0, z1, steps)
    if psi != 1:
        return task.synthesize(task.map(z, labels, psi)), z, label
    return run_generator(task, z, labels), z, label


def sample_stream(
    task: Any,
    n: int,
    seed: int,
    labels: Tensor | None = None,
    batch_size: int = 500,
    psi: float = 1.0,
) -> Tensor:
    """Items 0..n-1 of the task's sample stream of `seed` (images in [-1, 1]), in batches: the
    same images ganarena-eval scores for eval.seed=seed, whatever the batch size (psi=1)."""
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        y = None if labels is None else labels[start : start + m]
        out.append(task.sample(m, seed=seed, labels=y, start=start, psi=psi)[0])
    return torch.cat(out) if out else torch.empty(0)


def mixing_images(
    task: Any,
    rows: list[int],
    cols: list[int],
    coarse: int | None = None,
    label: int | None = None,
    psi: float = 1.0,
) -> Tensor:
    """The style-mixing figure of NVIDIA's style_mixing.py as ((R+1) * (C+1), C, H, W) images in
    [-1, 1], row by row: a blank corner, the column seeds' images, then per row seed its image
    and its mixes. Mix (r, c) takes the first `coarse` ws (coarse styles, the lowest resolutions;
    default half of them) from row seed r and the rest (fine styles) from column seed c. A seed's
    image is the first image of `ganarena-generate seed=<seed>` (item 0 of its sample stream);
    conditional models draw class `label` (default 0) everywhere."""
    from ganarena.tasks import seeded_normal

    seeds = [*rows, *cols]
    z = torch.cat([seeded_normal(s, 0, 1, task.latent_dim) for s in seeds])
    labels = None
    if task.num_classes is not None:
        labels = torch.full((len(seeds),), 0 if label is None else label, dtype=torch.long)
    ws = task.map(z, labels, psi)
    k = ws.shape[1] // 2 if coarse is None else coarse
    if not 0 <= k <= ws.shape[1]:
        raise ConfigError(
            f"mix_coarse={coarse}: this generator has {ws.shape[1]} style inputs (ws), so "
            f"mix_coarse must be between 0 and {ws.shape[1]}; null takes half of them."
        )
    w_rows, w_cols = ws[: len(rows)], ws[len(rows) :]
    mixed = torch.cat([w_rows[:, None, :k].expand(-1, len(cols), -1, -1),
                       w_cols[None, :, k:].expand(len(rows), -1, -1, -1)], dim=2)  # fmt: skip
    unmixed = task.synthesize(ws)
    cells = task.synthesize(mixed.reshape(-1, *ws.shape[1:]))  # row-major: (r, c) at r * C + c
    figure = [torch.full_like(unmixed[:1], -1.0), unmixed[len(rows) :]]  # corner, column seeds
    for r in range(len(rows)):
        figure += [unmixed[r : r + 1], cells[r * len(cols) : (r + 1) * len(cols)]]
    return torch.cat(figure)


def grid_labels(n: int, nrow: int, num_classes: int) -> Tensor:
    """One class per grid row (row r shows class r mod num_classes)."""
    return (torch.arange(n) // nrow) % num_classes


def class_labels(n: int, num_classes: int, label: int | None = None, nrow: int = 1) -> Tensor:
    """n labels: all `label` when given, else one class per run of `nrow` (grid_labels)."""
    return grid_labels(n, nrow, num_classes) if label is None else torch.full((n,), label)


def to_pil(image: Tensor) -> Image.Image:
    """One image (C, H, W) in [-1, 1] as a PIL image: mode L for 1 channel, RGB for 3."""
    a = to_uint8(image).numpy()
    return Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))


# -- files -------------------------------------------------------------------------------------
def save_grid(images: Tensor, path: Path, nrow: int) -> None:
    atomic_write(
        path, lambda p: save_image(images, p, nrow=nrow, normalize=True, value_range=(-1, 1))
    )
