"""CSV, MLflow and W&B loggers (conf/logger/): each receives the scalars, the flattened config
and the final scores of a run, and (MLflow, W&B) its sample grids; all offline, read back here."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from ganarena.train import train
from tests.conftest import compose_train


def test_csv_mlflow_and_wandb_get_scalars_config_scores_and_samples(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, db = tmp_path / "run", tmp_path / "mlflow.db"
    cfg = compose_train(
        run,
        [
            "logger=[csv,mlflow,wandb]",
            f"logger.mlflow.tracking_uri=sqlite:///{db}",
            f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}",
            "eval=domain", "eval.n_samples=64", "eval.every_n_steps=3",
            "eval.classifier.epochs=1", "trainer.log_every_n_steps=1",
        ],
    )  # fmt: skip
    train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    fid = metrics["final"]["fid"]

    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    g_loss = [float(r["train/g_loss"]) for r in rows if r.get("train/g_loss")]
    assert len(g_loss) == 3  # one per generator step
    assert [float(r["val/fid"]) for r in rows if r.get("val/fid")] == pytest.approx([fid])
    assert float(next(r["final/fid"] for r in rows if r.get("final/fid"))) == pytest.approx(fid)
    hparams = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    assert hparams["loss"] == "nonsaturating" and hparams["model"] == "mlp"

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{db}")
    (found,) = client.search_runs([client.get_experiment_by_name("ganarena").experiment_id])
    assert found.data.params["loss"] == "nonsaturating"
    assert found.data.metrics["final/fid"] == pytest.approx(fid)
    history = client.get_metric_history(found.info.run_id, "train/g_loss")
    assert [m.value for m in history] == pytest.approx(g_loss, rel=1e-6)
    artifacts = [a.path for a in client.list_artifacts(found.info.run_id, "samples")]
    assert "samples/val_samples_000003.png" in artifacts

    (offline,) = (run / "wandb").glob("offline-run-*")
    images = sorted(p.name for p in (offline / "files" / "media" / "images").rglob("*.png"))
    assert any(n.startswith("samples_") for n in images) and list(offline.glob("run-*.wandb"))
