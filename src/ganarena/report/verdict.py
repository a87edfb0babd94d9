"""What a run found, in words: one sentence at the end of every run, from its final scores.
Its inputs are named by the metric registry (ganarena.metrics.registry).

The thresholds live here and only here (README, "What a run says"):

- collapsed: at most half of the classes covered (`modes_covered`, eval.mode_threshold) or IS
  below COLLAPSED_IS — the samples are a few kinds of image, or one.
- healthy: every class covered (the classes the reference shows, `real_classes`), class KL <= HEALTHY_CLASS_KL, IS >= HEALTHY_IS_SHARE x the number
  of classes (8.5 for 10), and FID <= HEALTHY_FID_FACTOR x the real-vs-real floor (the FID between
  the two halves of the reference data, `real_floor_fid` in metrics.json "eval").
- partial: anything between; the sentence names what is missing.

For 2-D mixtures (no classifier) a run is healthy with every mode covered and at least
HEALTHY_HIGH_QUALITY of its points within 3 std of a mode, collapsed with half the modes or fewer.

For translation (eval "backbone" translation, ganarena.metrics.translation), judged in both
directions: collapsed when the translations keep the source's class (label_acc) no more often than
COLLAPSED_LABEL_ACC (near chance: the input's content is lost); healthy when they keep it at least
HEALTHY_LABEL_SHARE x as often as the target classifier is right on real images and each FID is
within HEALTHY_FID_FACTOR x that domain's real-vs-real floor. Labels are not judged where the
target classifier's held-out accuracy is below RELIABLE_CLASSIFIER.

unreliable: the scores come from a domain classifier (eval=domain) whose held-out accuracy is
below RELIABLE_CLASSIFIER. Its features then carry next to no signal about the data: the smoke
preset's one-epoch classifier scored 11.5 % (chance: 10 %) and gave generated digits an FID
below that of real data. The run is flagged whatever its scores: health "unreliable", a sentence
that starts with UNRELIABLE (stdout, train.log, TensorBoard text `verdict`, HParams `health`)
and `classifier_reliable: false` in metrics.json "eval". Below WEAK_CLASSIFIER the log warns.
"""

from __future__ import annotations

import math
from typing import Any

from ganarena.metrics import registry as M

COLLAPSED_IS = 2.0
HEALTHY_IS_SHARE = 0.85
HEALTHY_CLASS_KL = 0.05
HEALTHY_FID_FACTOR = 2.0
HEALTHY_HIGH_QUALITY = 0.5
COLLAPSED_LABEL_ACC = 0.2
HEALTHY_LABEL_SHARE = 0.9
RELIABLE_CLASSIFIER = 0.5
WEAK_CLASSIFIER = 0.9
HEALTHS = ("healthy", "partial", "collapsed", "diverged", "unscored", "unreliable")

FIXES = (
    "try the default recipe (ganarena-train with no model/loss overrides: a DCGAN with EMA, "
    "class-conditional on labelled data), model.conditional=true, model.ema_decay=0.999, "
    "loss=hinge or loss=wgan_gp, or more trainer.max_steps"
)


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


def classifier_reliable(settings: dict | None) -> bool:
    """False when a domain classifier scored the samples with held-out accuracy below
    RELIABLE_CLASSIFIER (True without one: Inception, mixtures, translation)."""
    acc = _num((settings or {}).get("classifier_accuracy"))
    return not acc < RELIABLE_CLASSIFIER


def unscored(status: str, settings: dict | None) -> str:
    """The sentence for a run without final scores: no evaluation asked for (eval=none, no
    settings), or stopped before the first one."""
    if settings is None:
        return (
            f"run {status} without an evaluation (eval=none): look at samples/ to judge it, or "
            "score the checkpoint with ganarena-eval"
        )
    if status == "interrupted":
        return (
            "run interrupted before its first evaluation: resume it with ckpt_path=last (a "
            "requeued SLURM job resumes by itself) to train and score it, or score last.ckpt "
            "with ganarena-eval"
        )
    return (
        f"run {status} before its first evaluation: look at samples/ to judge it, or score the "
        "checkpoint with ganarena-eval"
    )


def verdict(status: str, final: dict | None, settings: dict | None) -> tuple[str, str]:
    """(word, sentence): word is one of HEALTHS."""
    if status == "diverged":
        return (
            "diverged",
            "training diverged (NaN/inf): lower the learning rates or change the loss",
        )
    if not final:
        return "unscored", unscored(status, settings)
    if status == "interrupted":  # judged on the scores so far, and said so
        word, sentence = verdict("completed", final, settings)
        return word, f"run interrupted (resume it with ckpt_path=last); so far: {sentence}"
    settings = settings or {}
    if not classifier_reliable(settings):
        acc, n = settings["classifier_accuracy"], settings.get("num_classes") or 10
        return "unreliable", (
            f"UNRELIABLE scores (final FID {_num(final.get(M.FID)):.3g}, IS "
            f"{_num(final.get(M.IS)):.2f}): the domain classifier that computed them reaches only "
            f"{acc:.1%} held-out accuracy (chance {1 / n:.0%}; reliable from "
            f"{RELIABLE_CLASSIFIER:.0%}), so they say nothing about the samples. Give it more "
            "labelled data or training (eval.classifier.epochs), or use eval=inception"
        )
    if settings.get("backbone") == "translation":
        return _translation(final, settings)
    fid, modes = _num(final.get(M.FID)), final.get(M.MODES_COVERED)
    if settings.get("backbone") == "mixture":
        n, hq = settings.get("n_modes"), _num(final.get(M.HIGH_QUALITY))
        facts = f"{modes}/{n} modes, {hq:.0%} of points high quality, FID {fid:.3g}"
        if modes is not None and n and modes <= n / 2:
            return "collapsed", f"{facts}: the generator covers few modes; {FIXES}"
        if modes == n and hq >= HEALTHY_HIGH_QUALITY:
            return "healthy", f"{facts}: looks healthy"
        return "partial", f"{facts}: partly there (modes missed or points off the modes)"

    if str(settings.get("scored_as", "")).startswith("stacked_digits"):
        return _stacked(final, settings)
    is_ = _num(final.get(M.IS))
    floor = _num(settings.get("real_floor_fid"))
    n = settings.get("real_classes") or settings.get("num_classes") or 10
    facts = f"final FID {fid:.3g}" + (
        f" (real-vs-real floor {floor:.3g})" if floor == floor else ""
    )
    facts += f", IS {is_:.2f}"
    if modes is not None:
        kl = _num(final.get(M.CLASS_KL))
        facts += f", {modes}/{n} modes covered, class KL {kl:.3f}"
        if modes <= n / 2 or is_ < COLLAPSED_IS:
            return "collapsed", f"{facts}: the generator has collapsed onto few classes; {FIXES}"
        missing = []
        if modes < n:
            missing.append(f"{n - modes} classes missing")
        if not kl <= HEALTHY_CLASS_KL:
            missing.append(f"class KL above {HEALTHY_CLASS_KL}")
        if not is_ >= HEALTHY_IS_SHARE * n:
            missing.append(f"IS below {HEALTHY_IS_SHARE * n:.1f}")
        if floor == floor and not fid <= HEALTHY_FID_FACTOR * floor:
            missing.append(f"FID above {HEALTHY_FID_FACTOR:g}x the floor")
        if not missing:
            return "healthy", f"{facts}: looks healthy"
        if len(missing) == 1 and missing[0].startswith("FID"):  # varied and recognisable already
            return "partial", (
                f"{facts}: every class, recognisable, but {missing[0]} (not yet as close to "
                "the data as the data is to itself); train longer (raise trainer.max_steps)"
            )
        return "partial", f"{facts}: partly there ({', '.join(missing)}); train longer or {FIXES}"
    if floor == floor:
        ok = fid <= HEALTHY_FID_FACTOR * floor
        return ("healthy" if ok else "partial"), f"{facts}: " + (
            "looks healthy" if ok else f"FID above {HEALTHY_FID_FACTOR:g}x the floor"
        )
    return "partial", f"{facts}: no classifier or floor to judge against; look at samples/"


def _stacked(final: dict, settings: dict) -> tuple[str, str]:
    """Stacked MNIST: modes (digit triples) covered of the 1,000 and KL to uniform, against what
    the real stacked data reaches when scored the same way (`real_floor`)."""
    modes, kl = final.get(M.MODES_COVERED), _num(final.get(M.MODE_KL))
    n = settings.get("modes") or 1000
    real = settings.get("real_floor") or {}
    real_modes, real_kl = real.get(M.MODES_COVERED), _num(real.get(M.MODE_KL))
    facts = f"{modes}/{n} modes covered, mode KL {kl:.3f}" + (
        f" (real data: {real_modes}/{n}, KL {real_kl:.3f})" if real_modes is not None else ""
    )
    if modes is None:
        return "partial", f"{facts}: no mode count; look at samples/"
    if modes <= n / 2:
        return "collapsed", (
            f"{facts}: the generator covers few of the digit triples (mode collapse); try "
            "packing (d_input=[pack2]), another loss, or train longer"
        )
    if real_modes is not None and modes >= 0.95 * real_modes and kl <= max(2 * real_kl, 0.1):
        return "healthy", f"{facts}: looks healthy"
    return "partial", f"{facts}: partly there; train longer"


def _translation(final: dict, settings: dict) -> tuple[str, str]:
    """The verdict of a translation run from both directions' scores."""
    parts, missing, labels = [], [], []
    for d, name in zip(M.DIRECTIONS, ("A->B", "B->A"), strict=True):
        fid, floor = _num(final.get(f"{M.FID}_{d}")), _num(settings.get(f"real_floor_fid_{d}"))
        acc, clf = (
            _num(final.get(f"{M.LABEL_ACC}_{d}")),
            _num(settings.get(f"classifier_accuracy_{d}")),
        )
        text = f"{name}: FID {fid:.3g}" + (f" (floor {floor:.3g})" if floor == floor else "")
        if acc == acc and not clf < RELIABLE_CLASSIFIER:
            text += f", label kept {acc:.0%}"
            labels.append(acc)
            if not acc >= HEALTHY_LABEL_SHARE * (clf if clf == clf else 1.0):
                missing.append(f"{name} loses labels")
        if floor == floor and not fid <= HEALTHY_FID_FACTOR * floor:
            missing.append(f"{name} FID above {HEALTHY_FID_FACTOR:g}x the floor")
        parts.append(text)
    cycle = [_num(final.get(k)) for k in (f"{M.CYCLE_L1}_{x}" for x in M.DOMAINS)]
    facts = "; ".join(parts) + f"; cycle L1 {cycle[0]:.3f}/{cycle[1]:.3f}"
    truth = [_num(final.get(k)) for k in (f"{M.TRUTH_L1}_{d}" for d in M.DIRECTIONS)]
    if truth[0] == truth[0]:
        facts += f", L1 to the truth {truth[0]:.3f}/{truth[1]:.3f}"
    if labels and max(labels) <= COLLAPSED_LABEL_ACC:
        return "collapsed", (
            f"{facts}: the translations do not keep their input's content (labels near chance); "
            "raise task.lambda_cycle, or train longer"
        )
    if not labels and not missing:
        return "partial", f"{facts}: no reliable classifier to judge labels by; look at samples/"
    if not missing:
        return "healthy", f"{facts}: looks healthy"
    return "partial", f"{facts}: partly there ({', '.join(missing)}); train longer"
