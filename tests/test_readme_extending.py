"""The README's "Extending ganarena" example is real: its files are written as shown and its
command trains the new model through the ordinary CLI."""

from __future__ import annotations

import json
import re
import shlex

from tests.conftest import REPO, run_cli


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("## Extending ganarena", 1)[1].split("\n## ", 1)[0]


def test_the_readme_model_example_trains(tmp_path, monkeypatch):
    section = readme_section()
    files = re.findall(r"```(?:python|yaml)\n# file: (\S+)\n(.*?)```", section, flags=re.S)
    assert {name for name, _ in files} == {"my_ext/my_models.py", "my_ext/conf/model/tiny.yaml"}
    for name, body in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    (command,) = re.findall(r"```bash\n(PYTHONPATH=.*?)```", section, flags=re.S)
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "PYTHONPATH=my_ext" and args[1] == "ganarena-train"
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "my_ext"))
    run = tmp_path / "run"
    overrides = [a.replace("file://my_ext", f"file://{tmp_path / 'my_ext'}") for a in args[2:]]
    res = run_cli(
        ["ganarena.train", *overrides, "trainer.max_steps=3", "dataset.limit=256",
         "trainer.enable_progress_bar=false", f"hydra.run.dir={run}"],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["model"] == "tiny"
    assert (run / "samples" / "step_000003.png").is_file()
