"""ganarena-compare on hand-made sweep folders: numbers, ordering, plots and every refusal.

The real end-to-end path (a multirun of ganarena-train, then the CLI) is in test_sweep.py; these
build job folders directly so that each case costs milliseconds.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from ganarena.compare import compare, main

EVAL = {
    "backbone": "domain-mnist-cnn",
    "n_real": 10000,
    "n_fake": 1000,
    "real_split": "test",
    "seed": 0,
    "image_size": 28,
    "classifier_train_s": 3.2,
}


def make_job(
    sweep,
    num,
    *,
    model="mlp",
    loss="hinge",
    seed=1,
    status="completed",
    fid=None,
    is_=2.0,
    kid=0.01,
    best=None,
    curve=None,
    eval_settings=EVAL,
    wall=10.0,
    ips=500.0,
    lr_d=2e-4,
    metrics=True,
):
    """A job folder as ganarena-train writes it; curve: {step: fid} written as val/fid scalars."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    config = {
        "model": {"name": model},
        "seed": seed,
        "dataset": {"name": "mnist", "limit": None},
        "loss": {"name": loss, "optimizer_d": {"lr": lr_d, "betas": [0.5, 0.999]}},
    }
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"model={model}", f"loss={loss}", f"seed={seed}", f"loss.optimizer_d.lr={lr_d}"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if curve:
        w = SummaryWriter(str(job / "tensorboard"))
        for step, value in curve.items():
            w.add_scalar("val/fid", value, step)
            w.add_scalar("val/is", 1.0 + value / 100, step)
        w.close()
    if not metrics:
        return job
    final = None
    if status == "completed" and fid is not None:
        final = {"fid": fid, "is": is_, "is_std": 0.1, "kid": kid, "kid_std": 0.001}
    summary = {
        "status": status, "steps": 100, "wall_s": wall, "imgs_per_s": ips, "final": final,
        "best": best if best is not None else ({"fid": fid, "step": 100} if final else None),
        "eval": eval_settings,
        "config": {"model": model, "loss": loss, "dataset": "mnist", "dataset_resolved": "mnist",
                   "seed": seed, "batch_size": 64, "max_steps": 100, "n_critic": 1,
                   "lr_g": 2e-4, "lr_d": lr_d, "ema_decay": None},
    }  # fmt: skip
    (job / "metrics.json").write_text(json.dumps(summary))
    return job


@pytest.fixture
def sweep(tmp_path):
    """2 variants x 3 seeds, plus a diverged run and a run that left no metrics.json."""
    s = tmp_path / "multirun"
    s.mkdir()
    (s / "multirun.yaml").write_text("hydra: {}\n")
    fids = {("mlp", 1): 30.0, ("mlp", 2): 34.0, ("mlp", 3): 29.0,
            ("dcgan", 1): 12.0, ("dcgan", 2): 15.5, ("dcgan", 3): 13.25}  # fmt: skip
    n = 0
    for (model, seed), fid in fids.items():
        curve = {50: fid * 2 + seed, 100: fid}
        make_job(s, n, model=model, seed=seed, fid=fid, is_=1.5 + seed / 10, kid=fid / 1000,
                 best={"fid": min(curve.values()), "step": 100}, curve=curve,
                 wall=10.0 + seed, ips=400.0 + 10 * seed)  # fmt: skip
        n += 1
    make_job(s, n, model="dcgan", seed=4, status="diverged")
    make_job(s, n + 1, model="mlp", seed=4, metrics=False)  # crashed before writing metrics.json
    return s


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def md_rows(markdown):
    """The table rows of comparison.md as lists of cells (header first)."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def parse_cell(cell):
    mean, _, std = cell.partition(" ± ")
    return float(mean), (float(std) if std else math.nan)


def test_table_matches_the_jobs_metrics(sweep, tmp_path):
    out = tmp_path / "out"
    result = compare([sweep], out=out)

    jobs = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    rows = {r["model"]: r for r in read_csv(out / "comparison.csv")}
    assert list(rows) == ["dcgan", "mlp"]  # sorted by mean final FID, lower first
    for model, row in rows.items():
        done = [j for j in jobs if j["config"]["model"] == model and j["status"] == "completed"]
        for key in ("fid", "is", "kid"):
            values = np.array([j["final"][key] for j in done])
            assert float(row[f"final_{key}_mean"]) == pytest.approx(values.mean(), rel=1e-12)
            assert float(row[f"final_{key}_std"]) == pytest.approx(values.std(ddof=1), rel=1e-12)
        best = np.array([j["best"]["fid"] for j in done])
        assert float(row["best_fid_mean"]) == pytest.approx(best.mean(), rel=1e-12)
        assert float(row["wall_s_mean"]) == pytest.approx(np.mean([j["wall_s"] for j in done]))
        assert float(row["imgs_per_s_mean"]) == pytest.approx(
            np.mean([j["imgs_per_s"] for j in done])
        )
        assert row["seeds"] == "3" and row["seed_values"] == "1 2 3"
    assert (rows["dcgan"]["diverged"], rows["dcgan"]["failed"]) == ("1", "0")
    assert (rows["mlp"]["diverged"], rows["mlp"]["failed"]) == ("0", "1")
    # best IS is not in metrics.json's best: it is the highest val/is point of each run's curve.
    dcgan_best_is = [1.0 + (2 * f + s) / 100 for f, s in ((12.0, 1), (15.5, 2), (13.25, 3))]
    assert float(rows["dcgan"]["best_is_mean"]) == pytest.approx(np.mean(dcgan_best_is), rel=1e-6)

    table = md_rows(result.markdown)
    header, body = table[0], table[1:]
    assert header[:3] == ["model", "loss", "dataset"]
    assert [r[0] for r in body] == ["dcgan", "mlp"]
    col = header.index("final FID")
    mean, std = parse_cell(body[0][col])
    dcgan = np.array([12.0, 15.5, 13.25])
    assert mean == pytest.approx(dcgan.mean(), rel=6e-3)
    assert std == pytest.approx(dcgan.std(ddof=1), rel=6e-3)
    assert body[0][header.index("seeds")] == "3" and body[0][header.index("diverged")] == "1"
    assert body[1][header.index("failed")] == "1"
    assert "sample standard deviation (ddof=1)" in result.markdown
    assert "backbone=domain-mnist-cnn" in result.markdown and "n_fake=1000" in result.markdown
    # The run without metrics.json is listed as failed, with the reason, not skipped.
    assert "job 7" in result.markdown and "no metrics.json" in result.markdown
    assert "job 6" in result.markdown and "diverged" in result.markdown
    assert (out / "comparison.md").read_text() == result.markdown


def test_plots_are_valid_images(sweep, tmp_path):
    compare([sweep], out=tmp_path)
    for name, min_size in (("fid_curves.png", (600, 300)), ("fid_box.png", (600, 150))):
        with Image.open(tmp_path / name) as im:
            im.verify()
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG"
            assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
            # Not a blank canvas: the curves/boxes put many distinct colours on it.
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20


def test_metric_option_sorts_and_names_the_plots(sweep, tmp_path):
    by_fid = compare([sweep], out=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    result = compare([sweep], out=tmp_path, metric="is")
    rows = read_csv(tmp_path / "comparison_is.csv")
    means = [float(r["final_is_mean"]) for r in rows]
    assert means == sorted(means, reverse=True)  # IS: higher is better
    assert "sorted by mean final IS (higher is better)" in result.markdown
    assert (tmp_path / "comparison_is.md").read_text() == result.markdown
    assert (tmp_path / "is_curves.png").is_file() and (tmp_path / "is_box.png").is_file()
    # The FID comparison written first is still there, byte for byte.
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert (tmp_path / "comparison.md").read_text() == by_fid.markdown


def test_group_by_a_config_path(tmp_path):
    s = tmp_path / "sweep"
    for n, (lr, seed, fid) in enumerate([(1e-4, 1, 20.0), (1e-4, 2, 22.0), (3e-4, 1, 10.0)]):
        make_job(s, n, lr_d=lr, seed=seed, fid=fid)
    result = compare([s], group_by=["loss", "loss.optimizer_d.lr"])
    rows = read_csv(s / "comparison.csv")
    assert [r["loss.optimizer_d.lr"] for r in rows] == ["0.0003", "0.0001"]
    assert [r["seeds"] for r in rows] == ["1", "2"]
    assert "Note:" not in result.markdown
    # Grouping them together anyway: the table says which swept setting it lumps together.
    hinted = compare([s], out=tmp_path / "lumped")
    assert "differ in the swept setting `loss.optimizer_d.lr`" in hinted.markdown


def test_mixed_eval_settings_are_refused_unless_allowed(tmp_path):
    s = tmp_path / "sweep"
    make_job(s, 0, seed=1, fid=10.0)
    make_job(
        s, 1, seed=2, fid=11.0, eval_settings={**EVAL, "n_fake": 10000, "classifier_train_s": 9}
    )
    with pytest.raises(
        Exception, match=r"different evaluation settings.*n_fake.*--allow-mixed-eval"
    ):
        compare([s])
    result = compare([s], allow_mixed_eval=True)
    assert "Mixed eval setting** n_fake" in result.markdown
    assert "classifier_train_s" not in result.markdown.split("Mixed")[-1]  # timings never count


def test_several_sweeps_are_merged(sweep, tmp_path):
    other = tmp_path / "more"
    make_job(other, 0, model="mlp", seed=9, fid=31.0)
    compare([sweep, other], out=tmp_path / "both")
    rows = {r["model"]: r for r in read_csv(tmp_path / "both" / "comparison.csv")}
    assert rows["mlp"]["seeds"] == "4" and "more/0" in rows["mlp"]["jobs"]


def test_a_sweep_without_scores_still_tabulates_counts_and_speed(tmp_path):
    s = tmp_path / "sweep"
    make_job(s, 0, fid=None, eval_settings=None)
    make_job(s, 1, seed=2, fid=None, eval_settings=None)
    result = compare([s])
    assert "No run was scored" in result.markdown
    row = md_rows(result.markdown)[1]
    assert row[3] == "–" and "2" in row
    assert (s / "fid_curves.png").is_file() and (s / "fid_box.png").is_file()


# -- refusals: one paragraph on stderr, exit 2, no traceback ---------------------------------------
def run_main(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def assert_one_paragraph(err):
    assert err.startswith("ganarena-compare: error: ")
    assert "Traceback" not in err and "\n\n" not in err.strip()


def test_refuses_what_is_not_a_sweep(tmp_path, capsys):
    single = tmp_path / "run"
    make_job(tmp_path, "run", fid=1.0)
    empty = tmp_path / "empty"
    empty.mkdir()
    launched = tmp_path / "launched"
    launched.mkdir()
    (launched / "multirun.yaml").write_text("hydra: {}\n")
    cases = [
        (tmp_path / "nope", "does not exist"),
        (single / "metrics.json", "is a file"),
        (single, "single run folder"),
        (empty, "not a Hydra sweep folder"),
        (launched, "no job folders"),
    ]
    for path, needle in cases:
        code, out, err = run_main([path], capsys)
        assert code == 2 and out == "", path
        assert_one_paragraph(err)
        assert needle in " ".join(err.split()), (needle, err)


def test_refuses_a_sweep_without_finished_runs(tmp_path, capsys):
    s = tmp_path / "sweep"
    make_job(s, 0, status="diverged")
    make_job(s, 1, metrics=False)
    code, _, err = run_main([s], capsys)
    assert code == 2
    assert_one_paragraph(err)
    flat = " ".join(err.split())
    assert "None of the 2 runs" in flat and "1 diverged" in flat and "no metrics.json" in flat
    assert not (s / "comparison.md").exists()


def test_rejects_unknown_group_by_and_metric(sweep, capsys):
    code, _, err = run_main([sweep, "--group-by", "model,optimizer"], capsys)
    assert code == 2
    assert_one_paragraph(err)
    flat = " ".join(err.split())
    assert "Unknown --group-by key 'optimizer'" in flat
    assert "model, loss, dataset, dataset_resolved, seed" in flat  # lists the valid keys
    code, _, err = run_main([sweep, "--group-by", "loss.optimizer_d"], capsys)
    assert code == 2 and "names a config section" in " ".join(err.split())
    code, _, err = run_main([sweep, "--metric", "precision"], capsys)
    assert code == 2 and "Unknown --metric 'precision'. Available: fid, is, kid" in " ".join(
        err.split()
    )


def test_cli_prints_the_table_and_lists_the_files(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert captured.out == (tmp_path / "o" / "comparison.md").read_text()
    assert "comparison.csv" in captured.err and "fid_box.png" in captured.err
