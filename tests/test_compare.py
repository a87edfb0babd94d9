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

from ganarena.report.compare import compare, main

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
    steps=100,
    n_critic=1,
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
    overrides = [f"model={model}", f"loss={loss}", f"seed={seed}", f"optim.d.lr={lr_d}"]
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
        "status": status, "steps": steps, "wall_s": wall, "imgs_per_s": ips, "final": final,
        "best": best if best is not None else ({"fid": fid, "step": steps} if final else None),
        "eval": eval_settings,
        "config": {"model": model, "loss": loss, "dataset": "mnist", "dataset_resolved": "mnist",
                   "seed": seed, "batch_size": 64, "max_steps": steps, "n_critic": n_critic,
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
    result = compare([s], group_by=["loss", "optim.d.lr"])
    rows = read_csv(s / "comparison.csv")
    assert [r["optim.d.lr"] for r in rows] == ["0.0003", "0.0001"]
    assert [r["seeds"] for r in rows] == ["1", "2"]
    assert "Note:" not in result.markdown
    # Grouping them together anyway: the table says which swept setting it lumps together.
    hinted = compare([s], out=tmp_path / "lumped")
    assert "differ in the swept setting `optim.d.lr`" in hinted.markdown


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
    assert "1 run diverged (NaN/inf losses): try lower learning rates" in flat
    assert not (s / "comparison.md").exists()


def test_nothing_completed_says_what_happened_per_status(tmp_path, capsys):
    """Interrupted runs are not told to lower their learning rates (issue #34)."""
    s = tmp_path / "sweep"
    make_job(s, 0, status="interrupted")
    make_job(s, 1, seed=2, status="interrupted")
    code, _, err = run_main([s], capsys)
    assert code == 2
    assert_one_paragraph(err)
    flat = " ".join(err.split())
    assert "2 interrupted" in flat and "2 runs stopped on a signal" in flat
    assert "ckpt_path=auto" in flat and "learning rate" not in flat
    r = tmp_path / "refused"
    make_job(r, 0, status="refused")
    make_job(r, 1, seed=2, status="failed")
    flat = " ".join(run_main([r], capsys)[2].split())
    assert "1 run refused before training" in flat and "1 run failed: the error is" in flat
    assert "learning rate" not in flat and "stopped on a signal" not in flat


def test_rejects_unknown_group_by_and_metric(sweep, capsys):
    code, _, err = run_main([sweep, "--group-by", "model,optimizer"], capsys)
    assert code == 2
    assert_one_paragraph(err)
    flat = " ".join(err.split())
    assert "Unknown --group-by key 'optimizer'" in flat
    assert "model, loss, dataset, dataset_resolved, seed" in flat  # lists the valid keys
    code, _, err = run_main([sweep, "--group-by", "optim.d"], capsys)
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


# -- tests, intervals, ranks, budgets ----------------------------------------------------------
def fid_sweep(root, fids, **kw):
    """A sweep with one job per (model, seed): fid from {model: [fid per seed]}."""
    s = root / "sweep"
    n = 0
    for model, values in fids.items():
        for seed, fid in enumerate(values, start=1):
            make_job(s, n, model=model, seed=seed, fid=fid, **kw)
            n += 1
    return s


def test_pairs_csv_and_intervals_equal_scipys(sweep, tmp_path):
    from scipy import stats

    result = compare([sweep], out=tmp_path)
    dcgan, mlp = [12.0, 15.5, 13.25], [30.0, 34.0, 29.0]
    welch = stats.ttest_ind(dcgan, mlp, equal_var=False)
    (pair,) = [r for r in read_csv(tmp_path / "comparison_pairs.csv") if r["budget"] == "final"]
    assert (pair["variant_a"], pair["variant_b"], pair["test"]) == ("dcgan", "mlp", "welch")
    assert float(pair["statistic"]) == pytest.approx(welch.statistic, rel=1e-12)
    assert float(pair["p"]) == pytest.approx(welch.pvalue, rel=1e-12)
    assert float(pair["p_adjusted"]) == pytest.approx(welch.pvalue, rel=1e-12)  # one pair: m=1
    low, high = welch.confidence_interval(0.95)
    assert (float(pair["ci_low"]), float(pair["ci_high"])) == (
        pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))  # fmt: skip
    assert float(pair["effect"]) == pytest.approx(np.mean(dcgan) - np.mean(mlp), rel=1e-12)
    assert pair["separated"] == "True" and pair["seeds_needed"] == "2"
    # Failed and diverged runs are counted beside the test, not silently left out.
    assert (pair["n_a"], pair["not_completed_a"]) == ("3", "1 diverged")
    assert (pair["n_b"], pair["not_completed_b"]) == ("3", "1 failed")
    rows = {r["model"]: r for r in read_csv(tmp_path / "comparison.csv")}
    for model, values in (("dcgan", dcgan), ("mlp", mlp)):
        lo, hi = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
        assert float(rows[model]["final_fid_ci_low"]) == pytest.approx(lo, rel=1e-12)
        assert float(rows[model]["final_fid_ci_high"]) == pytest.approx(hi, rel=1e-12)
    assert (rows["dcgan"]["rank"], rows["mlp"]["rank"]) == ("1", "2")
    # The verdict opens the markdown; the table shows rank and interval columns.
    first = result.markdown.split("\n\n")[1]
    assert first.startswith("**Verdict** (final FID; Welch's t-test, Holm-adjusted over 1 pair")
    assert "**dcgan** wins" in first and f"adjusted p ≤ {welch.pvalue:.2g}" in first
    assert "dcgan 1 diverged of 4 runs" in first
    header, body = md_rows(result.markdown)[0], md_rows(result.markdown)[1:]
    assert body[0][header.index("rank")] == "1"
    assert body[0][header.index("FID 95 % CI")] == f"[{lo_hi(dcgan)}]"


def lo_hi(values):
    from scipy import stats

    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    return f"{lo:.2f}, {hi:.2f}"


def test_ranks_with_ties_and_the_seeds_a_separation_would_need(tmp_path):
    from ganarena.report import significance as sig

    fids = {"a": [20.0, 22.5, 21.0, 23.0], "b": [21.5, 23.5, 20.5, 24.0],
            "c": [40.0, 41.0, 39.5, 42.0]}  # fmt: skip
    s = fid_sweep(tmp_path, fids)
    result = compare([s])
    rows = {r["model"]: r for r in read_csv(s / "comparison.csv")}
    assert [rows[m]["rank"] for m in "abc"] == ["1–2", "1–2", "3"]
    pairs = {(r["variant_a"], r["variant_b"]): r
             for r in read_csv(s / "comparison_pairs.csv") if r["budget"] == "final"}  # fmt: skip
    need = sig.seeds_needed(fids["a"], fids["b"], 0.05 / 3)  # Bonferroni over the 3 pairs
    assert pairs[("a", "b")]["seeds_needed"] == str(need) and need > 4
    assert pairs[("a", "b")]["separated"] == "False" and pairs[("a", "c")]["separated"] == "True"
    verdict = result.markdown.split("\n\n")[1]
    assert "the seeds cannot tell **a** (21.62) and **b** (22.38) apart" in verdict
    assert f"about {need} seeds per variant would separate them" in verdict
    assert "(80% power of a two-sided Welch test at α/m = 0.05/3, Holm's strictest step)" in verdict


def test_one_seed_per_variant_says_no_test_is_possible(tmp_path):
    s = fid_sweep(tmp_path, {"a": [10.0], "b": [30.0]})
    result = compare([s])
    verdict = result.markdown.split("\n\n")[1]
    assert "no test is possible between the two best, **a** and **b**" in verdict
    assert "one scored seed" in verdict
    assert "One scored seed, so no test is possible for: a, b" in result.markdown
    (pair,) = [r for r in read_csv(s / "comparison_pairs.csv") if r["budget"] == "final"]
    assert (
        pair["p"] == "" and pair["note"] == "no test: a has one scored seed; b has one scored seed"
    )
    assert [r["rank"] for r in read_csv(s / "comparison.csv")] == ["1–2", "1–2"]


def test_mann_whitney_and_bootstrap_options(tmp_path):
    from scipy import stats

    fids = {"a": [10.0, 11.0, 12.0], "b": [20.0, 21.0, 22.5]}
    s = fid_sweep(tmp_path, fids)
    result = compare([s], test="mannwhitney", ci="bootstrap", level=0.9, bootstrap_seed=3)
    (pair,) = [r for r in read_csv(s / "comparison_pairs.csv") if r["budget"] == "final"]
    assert float(pair["p"]) == pytest.approx(0.1, rel=1e-12)  # 3 vs 3: the smallest possible
    assert pair["separated"] == "False" and pair["test"] == "mannwhitney"
    assert "smallest possible p is 0.1, so it cannot separate them at α = 0.1" in result.markdown
    ref = stats.bootstrap((np.array(fids["a"]),), np.mean, confidence_level=0.9,
                          rng=np.random.default_rng(3)).confidence_interval  # fmt: skip
    row = read_csv(s / "comparison.csv")[0]
    assert float(row["final_fid_ci_low"]) == pytest.approx(ref.low, rel=1e-12)
    assert float(row["final_fid_ci_high"]) == pytest.approx(ref.high, rel=1e-12)
    assert row["ci"] == "90 % BCa bootstrap (9999 resamples, seed 3)"
    again = compare([s], test="mannwhitney", ci="bootstrap", level=0.9, bootstrap_seed=3)
    assert again.markdown == result.markdown  # seeded: the same report every time


def test_equal_budgets_show_a_variant_better_per_step_but_slower(tmp_path):
    """slow: better at every step, 3x slower per step; fast: runs 3x the steps in the same time."""
    s = tmp_path / "sweep"
    for seed in (1, 2, 3):
        make_job(s, f"slow{seed}", model="slow", seed=seed, fid=10.0 + seed, steps=100,
                 ips=1000.0, curve={50: 20.0 + seed, 100: 10.0 + seed})  # fmt: skip
        make_job(s, f"fast{seed}", model="fast", seed=seed, fid=5.0 + seed / 2, steps=300,
                 ips=3000.0, curve={100: 30.0 + seed, 200: 15.0 + seed, 300: 5.0 + seed / 2})  # fmt: skip
    result = compare([s])
    rows = {r["model"]: r for r in read_csv(s / "comparison.csv")}
    assert rows["slow"]["at_steps_budget"] == "100.0" and rows["slow"]["at_steps_rank"] == "1"
    assert float(rows["fast"]["at_steps_fid_mean"]) == pytest.approx(32.0)  # its step-100 score
    assert rows["fast"]["at_steps_rank"] == "2"
    assert float(rows["slow"]["at_images_budget"]) == pytest.approx(6400.0)  # 100 x batch 64
    assert rows["slow"]["at_images_rank"] == "1"
    # 6.4 s of training: slow's 100 steps at 64 images / 1000 img/s, fast's 300 at 3000 img/s.
    assert float(rows["fast"]["at_wall_budget"]) == pytest.approx(6.4)
    assert rows["fast"]["at_wall_rank"] == "1" and rows["slow"]["at_wall_rank"] == "2"
    assert float(rows["fast"]["s_per_step"]) == pytest.approx(64 / 3000)
    assert "- **at 100 generator steps**: 1 slow (12.00 ± 1.00); 2 fast (32.00 ± 1.00)." in (
        result.markdown
    )
    assert "- **at 6.40 s of training**: 1 fast (6.00 ± 0.5); 2 slow (12.00 ± 1.00)." in (
        result.markdown
    )


def test_equal_images_counts_the_critic_steps(tmp_path):
    """n_critic=5 consumes 5 batches per generator step: its first evaluation comes after the
    other variant's whole run, and the view says so instead of scoring it."""
    s = tmp_path / "sweep"
    for seed in (1, 2):
        make_job(s, f"a{seed}", model="a", seed=seed, fid=10.0 + seed, curve={50: 9.0, 100: 10.0})
        make_job(s, f"b{seed}", model="b", seed=seed, fid=8.0 + seed, n_critic=5,
                 curve={50: 9.0, 100: 8.0 + seed})  # fmt: skip
    result = compare([s])
    rows = {r["model"]: r for r in read_csv(s / "comparison.csv")}
    assert float(rows["b"]["images_per_step"]) == 320.0
    assert float(rows["a"]["at_images_budget"]) == pytest.approx(6400.0)
    assert rows["b"]["at_images_fid_mean"] == "" and rows["b"]["at_images_rank"] == ""
    assert "– b (first evaluated at 16,000)" in result.markdown


def write_eval(job, seed, fid, n_fake=1000, step=100):
    (job / "checkpoints").mkdir(exist_ok=True)
    result = {"scores": {"fid": fid}, "eval": {**EVAL, "seed": seed, "n_fake": n_fake},
              "inputs": {"step": step, "generator": "ema"}}  # fmt: skip
    (job / "checkpoints" / f"eval_2026-01-01_00-00-0{seed}-{n_fake}.json").write_text(
        json.dumps(result)
    )


def test_evaluation_seeds_are_reported_apart_from_training_seeds(tmp_path):
    s = fid_sweep(tmp_path, {"a": [10.0, 14.0], "b": [20.0, 23.0]})
    rescored = {0: [10.6, 9.7], 1: [13.2, 14.4, 14.1]}  # job -> fid at eval seeds 1, 2, ...
    for job, values in rescored.items():
        for seed, fid in enumerate(values, start=1):
            write_eval(s / str(job), seed, fid)
    write_eval(s / "0", 4, 99.0, n_fake=5000)  # other settings: set aside
    write_eval(s / "1", 5, 99.0, step=50)  # another checkpoint: set aside
    write_eval(s / "2", 1, 99.0)  # b has one eval seed beside training's: no spread to report
    result = compare([s])
    # Training's final score is the checkpoint's score at its eval seed (0).
    per_ckpt = [[10.0, *rescored[0]], [14.0, *rescored[1]]]
    pooled = math.sqrt(np.mean([np.var(v, ddof=1) for v in per_ckpt]))
    rows = {r["model"]: r for r in read_csv(s / "comparison.csv")}
    assert float(rows["a"]["eval_seed_fid_sd"]) == pytest.approx(pooled, rel=1e-12)
    assert (rows["a"]["eval_seed_checkpoints"], rows["a"]["eval_seeds"]) == ("2", "4")
    b_sd = np.std([20.0, 99.0], ddof=1)  # job 2: training 20.0 and the rescore 99.0
    assert float(rows["b"]["eval_seed_fid_sd"]) == pytest.approx(b_sd, rel=1e-12)
    assert rows["b"]["eval_seed_checkpoints"] == "1"
    line = (
        f"- a: eval-seed sd {pooled:.3g} (2 checkpoint(s) × up to 4 eval seeds), "
        f"training-seed sd {np.std([10.0, 14.0], ddof=1):.2f}"
    )
    assert line in result.markdown
    assert "2 ganarena-eval result(s) set aside" in result.markdown
    plain = compare([fid_sweep(tmp_path / "plain", {"a": [1.0, 2.0]})]).markdown
    assert "Evaluation noise is not separated from training noise here" in plain


def test_refuses_bad_test_options(sweep, capsys):
    cases = [
        (["--test", "ttest"], "Unknown --test 'ttest'. Use --test welch"),
        (["--ci", "normal"], "Unknown --ci 'normal'. Use --ci t"),
        (["--level", "95"], "--level must be a confidence level strictly between 0 and 1, got "
                            "'95'. Use e.g. --level 0.95 (--level 0.95 for 95 %)"),
        (["--level", "1"], "got '1'"),
        (["--level", "0"], "got '0'"),
        (["--level", "high"], "got 'high'"),
        (["--level", "nan"], "got 'nan'"),
        (["--bootstrap-method", "basic"], "Unknown --bootstrap-method 'basic'. Use bca"),
        (["--bootstrap-seed", "-1"], "--bootstrap-seed must be a non-negative integer"),
        (["--bootstrap-seed", "x"], "got 'x'"),
    ]  # fmt: skip
    for args, needle in cases:
        code, out, err = run_main([sweep, *args], capsys)
        assert code == 2 and out == "", args
        assert_one_paragraph(err)
        assert needle in " ".join(err.split()), (needle, err)
    assert not (sweep / "comparison.md").exists()  # refused before anything is written
