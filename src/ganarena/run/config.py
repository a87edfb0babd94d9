"""Checks on a composed config that Hydra cannot make: types, ranges and incompatible combinations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ganarena.errors import ConfigError, GanarenaError, check_memory
from ganarena.gan.regularizers import declared
from ganarena.run.defaults import example
from ganarena.run.files import nearest_existing, writable_dir


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=False)


MAX_SEED = 2**32 - 1


def _number(
    cfg: DictConfig,
    key: str,
    *,
    integer: bool = False,
    low: float = 0.0,
    low_ok: bool = False,
    high: float | None = None,
    nullable: bool = False,
) -> None:
    value = _get(cfg, key)
    if value is None and nullable:
        return
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))

    def fits(v) -> bool:
        typed = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not typed or (not integer and not math.isfinite(v)):
            return False
        return (v > low or (v == low and low_ok)) and (high is None or v < high)

    head = key.split(".", 1)[0]
    choice = _get(cfg, f"{head}.name") if "." in key else None
    shown = example(key, _example(low, integer), choice if isinstance(choice, str) else None, fits)
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        raise ConfigError(
            f"{key} must be {kind}, got {value!r} ({type(value).__name__}). "
            f"Fix it on the command line, e.g. {key}={shown}."
        )
    low_s = int(low) if integer else low
    bound = f">= {low_s}" if low_ok else f"> {low_s}"
    if not fits(value):
        rng = bound if high is None else f"{bound} and < {high}"
        raise ConfigError(
            f"{key} must be {rng}, got {value!r}. Fix it on the command line, e.g. {key}={shown}."
        )


def _example(low: float, integer: bool) -> str:
    """The example when conf/ has no valid default for the key."""
    return str(int(low) + 1) if integer else str(low + 0.5 if low else 0.0002)


def _check_run_options(cfg: DictConfig, seed: Any) -> None:
    """Seeds numpy cannot take, path_length.decay outside [0, 1], init_from with a resume."""
    if seed is not None and seed > MAX_SEED:
        raise ConfigError(
            f"seed={seed} is above {MAX_SEED} (2**32 - 1), the largest seed numpy and Lightning "
            "accept, so it cannot seed the run as given. Pick a seed in [0, 4294967295], e.g. "
            f"seed={seed % (MAX_SEED + 1)} (the same value modulo 2**32)."
        )
    decay = _get(cfg, "regularizer.path_length.decay")
    if decay is not None and (
        isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 <= decay <= 1
    ):
        raise ConfigError(
            f"regularizer.path_length.decay must be a number in [0, 1] (the running mean's update "
            f"rate, StyleGAN2: 0.01), got {decay!r}. E.g. regularizer.path_length.decay="
            f"{example('regularizer.path_length.decay', 0.01)}."
        )
    # ckpt_path=auto (SLURM jobs) is a fresh start until there is a checkpoint: init_from applies
    if _get(cfg, "init_from") is not None and _get(cfg, "ckpt_path") not in (None, "auto"):
        raise ConfigError(
            f"init_from={_get(cfg, 'init_from')} starts a new run from another run's weights, "
            f"and ckpt_path={_get(cfg, 'ckpt_path')} resumes a run with its own weights, "
            "optimizers and counters, so one of them would be ignored. Keep init_from to "
            "fine-tune (a fresh run), or ckpt_path to continue."
        )


def _command_line() -> list[str]:
    """The overrides the user gave this job (Hydra's task overrides; empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def _check_unused_overrides(cfg: DictConfig, overrides: list[str]) -> None:
    """Options set on the command line for a part of the recipe that is not in use: refused, not
    ignored (README "Bad input": one rule for options that do not apply). Presets may set them."""
    logged = [k for k in (_get(cfg, "logger") or {}) if k == "tensorboard"]
    for arg in overrides:
        key = arg.split("=", 1)[0].lstrip("+~")
        if key.startswith("eval.") and _get(cfg, "eval.backbone") in (None, "none"):
            raise ConfigError(
                f"{arg} sets the evaluation, but eval=none turns it off, so nothing would read "
                "it. Drop it, or choose an evaluation (eval=domain, or eval=inception)."
            )
        d_norm = _get(cfg, "model.d_norm")
        if key == "model.d_norm" and d_norm in D_NORMS and d_norm not in ("auto", "none"):
            if _declared(cfg, "model.discriminator", "ignores_norm", default=False) is True:
                raise ConfigError(
                    f"{arg}: model={_get(cfg, 'model.name')}'s discriminator has no "
                    "normalisation layers, so this would be ignored. Drop it, or use a model "
                    "whose D has them (model=dcgan)."
                )
        if key.startswith("tensorboard.") and not logged:
            raise ConfigError(
                f"{arg} sets what TensorBoard shows, but this run logs no TensorBoard events "
                "(logger= does not include tensorboard). Drop it, or add the logger: "
                "logger=[tensorboard,...]."
            )


def _check_repro_row(cfg: DictConfig) -> None:
    """repro_row= picks a row of a paper's table, which only a reproduction preset defines."""
    from importlib.resources import files

    row = _get(cfg, "repro.row")
    if row is not None and _get(cfg, f"repro.batch.{row}") is None:
        presets = sorted(
            p.name.removesuffix(".yaml")
            for p in (files("ganarena.conf") / "experiment").iterdir()
            if p.name.startswith("repro_") and p.name.endswith(".yaml")
        )
        raise ConfigError(
            f"repro_row={row} picks a row of a paper's table (its packing and batch size), and "
            f"no reproduction preset defines that table here. Add one, e.g. experiment="
            f"repro_pacgan_ring repro_row={row} (presets: {', '.join(presets)}), or drop repro_row "
            "and pack on your own terms, e.g. d_input=[pack2] dataset.batch_size=128."
        )
    # The row is what compare sets the paper's numbers beside: packing given by hand under a
    # preset would be scored as the row it names (a PacGAN2 run beside the GAN's numbers).
    packs = [k for k, v in (_get(cfg, "d_input") or {}).items() if str(k).startswith("pack") and v]
    wanted = [] if row in (None, "gan") else [row.replace("pac", "pack")]
    if row is not None and sorted(packs) != wanted:
        raise ConfigError(
            f"d_input=[{','.join(packs)}] packs D's input under a reproduction preset whose row is "
            f"repro_row={row}, so compare would set the paper's {row} numbers beside it. Pick the "
            f"row instead, which brings its packing and batch: e.g. repro_row="
            f"{(packs[0].replace('pack', 'pac') if packs else 'gan')} (without d_input=)."
        )


PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


def _check_precision(cfg: DictConfig) -> None:
    """trainer.precision: auto (ganarena.run.precision) or a precision Lightning knows."""
    value = _get(cfg, "trainer.precision")
    if value is None or str(value) in PRECISIONS or str(value) in ("32", "64", "16", "bf16"):
        return
    raise ConfigError(
        f"trainer.precision={value!r} is not a precision ganarena-train knows. Use one of "
        f"{', '.join(PRECISIONS)}: auto picks bf16-mixed where this machine measures it faster "
        "(a GPU with bf16; a CPU with bf16 matrix units), else 32-true."
    )


def validate_train(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first bad value and how to fix it."""
    _check_repro_row(cfg)
    _number(cfg, "trainer.max_steps", integer=True)
    _number(cfg, "trainer.log_every_n_steps", integer=True)
    _number(cfg, "dataset.batch_size", integer=True)
    _number(cfg, "optim.n_critic", integer=True)
    _number(cfg, "loss.label_smoothing", low_ok=True, high=1.0)
    _number(cfg, "model.ema_decay", high=1.0, nullable=True)
    _number(cfg, "callbacks.checkpoint.every_n_steps", integer=True)
    _number(cfg, "callbacks.checkpoint.keep", integer=True, low_ok=True)
    _number(cfg, "callbacks.samples.every_n_steps", integer=True)
    _number(cfg, "callbacks.samples.n", integer=True, high=1025)  # one grid, not a dataset
    for opt in ("g", "d"):
        _number(cfg, f"optim.{opt}.lr")
    for name in _get(cfg, "regularizer") or {}:  # the regularisers' numbers (absent: skipped)
        for key in ("weight", "gamma", "value", "weight_end", "gamma_end"):
            _number(cfg, f"regularizer.{name}.{key}", low_ok=key != "value", nullable=True)
        _number(cfg, f"regularizer.{name}.interval", integer=True, nullable=True)
    _check_precision(cfg)
    _check_conditional(cfg)
    _check_size(cfg)
    _check_tuned()
    if _get(cfg, "eval.backbone") not in (None, "none"):
        validate_eval(cfg)
    seed = _get(cfg, "seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(
            f"seed must be a non-negative integer or null, got {seed!r}. Fix it on the command "
            f"line, e.g. seed={example('seed', 0)}."
        )
    _check_run_options(cfg, seed)
    _check_unused_overrides(cfg, _command_line())
    d_norm = _get(cfg, "model.d_norm")
    if d_norm is not None and d_norm not in D_NORMS:
        raise ConfigError(
            f"model.d_norm must be one of {', '.join(D_NORMS)}, got {d_norm!r}. Fix it on the "
            "command line, e.g. model.d_norm=auto."
        )
    # a discriminator may declare that it has no normalisation layers whatever model.d_norm says
    ignores = _declared(cfg, "model.discriminator", "ignores_norm", default=False)
    batch_norm_d = d_norm == "batch" and not ignores
    for reg in _regularizers(cfg):
        if reg.per_sample and reg.network == "d" and batch_norm_d:
            raise ConfigError(
                f"{reg.name} is a per-sample gradient penalty and invalid with batch norm in the "
                f"discriminator {reg.why}. Set {reg.off}.".replace(" .", ".")
            )

    _check_speed(cfg)
    _number(cfg, "freeze_d", integer=True, low_ok=True, nullable=True)
    if _get(cfg, "freeze_d") and _get(cfg, "init_from") is None:
        raise ConfigError(
            f"freeze_d={_get(cfg, 'freeze_d')} keeps discriminator layers as loaded, which only "
            "makes sense when fine-tuning: add init_from=<another run>/checkpoints/last.ckpt, "
            "or drop freeze_d."
        )
    if _get(cfg, "freeze_d") and _declared(cfg, "task", "freezable_d", default=False) is False:
        raise ConfigError(
            f"freeze_d applies to the GAN task's one discriminator, not to task="
            f"{_get(cfg, 'task.name')}. Drop freeze_d."
        )

    # Checks that import torch (the model classes, the loss registry): after the cheap ones, so a
    # bad value is reported without loading it (tests/test_startup.py).
    _check_kinds(cfg)
    loss = _check_loss(cfg)
    if _get(cfg, "loss.label_smoothing") and not loss.prob:
        raise ConfigError(
            f"loss.label_smoothing applies to the cross-entropy losses (minimax, nonsaturating), "
            f"not to loss={_get(cfg, 'loss.name')}. Set loss.label_smoothing=0 or pick a BCE loss."
        )


def _check_loss(cfg: DictConfig) -> Any:
    """The loss yaml's `objective` built: a ganarena.gan.losses.Loss, or a ConfigError naming the fix."""
    from ganarena.gan.losses import Loss

    spec = _get(cfg, "loss.objective")
    name = _get(cfg, "loss.name")
    if spec is None:
        raise ConfigError(
            f"loss={name} has no `objective`: a loss yaml names its Loss class as objective._target_ "
            '(e.g. objective: {_target_: ganarena.gan.losses.NonSaturating}; README, "Extending '
            'ganarena"). Add it, or choose a built-in loss with loss=<name>.'
        )
    loss = build(spec)  # an import or argument error becomes a ConfigError naming the target
    if not isinstance(loss, Loss):
        raise ConfigError(
            f"loss.objective of loss={name} built a {type(loss).__name__}, not a ganarena.gan.losses."
            "Loss: subclass it and define d(real, fake) and g(real, fake)."
        )
    return loss


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def _check_tuned() -> None:
    """`tuned` (conf/tuned/, picked as <model>_<loss> and skipped where that pair has no file) may
    be overridden only by a file that exists there, or `none`: a misspelt name must not silently
    train without the settings it was meant to bring."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    choices = HydraConfig.get().runtime.choices
    choice = choices.get("tuned")
    if choice is None or choice == f"{choices.get('model')}_{choices.get('loss')}":
        return
    options = GlobalHydra.instance().config_loader().get_group_options("tuned")
    if choice not in options:
        raise ConfigError(
            f"tuned={choice} is not a tuned-settings file (conf/tuned/): the options are "
            f"{', '.join(options)}. Each is a model+loss pair, picked up automatically when that "
            "pair trains; pass tuned=none to train with the loss's own settings instead."
        )


def _check_speed(cfg: DictConfig) -> None:
    for key in ("speed.fused_optimizers", "speed.batched_loader", "speed.channels_last"):
        value = _get(cfg, key)
        if key == "speed.channels_last" and value == "auto":
            continue  # decided with trainer.precision=auto (ganarena.run.precision)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(
                f"{key} must be true or false"
                + (" (or auto)" if key == "speed.channels_last" else "")
                + f", got {value!r}. Fix it on the command line, e.g. {key}="
                + ("auto." if key == "speed.channels_last" else "true.")
            )
    mode = _get(cfg, "speed.compile")
    if mode is None:
        return
    if mode not in COMPILE_MODES:
        raise ConfigError(
            f"speed.compile must be null (off) or one of {', '.join(COMPILE_MODES)} (torch.compile "
            f"modes), got {mode!r}. E.g. speed.compile=default."
        )
    penalties = [r.key for r in _regularizers(cfg) if r.double_backward]
    if penalties:
        raise ConfigError(
            f"speed.compile={mode} cannot train with {', '.join(penalties)}: these gradient "
            "penalties differentiate through a gradient (double backward), which torch.compile "
            "does not support. Drop speed.compile (speed.compile=null) for this recipe."
        )


def _check_plugins(cfg: DictConfig) -> None:
    """Plug-ins that a task or dataset cannot take: regularizer=[...] with a task whose config has
    no `regularizers` entry (it would be ignored), augment= on data that are not images."""
    listed = [k for k, v in (_get(cfg, "regularizer") or {}).items() if v is not None]
    task = _get(cfg, "task")
    if listed and isinstance(task, DictConfig) and "regularizers" not in task:
        raise ConfigError(
            f"regularizer=[{','.join(listed)}] adds terms to the GAN task's discriminator loss, but "
            f"task={_get(cfg, 'task.name')} does not apply plug-in regularisers (its config has "
            "no `regularizers` entry), so they would be silently ignored. Drop them "
            "(regularizer=[]) or train with task=gan."
        )
    applied = _declared(cfg, "task", "regularizers_applied", default=None)
    if listed and isinstance(applied, tuple):  # a task that applies only some kinds
        from hydra.utils import get_class

        for name in listed:
            target = _get(cfg, f"regularizer.{name}._target_")
            try:
                kind = get_class(target).__name__ if isinstance(target, str) else None
            except Exception:  # noqa: BLE001 - a bad _target_ is reported by `declared`
                continue
            if kind not in applied:
                raise ConfigError(
                    f"regularizer.{name} ({kind}) cannot apply to task={_get(cfg, 'task.name')}: "
                    f"it applies only {', '.join(applied)}. Drop it: ~regularizer.{name} (or "
                    "regularizer=[])."
                )
    augment, size = _get(cfg, "augment.name"), _get(cfg, "dataset.image_size")
    if augment not in (None, "none") and isinstance(size, int) and size < 8:
        raise ConfigError(
            f"augment={augment} transforms images (shifts, cutout, colour, rotation), but "
            f"dataset={_get(cfg, 'dataset.name')} serves {size}x{size} inputs (points, not "
            "pictures), which these operations would only corrupt. Drop it (augment=none)."
        )


def _declared(cfg: DictConfig, node: str, attr: str, default: Any = "generative") -> Any:
    """A class attribute of the `_target_` of config node `node` (`default` when the class
    lacks it), or None when the target cannot be imported (instantiation reports that later)."""
    from hydra.utils import get_class

    target = _get(cfg, f"{node}._target_")
    if not isinstance(target, str):
        return None
    try:
        cls = get_class(target)
    except Exception:  # noqa: BLE001 - a bad _target_ is reported when it is built
        return None
    return getattr(cls, attr, default)


def _check_kinds(cfg: DictConfig) -> None:
    """The task's kind (tasks/base.py: "generative" or "translation") must match what the dataset
    serves (`serves`, "generative" unless a datamodule says otherwise) and what the model takes:
    a latent vector (an int model.latent_dim) for generative tasks, images (null) for translation."""
    _check_plugins(cfg)  # what a task or dataset cannot take (regularizer=, augment=)
    task_kind = _declared(cfg, "task", "kind")
    data_kind = _declared(cfg, "dataset", "serves")
    task, dataset = _get(cfg, "task.name") or "gan", _get(cfg, "dataset.name")
    model = _get(cfg, "model.name")
    if task_kind == "translation" and data_kind not in (None, "translation"):
        raise ConfigError(
            f"task={task} translates images between two domains, but dataset={dataset} holds one. "
            "Use a two-domain dataset: dataset=mnist2inverted, mnist2digits or unpaired_folder "
            "(or the whole recipe: experiment=cyclegan_digits)."
        )
    if task_kind == "generative" and data_kind == "translation":
        raise ConfigError(
            f"dataset={dataset} holds two image domains for translation, but task={task} draws "
            "images from noise and trains on one. Use a single-domain dataset (e.g. dataset=mnist), "
            "or a translation task: task=cyclegan model=resnet."
        )
    latent = _get(cfg, "model.latent_dim")
    if task_kind == "translation":
        if latent is not None:
            raise ConfigError(
                f"task={task} maps images to images, but model={model} draws them from a latent "
                f"vector (model.latent_dim={latent!r}). Use an image-to-image model: model=resnet."
            )
        return
    generator = _get(cfg, "model.generator")
    takes_latent = not isinstance(generator, DictConfig) or "latent_dim" in generator
    if latent is None and not takes_latent:  # an image-to-image model (else: "not an integer")
        raise ConfigError(
            f"model={model} maps images to images (model.latent_dim: null), so it cannot draw "
            f"images from noise for task={task}. Use a generative model (e.g. model=dcgan), or "
            "train it as a translator: task=cyclegan with a two-domain dataset."
        )
    _number(cfg, "model.latent_dim", integer=True, high=100_001)


# Discriminator normalisations the models accept; "auto" is resolved by resolve_auto.
D_NORMS = ("auto", "batch", "layer", "instance", "none")


def _regularizers(cfg: DictConfig) -> list:
    """The regularisers a config turns on (regularizer=[...] and a loss's or preset's own)."""
    return declared(_get(cfg, "regularizer"))


def resolve_auto(cfg: DictConfig) -> None:
    """Replace model.d_norm=auto by what the paper of the active penalty prescribes: layer norm
    in a gradient-penalty critic (Gulrajani et al. 2017), none with R1 (Mescheder et al. 2018;
    StyleGAN2), and DCGAN's batch norm otherwise. The saved config records the result."""
    if _get(cfg, "model.d_norm") != "auto":
        return
    prescribed = [r.d_norm for r in _regularizers(cfg) if r.d_norm is not None]
    norm = prescribed[0] if prescribed else "batch"  # the first declared wins: GP before R1
    with open_dict(cfg):
        cfg.model.d_norm = norm


def _check_conditional(cfg: DictConfig) -> None:
    for key in ("model.conditional", "model.spectral_norm"):
        value = _get(cfg, key)
        if key == "model.conditional" and value == "auto":
            continue  # resolved by ganarena-train from the dataset's labels
        if not isinstance(value, bool):
            raise ConfigError(
                f"{key} must be true or false"
                + (" (or auto)" if key == "model.conditional" else "")
                + f", got {value!r}. Fix it on the command line, e.g. {key}=true."
            )
    cond = _get(cfg, "model.conditional")
    classes = _get(cfg, "model.num_classes")
    if classes is not None and cond is False:
        raise ConfigError(
            f"model.num_classes={classes!r} is set but model.conditional=false: the class count "
            "only matters for a conditional model and is read from the dataset. Drop "
            "model.num_classes, or add model.conditional=true."
        )


def _check_size(cfg: DictConfig) -> None:
    """Refuse an image size whose one training step cannot fit in memory (with the estimate):
    a real and a fake batch and one full-resolution feature map of `model.width` channels."""
    size, batch = _get(cfg, "dataset.image_size"), _get(cfg, "dataset.batch_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        if size is not None:
            shown = example("dataset.image_size", 32, _get(cfg, "dataset.name"))
            raise ConfigError(
                f"dataset.image_size must be a positive integer, got {size!r}. Fix it on the "
                f"command line, e.g. dataset.image_size={shown}."
            )
        return
    _number(cfg, "dataset.channels", integer=True, nullable=True)
    channels = _get(cfg, "dataset.channels") or 1
    width = _get(cfg, "model.width") if isinstance(_get(cfg, "model.width"), int) else 1
    check_memory(
        4.0 * batch * (2 * channels + width) * size * size,
        f"dataset.image_size={size} with dataset.batch_size={batch}",
        "Use a smaller dataset.image_size (e.g. 32 or 64) or dataset.batch_size.",
    )


def validate_cache(cfg: DictConfig) -> None:
    """The cache folder (GANARENA_CACHE / paths.cache_dir) must be a folder one can write, known
    before minutes of classifier training are spent on it."""
    raw = _get(cfg, "eval.cache_dir") or _get(cfg, "paths.cache_dir")
    if raw in (None, ""):
        return
    path = Path(str(raw))
    probe = nearest_existing(path)
    if not writable_dir(probe):
        what = "is a file" if probe.exists() and not probe.is_dir() else "is not writable"
        raise ConfigError(
            f"The cache folder {path} (paths.cache_dir, set by GANARENA_CACHE) cannot be used: "
            f"{probe} {what}. Point GANARENA_CACHE (or paths.cache_dir=) at a writable folder, "
            "or unset it to use outputs/cache."
        )


def validate_eval(cfg: DictConfig) -> None:
    """Types and ranges of the eval.* settings (ConfigError naming the first bad one), before
    anything slow runs."""
    _number(cfg, "eval.n_samples", integer=True, low=2, low_ok=True)
    _number(cfg, "eval.batch_size", integer=True, low=1, low_ok=True)
    _number(cfg, "eval.kid_subset_size", integer=True, low=2, low_ok=True)
    _number(cfg, "eval.seed", integer=True, low_ok=True)
    _number(cfg, "eval.n_real", integer=True, low=1, low_ok=True, nullable=True)
    _number(cfg, "eval.every_n_steps", integer=True, low_ok=True)
    if _get(cfg, "eval.n_samples_during") is not None:
        _number(cfg, "eval.n_samples_during", integer=True, low=2, low_ok=True)
    _number(cfg, "eval.mode_threshold", low_ok=True)
    validate_cache(cfg)
    for key in ("fid_infinity", "per_class_fid", "prdc", "allow_download"):
        value = cfg.eval.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"eval.{key} must be true or false, got {value!r}.")


def build(node: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, with failures reported as one-paragraph ConfigErrors.

    Hydra wraps constructor errors in InstantiationException; ours are unwrapped, anything else
    (e.g. torch refusing an optimizer argument) is named with the config node it came from.
    """
    kwargs.setdefault("_convert_", "all")  # plain lists/dicts: torch and friends expect them
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__ or e
        if isinstance(cause, GanarenaError):
            raise cause from None
        target = node.get("_target_", "?") if hasattr(node, "get") else "?"
        unknown = _unknown_key(target, cause)
        if unknown:
            raise ConfigError(unknown) from None
        raise ConfigError(
            f"Could not build {target} from the config: {type(cause).__name__}: "
            f"{str(cause).splitlines()[0] if str(cause) else ''}. Fix the value on the command line "
            "(see `--cfg job` for the resolved config)."
        ) from None


def _unknown_key(target: str, cause: BaseException) -> str | None:
    """The message for a key the built class does not take (`+dataset.balance=true` on a dataset
    without it): the key and the keys it does take, or None for any other failure."""
    import inspect
    import re

    from hydra.utils import get_class

    found = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if not isinstance(cause, TypeError) or not found:
        return None
    try:
        params = inspect.signature(get_class(target)).parameters
    except Exception:  # noqa: BLE001 - then the generic message serves
        return None
    keys = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if found[1] in keys:
        return None
    return (
        f"{target} does not take a `{found[1]}` option, so the config's `{found[1]}` key cannot "
        f"reach it. Its options: {', '.join(keys)}. Drop the key (or use a config whose class "
        "takes it)."
    )
