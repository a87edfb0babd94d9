"""Feature extractors for FID/KID/IS: the domain classifier (trained and cached here) and Inception.

A backbone maps uint8 images (B, C, H, W) in [0, 255] to (features, logits): features feed
FID/KID, logits feed IS and the class histogram.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ganarena.data.protocol import RealImages
from ganarena.errors import ConfigError, DataError, GanarenaError
from ganarena.report.verdict import RELIABLE_CLASSIFIER, WEAK_CLASSIFIER
from ganarena.run.files import cache_lock, save_torch

log = logging.getLogger(__name__)

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
)
INCEPTION_SHA256_PREFIX = "6726825d"
# Bump when DomainClassifier or the training loop changes: it is part of the cache key.
DOMAIN_ARCH = "cnn-v1"
DEFAULT_RECIPE = {
    "epochs": 5,
    "batch_size": 128,
    "lr": 0.003,  # peak of a one-cycle schedule (Adam)
    "width": 32,
    "features": 128,
    "max_shift": 2,  # random translation augmentation, in pixels
    "holdout": 0.1,
    "max_train_images": 20000,  # bounds the one-off training time on large datasets
    "seed": 0,
}


def state_sha256(module: nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes and values, in key order)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- domain classifier --------------------------------------------------------------------------
class DomainClassifier(nn.Module):
    """Small CNN: three conv blocks -> `features`-d penultimate layer -> class logits."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, features: int = 128):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(4 * w * 9, features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(features, num_classes))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: float images in [-1, 1] -> (penultimate features, logits)."""
        f = self.body(x)
        return f, self.head(f)


def _shift(x: Tensor, max_shift: float, gen: torch.Generator) -> Tensor:
    """Translate each image by up to `max_shift` pixels, filling with the background (-1)."""
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = (torch.rand(len(x), 2, generator=gen) * 2 - 1) * (2 * max_shift / x.shape[-1])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


def train_domain_classifier(
    images: RealImages | Tensor, labels: Tensor, num_classes: int, recipe: dict
) -> tuple[DomainClassifier, dict]:
    """Train on a seeded split of (images in [-1, 1], labels); returns (model in eval mode, info).
    `images` is read a minibatch at a time (by index), so it need not be in memory.

    Runs on the CPU under a forked RNG, so it is reproducible and leaves the caller's RNG alone.
    """
    if isinstance(images, Tensor):
        images = RealImages.of(images, labels, "train", "")
    r = recipe
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        gen = torch.Generator().manual_seed(r["seed"])
        perm = torch.randperm(len(images), generator=gen)
        if r["max_train_images"] is not None:
            perm = perm[: r["max_train_images"]]
        n_hold = max(1, round(len(perm) * r["holdout"]))
        hold, train = perm[:n_hold], perm[n_hold:]
        if not images.in_memory:  # streamed from disk: read each image once, not every epoch
            images, labels, hold, train = read_once(images, labels, perm, n_hold)
        model = DomainClassifier(images.shape[0], num_classes, r["width"], r["features"])
        opt = torch.optim.Adam(model.parameters(), lr=r["lr"])  # lr driven by the schedule
        bs = r["batch_size"]
        steps = r["epochs"] * -(-len(train) // bs)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=steps)
        for _ in range(r["epochs"]):
            model.train()
            order = train[torch.randperm(len(train), generator=gen)]
            for i in range(0, len(order), bs):
                idx = order[i : i + bs]
                x = images[idx]
                if r["max_shift"]:
                    x = _shift(x, r["max_shift"], gen)
                loss = F.cross_entropy(model(x)[1], labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, n_hold, 1000):
                idx = hold[i : i + 1000]
                correct += int((model(images[idx])[1].argmax(1) == labels[idx]).sum())
    info = {
        "classifier_accuracy": correct / n_hold,
        "classifier_n_heldout": n_hold,
        "classifier_n_train": len(train),
        "classifier_train_s": round(time.perf_counter() - t0, 1),
    }
    return model, info


# A streamed classifier set is read once into memory up to this size (uint8 where exact).
READ_ONCE_MAX_BYTES = 2 * 1024**3


def read_once(images: RealImages, labels: Tensor, perm: Tensor, n_hold: int):
    """(images, labels, hold, train) over the images at `perm`, read once into memory in that
    order (uint8 when the images are exactly uint8 values, as decoded files are; else float32):
    position j holds image perm[j], so training sees the same images in the same order, with the
    same values, as when it read the originals. Left streaming (reading per minibatch) when they
    would take over READ_ONCE_MAX_BYTES."""
    from ganarena.run.files import to_uint8

    size = int(torch.tensor(images.shape).prod())
    if len(perm) * size > READ_ONCE_MAX_BYTES:
        return images, labels, perm[:n_hold], perm[n_hold:]
    parts, exact = [], True
    for x, _ in images.batches(1000, perm):
        if exact:
            u = to_uint8(x)
            exact = torch.equal(u.float() / 127.5 - 1, x)
            parts.append(u if exact else x)
        else:
            parts.append(x)
    if not exact:
        parts = [p.float() / 127.5 - 1 if p.dtype == torch.uint8 else p for p in parts]
    held = torch.cat(parts)
    local = RealImages(
        len(perm),
        (lambda i: held[i].float() / 127.5 - 1) if held.dtype == torch.uint8 else held.__getitem__,
        None,
        images.split,
        images.fingerprint,
        images.shape,
    )
    positions = torch.arange(len(perm))
    return local, labels[perm], positions[:n_hold], positions[n_hold:]


class DomainBackbone(nn.Module):
    """Wraps a trained DomainClassifier: uint8 images of the training shape -> (features, logits)."""

    def __init__(
        self, model: DomainClassifier, input_shape: tuple[int, int, int], name: str, info: dict
    ):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.input_shape = tuple(input_shape)
        self.name = name
        self.info = info
        self.feature_dim = model.head[-1].in_features
        self.num_classes = model.head[-1].out_features
        self.cache_id = f"{name}-{info['classifier_sha256'][:12]}"

    def train(self, mode: bool = True) -> DomainBackbone:
        return super().train(False)  # never leaves eval mode (BatchNorm, Dropout)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.input_shape:
            raise DataError(
                f"The domain classifier takes images of shape {self.input_shape} (C, H, W), got "
                f"{tuple(x.shape[1:])}. Generate/supply images at the dataset's size and channel "
                "count, or use eval.backbone=inception (any size)."
            )
        return self.model(x.float() / 127.5 - 1)


def recipe_of(eval_cfg) -> dict:
    given = dict(eval_cfg.get("classifier") or {})
    unknown = sorted(set(given) - set(DEFAULT_RECIPE))
    if unknown:
        raise ConfigError(
            f"Unknown eval.classifier keys {unknown}; valid keys are {sorted(DEFAULT_RECIPE)}. "
            "Fix the eval config or the override."
        )
    return {**DEFAULT_RECIPE, **given}


def build_domain_backbone(eval_cfg, datamodule, cache_dir: str | Path) -> DomainBackbone:
    """Load the dataset's classifier from `<cache_dir>/domain/<fingerprint>-<recipe>.pt`, or train
    and cache it."""
    if datamodule is None:
        raise ConfigError(
            "eval.backbone=domain needs a labelled dataset to train its classifier on: pass "
            "dataset=<name> (e.g. dataset=mnist), or use eval.backbone=inception."
        )
    name = datamodule.resolved
    if not datamodule.num_classes:
        raise ConfigError(
            f"eval.backbone=domain trains a classifier on the dataset's labels, but dataset "
            f"'{name}' has no labels. Use eval.backbone=inception (needs the Inception weights "
            "file) or eval.backbone=none to skip evaluation."
        )
    recipe = recipe_of(eval_cfg)
    recipe_hash = hashlib.sha256(
        json.dumps({**recipe, "arch": DOMAIN_ARCH}, sort_keys=True).encode()
    ).hexdigest()[:12]
    images = datamodule.real("classifier")
    path = Path(cache_dir) / "domain" / f"{images.fingerprint}-{recipe_hash}.pt"
    shape = images.shape
    model = DomainClassifier(shape[0], datamodule.num_classes, recipe["width"], recipe["features"])
    with cache_lock(path):
        info = None
        if path.is_file():
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                model.load_state_dict(saved["state_dict"])
                info = saved["info"]
                if state_sha256(model) != info["classifier_sha256"]:
                    raise ValueError("weight hash mismatch")
                log.info("domain classifier: reusing %s", path)
            except Exception as e:  # noqa: BLE001 - any unreadable cache entry is rebuilt
                log.warning("domain classifier cache %s is unusable (%s); retraining", path, e)
                info = None
        if info is None:
            log.info(
                "training the domain classifier for '%s' (%d images, %d epochs; once, then cached)",
                name, len(images), recipe["epochs"],
            )  # fmt: skip
            model, info = train_domain_classifier(
                images, images.labels, datamodule.num_classes, recipe
            )
            info.update(classifier_sha256=state_sha256(model), classifier_recipe=recipe_hash)
            save_torch({"state_dict": model.state_dict(), "info": info, "recipe": recipe}, path)
            log.info(
                "domain classifier: held-out accuracy %.4f, trained in %.1f s, saved to %s",
                info["classifier_accuracy"], info["classifier_train_s"], path,
            )  # fmt: skip
    acc = info["classifier_accuracy"]
    reliable = acc >= RELIABLE_CLASSIFIER
    if not reliable:
        log.error(
            "UNRELIABLE EVALUATION: the domain classifier reaches only %.1f%% held-out accuracy on "
            "'%s' (reliable from %.0f%%): every FID/IS/mode score of this run is flagged as "
            "meaningless (metrics.json health 'unreliable'). Give it more labelled data or "
            "eval.classifier.epochs, or use eval.backbone=inception",
            100 * acc, name, 100 * RELIABLE_CLASSIFIER,
        )  # fmt: skip
    elif acc < WEAK_CLASSIFIER:
        log.warning(
            "the domain classifier reaches only %.1f%% held-out accuracy on '%s': its FID/IS are "
            "weak signals here; consider more labelled data or eval.backbone=inception",
            100 * acc, name,
        )  # fmt: skip
    info = {**info, "classifier_file": str(path), "classifier_reliable": reliable}
    return DomainBackbone(model, shape, f"domain-{name}-cnn", info)


# -- Inception ----------------------------------------------------------------------------------
def _missing_weights_message(where: str) -> str:
    return (
        f"The Inception weights file {INCEPTION_FILE} (torch-fidelity's FID Inception) was not "
        f"found {where}. Download it on a machine with internet from {INCEPTION_URL} and either "
        f"put it in {Path(torch.hub.get_dir()) / 'checkpoints'} or pass "
        "eval.inception_weights=/path/to/that/file; or set eval.allow_download=true (needs internet); "
        "or use eval.backbone=domain (a classifier trained on your labelled dataset, no download; "
        "its scores are not comparable to published Inception FIDs)."
    )


def find_inception_weights(path: str | None, allow_download: bool) -> Path:
    """eval.inception_weights, else the torch hub cache, else (only if allowed) a download."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(_missing_weights_message(f"at eval.inception_weights={path}"))
        return p
    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if hub.is_file():
        return hub
    if not allow_download:
        raise ConfigError(_missing_weights_message(f"at {hub} (the torch hub cache)"))
    hub.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", INCEPTION_URL, hub)
    try:
        torch.hub.download_url_to_file(INCEPTION_URL, str(hub), hash_prefix=INCEPTION_SHA256_PREFIX)
    except Exception as e:  # noqa: BLE001 - network/hash errors all mean the same to the user
        raise GanarenaError(
            f"Downloading the Inception weights failed ({type(e).__name__}: {e}). "
            + _missing_weights_message("locally")
        ) from None
    return hub


class InceptionBackbone(nn.Module):
    """torch-fidelity's FID Inception v3: uint8 images of any size -> (2048-d pool features,
    1008 unbiased logits), resized to 299 exactly as the TensorFlow reference does."""

    def __init__(self, weights: Path):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:  # weights_only first: a safe check that the file is a readable state dict
            state = torch.load(weights, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise TypeError(f"holds a {type(state).__name__}, not a state dict")
        except Exception as e:  # noqa: BLE001
            raise GanarenaError(
                f"The Inception weights file {weights} is corrupt or not a PyTorch state dict "
                f"({type(e).__name__}: {str(e)[:200]}). Delete it and put a fresh copy of "
                f"{INCEPTION_FILE} there, or use eval.backbone=domain."
            ) from None
        del state
        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                ["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(weights),
            )
        except RuntimeError as e:
            detail = " ".join(str(e).split())[:300]
            raise GanarenaError(
                f"The file {weights} does not hold FID Inception v3 weights ({detail}). Use "
                f"{INCEPTION_FILE} from {INCEPTION_URL}, or eval.backbone=domain."
            ) from None
        sha = file_sha256(weights)
        standard = sha.startswith(INCEPTION_SHA256_PREFIX)
        if not standard:
            log.warning(
                "%s is not the standard FID Inception weights file (sha256 %s...): its scores are "
                "NOT comparable with published FIDs", weights, sha[:12],
            )  # fmt: skip
        self.name = "inception-v3-compat"
        self.input_shape = None  # any size; grayscale is expanded to RGB
        self.feature_dim = 2048
        self.num_classes = None  # ImageNet classes are no modes of the user's data
        self.info = {
            "inception_weights": str(weights),
            "weights_sha256": sha,
            "inception_standard": standard,
        }
        self.cache_id = f"inception-{sha[:12]}"

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        feats, logits = self.net(x)
        return feats, logits


def build_backbone(eval_cfg, datamodule, cache_dir: str | Path) -> nn.Module:
    kind = eval_cfg.get("backbone")
    if datamodule is not None and datamodule.scored_as == "points":  # 2-D points, not images
        raise ConfigError(
            f"dataset={datamodule.name} has no image backbone: its points are scored by modes "
            "covered and % high-quality samples. Score a checkpoint (ganarena-eval "
            "ckpt_path=<run>/checkpoints/last.ckpt), not image folders."
        )
    if kind == "domain":
        return build_domain_backbone(eval_cfg, datamodule, cache_dir)
    if kind == "inception":
        weights = find_inception_weights(
            eval_cfg.get("inception_weights"), bool(eval_cfg.get("allow_download", False))
        )
        return InceptionBackbone(weights)
    raise ConfigError(
        f"eval.backbone must be domain, inception or none, got {kind!r}. Pick one, e.g. eval=domain."
    )
