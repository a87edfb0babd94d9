"""trainer.precision=auto: the precision this machine trains this model fastest in.

On a CUDA GPU: bf16 autocast where the GPU supports bf16 (Ampere and later), else float32. On a
CPU the answer depends on the chip and on the model, so it is measured, not assumed:

- without bf16 matrix units (no `amx_bf16` / `avx512_bf16` in the CPU flags) bf16 autocast is
  emulated and slower (measured ~10x on such a machine): float32, no probe;
- with them, a probe times the task's own networks (deep copies: the run's weights, batch-norm
  statistics and random streams are untouched) for a few forward+backward passes at the run's
  batch size, in float32 and under bf16 autocast, alternating; bf16-mixed is chosen only when it
  is at least `SPEEDUP` times faster. On an Intel Xeon with AMX a 2048^2 matmul runs ~6x faster in
  bf16; on a 2-core AMD EPYC with avx512_bf16 the default DCGAN step is no faster (docs/results/
  performance.md), so the probe keeps float32 there.

2-D point data (the Gaussian mixtures) keeps float32 on every device: bf16's 8-bit mantissa rounds
a coordinate near 4 to steps of 0.03, the scale of the grid's sigma (images in [-1, 1] round to
2^-8, below one 8-bit pixel level). CPU processes under DDP keep float32 (each rank would probe
alone and could disagree).

The probe's answer is measured once per machine, model and batch and kept in the cache
(`<paths.cache_dir>/precision_probe/<key>.json`, key: CPU model and flags, torch version and threads,
the networks' layer types and shapes, the batch size): a whole-step timing on a shared machine
varies by +-15 %, and a sweep whose jobs probed alone could train some arms in bf16 and some in
float32 (measured: the default DCGAN's ratio read 1.14x-1.45x on one machine on one day). Every
run on the machine then trains that model in the same precision; delete the file to measure again.

Where bf16 wins and the networks have convolutions, the probe also times the bf16 arm with the
networks in channels_last (NHWC) memory: oneDNN's bf16 convolutions work in NHWC, so NCHW
networks pay a layout reorder around every convolution (68 reorders, ~3 ms of a ~27 ms default
step on the AMD EPYC). speed.channels_last=auto keeps the layout the probe measured faster by at
least `CL_SPEEDUP`.

The choice and its reason go into metrics.json (`trainer_precision`, `precision_reason`) and the log.
`GANARENA_CPU_PRECISION` (e.g. 32-true) pins the CPU's answer for every run on a machine (the test
suite pins float32 so its exact-number tests hold on every CPU); trainer.precision=<value> pins
one run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, NamedTuple

SPEEDUP = 1.2  # bf16 must be this much faster than float32 to be chosen
CL_SPEEDUP = 1.05  # channels_last must be this much faster than NCHW under bf16 to be chosen
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
ENV = "GANARENA_CPU_PRECISION"


def cpuinfo_field(name: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first `name` line's value in Linux /proc/cpuinfo ("" elsewhere)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    return set(cpuinfo_field("flags", cpuinfo).split())


def on_cuda(trainer_cfg: Any) -> bool:
    import torch

    accel = str(trainer_cfg.get("accelerator", "cpu"))
    return accel in ("gpu", "cuda") or (accel == "auto" and torch.cuda.is_available())


class Choice(NamedTuple):
    """trainer.precision=auto's answer: the precision, why, and whether the probe measured the
    networks faster in channels_last memory under it (speed.channels_last=auto follows it)."""

    precision: str
    why: str
    channels_last: bool = False


def resolve(
    trainer_cfg: Any,
    task: Any,
    batch_size: int,
    scored_as: str = "images",
    cache_dir: str | Path | None = None,
) -> Choice:
    """trainer.precision=auto's Choice; `scored_as`: the data's kind
    (ganarena.data.protocol.SCORED_AS); `cache_dir`: where the probe's answer is kept (None: probe
    every time)."""
    import torch

    if scored_as == "points":
        return Choice(
            "32-true",
            "auto: 2-D points keep float32 (bf16's 8-bit mantissa rounds a coordinate near 4 to "
            "steps of 0.03, the scale of a mixture's sigma; images in [-1, 1] round below a "
            "pixel level)",
        )
    if on_cuda(trainer_cfg):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Choice("bf16-mixed", "auto: a CUDA GPU with bf16 support")
        return Choice("32-true", "auto: this GPU has no bf16 support (pre-Ampere)")
    pinned = os.environ.get(ENV)
    if pinned:
        return Choice(pinned, f"auto: {ENV}={pinned} pins the CPU precision on this machine")
    flags = sorted(set(BF16_FLAGS) & cpu_flags())
    if not flags:
        return Choice(
            "32-true", "auto: the CPU has no bf16 matrix units (no amx_bf16/avx512_bf16 flag)"
        )
    devices = trainer_cfg.get("devices", 1)
    if str(devices) not in ("1", "auto") and "ddp" in str(trainer_cfg.get("strategy", "")):
        return Choice(
            "32-true", "auto: CPU processes under DDP keep float32 (each rank would probe alone)"
        )
    nets = None if task is None else task.probe_networks()
    if nets is None:
        what = "a caller that built no networks" if task is None else type(task).__name__
        return Choice("32-true", f"auto: no probe for {what} (float32)")
    if cache_dir is None:
        return _measure(nets, batch_size, flags)[0]
    from ganarena.run.files import cache_lock, write_json

    path = Path(cache_dir) / "precision_probe" / f"{probe_key(nets, batch_size, flags)}.json"
    with cache_lock(path):  # parallel sweep jobs: the first measures, the others read its answer
        try:
            kept = json.loads(path.read_text())
            return Choice(
                kept["trainer_precision"],
                f"{kept['why']} (measured once on this machine for this model and batch on "
                f"{kept['date']}, kept in {path}: delete it to measure again)",
                bool(kept["channels_last"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not measured yet (or an unreadable or older file: measure again)
        choice, measured = _measure(nets, batch_size, flags)
        if measured:  # not a probe that could not run: that is this run's fallback only
            try:
                write_json(
                    path,
                    {
                        "trainer_precision": choice.precision,
                        "channels_last": choice.channels_last,
                        "why": choice.why,
                        "date": time.strftime("%Y-%m-%d"),
                    },
                )
            except OSError:
                pass  # a read-only cache: this run's answer only
        return choice


def probe_key(nets: tuple, batch_size: int, flags: list[str]) -> str:
    """What the probe's answer depends on: the CPU, torch, its threads, the networks' layers and
    shapes (not their values), the batch size."""
    import torch

    parts = [platform.machine(), cpuinfo_field("model name"), *flags, torch.__version__,
             str(torch.get_num_threads()), str(batch_size)]  # fmt: skip
    for net in nets:
        if net is None:
            continue
        parts.append(type(net).__qualname__)
        if hasattr(net, "named_modules"):
            parts += [f"{n}:{type(m).__name__}" for n, m in net.named_modules()]
            parts += [f"{n}:{tuple(t.shape)}" for n, t in net.state_dict().items()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _measure(nets: tuple, batch_size: int, flags: list[str]) -> tuple[Choice, bool]:
    """(the choice, whether the probe ran)."""
    try:
        generator, discriminator, d_input = nets
        layouts = has_convolutions(generator, discriminator)
        times = probe(generator, discriminator, batch_size, d_input, channels_last=layouts)
    except Exception as e:  # a network the generic probe cannot drive: keep float32, say why
        why = f"auto: the bf16 probe could not run this model ({e!r}); float32"
        return Choice("32-true", why), False
    t32, t16, t16_cl = (*times, None)[:3]
    nhwc = t16_cl is not None and t16 / t16_cl >= CL_SPEEDUP
    ratio = t32 / (t16_cl if nhwc else t16)
    chosen = "bf16-mixed" if ratio >= SPEEDUP else "32-true"
    cl = "" if t16_cl is None else f", bf16 autocast in channels_last {t16_cl * 1e3:.1f} ms"
    why = (
        f"auto: CPU flags {'+'.join(flags)}; probe of this model at batch {batch_size}: float32 "
        f"{t32 * 1e3:.1f} ms, bf16 autocast {t16 * 1e3:.1f} ms{cl} per forward+backward "
        f"({ratio:.2f}x; bf16 is chosen from {SPEEDUP}x"
        + (f", channels_last from {CL_SPEEDUP}x over NCHW" if t16_cl is not None else "")
        + ")"
    )
    return Choice(chosen, why, nhwc and chosen == "bf16-mixed"), True


def has_convolutions(*nets: Any) -> bool:
    """Whether any of `nets` has a 2-D convolution (the layers channels_last changes)."""
    import torch

    return any(
        isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
        for net in nets
        if hasattr(net, "modules")
        for m in net.modules()
    )


def probe(
    generator: Any,
    discriminator: Any,
    batch_size: int,
    d_input: Any = None,
    rounds: int = 3,
    steps: int = 3,
    channels_last: bool = False,
) -> tuple[float, ...]:
    """Seconds per forward+backward of G and D (the fastest of `rounds` rounds of `steps`), in
    float32 and under bf16 autocast (and, with `channels_last`, under bf16 autocast with the
    networks in channels_last memory), on copies of the networks, with the RNG state restored.
    `d_input(x, real=)`: what turns a batch into D's input (augmentation, packing), if anything."""
    import torch

    nchw = copy.deepcopy(generator).train(), copy.deepcopy(discriminator).train()
    arms = {"32": nchw, "16": nchw}
    if channels_last:
        arms["16cl"] = tuple(
            copy.deepcopy(n).train().to(memory_format=torch.channels_last) for n in nchw
        )
    classes = getattr(nchw[0], "num_classes", None)
    with torch.random.fork_rng(devices=[]):
        z = torch.randn(batch_size, nchw[0].latent_dim)
        y = torch.randint(0, classes, (batch_size,)) if classes else None
        with torch.no_grad():
            real = (nchw[0](z) if y is None else nchw[0](z, y)).float()

        def step(g: Any, d: Any) -> None:
            def dis(x: Any, real_: bool) -> Any:
                x = x if d_input is None else d_input(x, real=real_)
                return d(x) if y is None else d(x, y)

            out_f = dis(g(z) if y is None else g(z, y), False)
            out_r = dis(real, True)
            (out_f.float().mean() - out_r.float().mean()).backward()
            g.zero_grad(set_to_none=True)
            d.zero_grad(set_to_none=True)

        def timed(arm: str) -> float:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=arm != "32"):
                t0 = time.perf_counter()
                for _ in range(steps):
                    step(*arms[arm])
                return (time.perf_counter() - t0) / steps

        for arm in arms:  # warm-up: allocator, oneDNN primitives
            timed(arm)
        best = dict.fromkeys(arms, float("inf"))
        for _ in range(rounds):
            for arm in arms:
                best[arm] = min(best[arm], timed(arm))
    return tuple(best.values())
