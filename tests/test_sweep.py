"""Real sweeps on the CPU: a multirun grid compared by ganarena-compare, an Optuna search, and the
launcher configs (joblib for local parallel jobs, SLURM built without submitting).

The two sweeps are real ganarena-train subprocesses (experiment=smoke: 256 bundled MNIST digits,
2 generator steps, evaluation on 64 images); they share one work folder, so the domain classifier
is trained once.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import cli_cache


def run_cli(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """conftest.run_cli with one OpenMP thread per process: on shared, busy cores torch's
    spin-waiting threads make these tiny jobs several times slower (measured: 80 s vs 13 s)."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "GANARENA_CACHE": cli_cache(cwd),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


GRID = ["model=mlp,dcgan", "loss=nonsaturating,hinge", "seed=1,2"]
# One grid point (dcgan, hinge, seed 2) gets a learning rate that turns D's weights into inf.
FAIL_ONE = [
    "optim.d.lr='${oc.select:lr_d_at.${model.name}_${loss.name}_${seed},0.0002}'",
    "+lr_d_at={dcgan_hinge_2:1e30}",
]
FAILING = ("dcgan", "hinge", 2)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweeps")


@pytest.fixture(scope="module")
def grid(workdir) -> Path:
    """2 models x 2 losses x 2 seeds of experiment=smoke, one of them forced to diverge."""
    sweep = workdir / "grid"
    proc = run_cli(
        ["ganarena.train", "-m", "experiment=smoke", *GRID, *FAIL_ONE, f"hydra.sweep.dir={sweep}"],
        cwd=workdir, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def jobs(sweep: Path) -> list[Path]:
    return sorted(
        (p for p in sweep.iterdir() if (p / ".hydra").is_dir()), key=lambda p: int(p.name)
    )


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def key(m: dict) -> tuple:
    c = m["config"]
    return c["model"], c["loss"], c["seed"]


@pytest.mark.slow
def test_multirun_writes_a_run_folder_per_job_and_survives_a_divergence(grid):
    assert (grid / "multirun.yaml").is_file()
    folders = jobs(grid)
    assert [p.name for p in folders] == [str(i) for i in range(8)]
    runs = {key(metrics(p)): (p, metrics(p)) for p in folders}
    assert set(runs) == {(m, lo, s) for m in ("mlp", "dcgan") for lo in ("nonsaturating", "hinge")
                         for s in (1, 2)}  # fmt: skip
    for k, (job, m) in runs.items():
        if k == FAILING:
            assert m["status"] == "diverged" and m["config"]["lr_d"] == 1e30
            assert m["final"] is None
            continue
        # The other seven finished despite the divergence, each fully evaluated.
        assert m["status"] == "completed", (k, m["status"])
        assert m["steps"] == 2 and math.isfinite(m["final"]["fid"])
        assert m["eval"]["n_fake"] == 64 and m["best"]["step"] in (1, 2)
        assert (job / "checkpoints" / "last.ckpt").is_file()
        acc = EventAccumulator(str(job / m["tensorboard"]), size_guidance={"scalars": 0})
        acc.Reload()
        assert [e.step for e in acc.Scalars("val/fid")] == [1, 2]  # a curve, not a point


def read_table(path):
    with open(path, newline="") as f:
        return {(r["model"], r["loss"]): r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_compare_tabulates_the_sweep(grid, workdir):
    out = workdir / "comparison"
    proc = run_cli(["ganarena.report.compare", str(grid), "--out", str(out)], cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    markdown = (out / "comparison.md").read_text()
    assert proc.stdout == markdown

    # Recompute every variant's numbers from the jobs' metrics.json.
    by_variant: dict[tuple, list[dict]] = {}
    for job in jobs(grid):
        m = metrics(job)
        by_variant.setdefault(key(m)[:2], []).append(m)
    table = read_table(out / "comparison.csv")
    assert set(table) == set(by_variant)
    for variant, runs in by_variant.items():
        row = table[variant]
        done = [m for m in runs if m["status"] == "completed"]
        assert row["seeds"] == str(len(done))
        assert row["diverged"] == str(sum(m["status"] == "diverged" for m in runs))
        assert row["failed"] == "0"
        for name in ("fid", "is", "kid"):
            final = np.array([m["final"][name] for m in done])
            assert float(row[f"final_{name}_mean"]) == pytest.approx(final.mean(), rel=1e-9)
            if len(done) > 1:
                assert float(row[f"final_{name}_std"]) == pytest.approx(
                    final.std(ddof=1), rel=1e-9, abs=1e-15
                )
            else:
                assert row[f"final_{name}_std"] == ""  # one run: no spread to report
        best = np.array([m["best"]["fid"] for m in done])
        assert float(row["best_fid_mean"]) == pytest.approx(best.mean(), rel=1e-9)
        wall = np.mean([m["wall_s"] for m in done])
        assert float(row["wall_s_mean"]) == pytest.approx(wall, rel=1e-9)
    assert table[FAILING[:2]]["seeds"] == "1" and table[FAILING[:2]]["diverged"] == "1"

    # The markdown table: sorted by mean final FID, the diverged job listed under it.
    rows = [ln.strip("|").split("|") for ln in markdown.splitlines() if ln.startswith("| ")]
    header, body = [c.strip() for c in rows[0]], [[c.strip() for c in r] for r in rows[1:]]
    order = [(r[0], r[1]) for r in body]
    means = [float(table[v]["final_fid_mean"]) for v in order]
    assert means == sorted(means)
    for r in body:
        expected = float(table[(r[0], r[1])]["final_fid_mean"])
        shown = float(r[header.index("final FID")].split(" ± ")[0])
        assert shown == pytest.approx(expected, rel=6e-3)
    assert "sample standard deviation (ddof=1)" in markdown
    assert "n_fake=64" in markdown and "backbone=domain-" in markdown
    failing_job = next(j.name for j in jobs(grid) if key(metrics(j)) == FAILING)
    assert (
        f"- job {failing_job} (model=dcgan, loss=hinge, dataset=mnist_sample, seed=2): diverged"
        in markdown
    )

    for name in ("fid_curves.png", "fid_box.png"):
        with Image.open(out / name) as im:
            im.verify()
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] >= 600 and im.size[1] >= 200


def text(acc, tag: str) -> str:
    from tensorboard.util import tensor_util

    (event,) = acc.Tensors(f"{tag}/text_summary")
    return tensor_util.make_ndarray(event.tensor_proto).item().decode()


@pytest.mark.slow
def test_tensorboard_shows_one_row_per_job_named_by_its_overrides(grid):
    """The event files read back as TensorBoard's server reads them (issue #17)."""
    from ganarena.report.compare import load_run, read_curves
    from tests.test_hparams import session_groups, value

    logdir = grid / "tensorboard"  # `tensorboard --logdir <sweep>/tensorboard`
    labels = {f"model={m},loss={lo},seed={s}" for m in ("mlp", "dcgan")
              for lo in ("nonsaturating", "hinge") for s in (1, 2)}  # fmt: skip
    assert {p.name for p in logdir.iterdir()} == labels  # the run picker's names

    # HParams: one row per job (its own session group, named by its run), the swept keys shown.
    experiment, groups = session_groups(logdir)
    assert {g.name for g in groups} == labels and all(len(g.sessions) == 1 for g in groups)
    shown = {h.name for h in experiment.hparam_infos if h.differs}
    assert shown == {"model", "loss", "seed", "health", "status"}
    assert "The sweep varies model, loss, seed." in experiment.description
    for g in groups:
        assert g.name == "model={},loss={},seed={}".format(
            *(value(g.hparams[k]) for k in ("model", "loss", "seed")))  # fmt: skip
        fid = {m.name.tag: m.value for m in g.metric_values}.get("val/fid")
        if value(g.hparams["lr_d"]) == 1e30:  # the diverged job
            assert [s.status for s in g.sessions] == [2] and fid is None
        else:
            assert math.isfinite(fid) and value(g.hparams["health"]) == "unreliable"

    for job in jobs(grid):
        m = metrics(job)
        if m["status"] != "completed":
            continue
        c = m["config"]
        label = f"model={c['model']},loss={c['loss']},seed={c['seed']}"
        assert m["tensorboard"] == f"../tensorboard/{label}"
        acc = EventAccumulator(str(logdir / label), size_guidance={"images": 0, "tensors": 0})
        acc.Reload()
        tags = acc.Tags()
        # Time Series groups cards by the tag's first part: train/ and val/ only (both open).
        assert {t.split("/")[0] for t in tags["scalars"] + tags["images"]} == {"train", "val"}
        prob = c["loss"] == "nonsaturating"  # D read as a probability; hinge: raw critic scores
        assert {"train/d_real_prob", "train/d_fake_prob"} <= set(tags["scalars"]) if prob else (
            {"train/critic_real", "train/critic_fake"} <= set(tags["scalars"]))  # fmt: skip
        assert "train/wasserstein" not in tags["scalars"]  # hinge's score gap is no W1 estimate
        assert {"train/grad_norm_d", "train/grad_norm_g", "train/lr_d", "train/lr_g"} <= set(
            tags["scalars"])  # fmt: skip
        assert [e.step for e in acc.Images("val/samples")] == [1, 2]  # every evaluation step
        assert [e.step for e in acc.Images("val/real")] == [0]  # once
        config = yaml.safe_load(text(acc, "config"))
        assert config["loss"]["name"] == c["loss"] and config["seed"] == c["seed"]
        assert text(acc, "verdict").startswith("UNRELIABLE scores")  # smoke: a chance classifier
        run = load_run(job, job.name)
        read_curves(run, ["fid"])  # ganarena-compare finds the events through metrics.json
        assert [step for step, _ in run.curves["fid"]] == [1, 2]


@pytest.mark.slow
def test_optuna_search_reports_a_best_value(workdir):
    sweep = workdir / "optuna"
    # hparams_search=optuna sets hydra.mode=MULTIRUN: no -m needed.
    proc = run_cli(
        ["ganarena.train", "experiment=smoke", "hparams_search=optuna", "hydra.sweeper.n_trials=3",
         f"hydra.sweep.dir={sweep}"],
        cwd=workdir, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [metrics(j) for j in jobs(sweep)]
    assert len(trials) == 3 and all(t["status"] == "completed" for t in trials)
    assert result["name"] == "optuna"
    assert result["best_value"] == pytest.approx(min(t["final"]["fid"] for t in trials))
    params = result["best_params"]
    assert set(params) == {"optim.g.lr", "optim.d.lr", "optim.g.betas.0",
                           "optim.g.betas.1", "optim.n_critic"}  # fmt: skip
    assert 1e-5 <= params["optim.g.lr"] <= 1e-3
    assert params["optim.n_critic"] in (1, 2, 5)
    best_job = next(j for j in jobs(sweep) if metrics(j)["final"]["fid"] == result["best_value"])
    best = metrics(best_job)
    assert best["config"]["lr_g"] == pytest.approx(params["optim.g.lr"])
    assert best["config"]["n_critic"] == params["optim.n_critic"]
    saved = yaml.safe_load((best_job / ".hydra" / "config.yaml").read_text())
    betas = saved["optim"]["g"]["betas"]
    assert betas[0] == pytest.approx(params["optim.g.betas.0"])
    assert saved["optim"]["d"]["betas"] == "${optim.g.betas}"  # D follows G


# -- presets and launchers ---------------------------------------------------------------------------
def compose_hydra(overrides):
    with initialize_config_module("ganarena.conf", version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def sweep_jobs(cfg) -> list[list[str]]:
    """The jobs Hydra's basic sweeper makes of the config's hydra.sweeper.params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    overrides = OverridesParser.create().parse_overrides(params)
    return [
        list(combo)
        for combo in itertools.product(
            *[[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in overrides]
        )
    ]


@pytest.mark.parametrize(
    ("preset", "n_jobs", "fixed"),
    [("loss_zoo", 36, {"dataset.name": "mnist", "trainer.max_steps": 2000}),
     ("seed_study", 10, {"trainer.max_steps": 2000})],
)  # fmt: skip
def test_presets_define_their_grids(preset, n_jobs, fixed):
    cfg = compose_hydra(["eval=none", f"experiment={preset}"])
    jobs_ = sweep_jobs(cfg)
    assert len(jobs_) == n_jobs and len({tuple(j) for j in jobs_}) == n_jobs
    for key_, value_ in fixed.items():
        assert OmegaConf.select(cfg, key_) == value_
    if preset == "loss_zoo":
        losses = {o.split("=")[1] for j in jobs_ for o in j if o.startswith("loss=")}
        assert losses == {"minimax", "nonsaturating", "lsgan", "wgan", "wgan_gp", "hinge"}
    # Every grid point composes (a typo in a preset would only surface mid-sweep otherwise).
    for job in jobs_[:: max(1, n_jobs // 6)]:
        compose_hydra(["eval=none", f"experiment={preset}", *job])


def test_parallel_launcher_is_the_joblib_plugin_with_defaults():
    cfg = compose_hydra(["hydra/launcher=parallel", "hydra.launcher.n_jobs=3"])
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "JoblibLauncher"
    assert launcher.joblib == {**launcher.joblib, "n_jobs": 3, "prefer": "processes"}


# hydra/launcher=slurm without a cluster (tests/test_slurm_cluster.py runs it on a real one).
def slurm_params(overrides):
    import ganarena.run.slurm  # noqa: F401 - registers ${ganarena.run.slurm:...} (the CLI imports it)

    cfg = compose_hydra(["hydra/launcher=slurm", *overrides])
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True), cfg


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [([], (None, 1, 1, 3)),  # the default (CPU) run: MNIST, 70,000 images' worth of memory
     (["experiment=smoke"], (None, 1, 1, 3)),
     (["dataset=cifar10"], (None, 1, 1, 4)),
     (["dataset.num_workers=3"], (None, 1, 4, 3)),
     (["accelerator=gpu"], (1, 1, 4, 5)),
     (["accelerator=ddp", "trainer.devices=4", "+trainer.num_nodes=2"], (4, 4, 4, 20)),
     (["accelerator=gpu", "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=2",
       "hydra.launcher.mem_gb=7"], (None, 1, 2, 7))],
)  # fmt: skip
def test_slurm_requests_follow_the_job(overrides, expected):
    """GPUs only for a GPU accelerator; CPUs and memory from the trainer and the data."""
    p, cfg = slurm_params(overrides)
    assert (p["gpus_per_node"], p["tasks_per_node"], p["cpus_per_task"], p["mem_gb"]) == expected
    assert p["nodes"] == OmegaConf.select(cfg, "trainer.num_nodes", default=1)
    assert p["_target_"] == "hydra_plugins.ganarena_slurm.SlurmLauncher"


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_readme_slurm_commands_resolve(tmp_path, kind):
    """The documented dry runs (docs/how-to/clusters.md): the CPU command asks for no GPU, the
    GPU one for trainer.devices."""
    readme = (Path(__file__).parents[1] / "docs" / "how-to" / "clusters.md").read_text()
    command = next(
        ln for ln in readme.replace("\\\n", " ").splitlines()
        if "--cfg all --resolve -p hydra.launcher" in ln and f"partition={kind}" in ln
    )  # fmt: skip
    args = command.split("ganarena-train", 1)[1].split("#")[0].split()
    res = run_cli(["ganarena.train", *args], tmp_path, timeout=120)  # prints, creates nothing
    assert res.returncode == 0, res.stderr[-2000:]
    launcher = yaml.safe_load(res.stdout)
    if kind == "cpu":
        assert launcher["gpus_per_node"] is None and launcher["tasks_per_node"] == 1
    else:
        devices = int(next(a for a in args if a.startswith("trainer.devices=")).split("=")[1])
        assert launcher["gpus_per_node"] == launcher["tasks_per_node"] == devices == 4
        assert launcher["nodes"] == 2


PARTITIONS = [
    {"PartitionName": "gpu", "Default": "NO", "MaxNodes": "UNLIMITED", "MaxTime": "2-00:00:00",
     "MaxCPUsPerNode": "UNLIMITED", "MaxMemPerNode": "UNLIMITED"},
    {"PartitionName": "cpu", "Default": "YES", "MaxNodes": "1", "MaxTime": "UNLIMITED",
     "MaxCPUsPerNode": "16", "MaxMemPerNode": "64000"},
]  # fmt: skip
NODES = [
    {"NodeName": f"g{i}", "CPUTot": "32", "RealMemory": "256000", "Gres": "gpu:a100:4(S:0-1)",
     "Partitions": "gpu"} for i in (1, 2)
] + [{"NodeName": "c1", "CPUTot": "64", "RealMemory": "512000", "Gres": "(null)",
      "Partitions": "cpu"}]  # fmt: skip


def fake_scontrol(*args):
    return {"partition": PARTITIONS, "node": NODES}.get(args[0], [])


def test_slurm_request_is_checked_against_the_partition(monkeypatch):
    from ganarena.run import slurm

    monkeypatch.setattr(slurm, "scontrol", fake_scontrol)
    ok = {"partition": "gpu", "nodes": 2, "tasks_per_node": 4, "gpus_per_node": 4,
          "cpus_per_task": 8, "mem_gb": 200, "timeout_min": 240}  # fmt: skip
    assert slurm.check_request(ok) is None
    for change, needle in [
        ({"gpus_per_node": 8, "tasks_per_node": 8, "cpus_per_task": 4}, "8 GPUs"),
        ({"cpus_per_task": 16}, "64 CPUs (4 task(s) x cpus_per_task 16)"),
        ({"mem_gb": 300}, "300 GB memory"),
        ({"nodes": 3}, "3 node(s)"),
        ({"timeout_min": 5000}, "MaxTime 2-00:00:00"),
    ]:
        problem = slurm.check_request({**ok, **change})
        assert problem.startswith("this SLURM request can never start"), problem
        assert needle in problem and "partition 'gpu' offers at most 2 node(s)" in problem
        assert "its largest node has 32 CPUs, 250.0 GB (RealMemory 256000 MB) and 4 GPUs" in problem
    # The default partition (null) is the one marked Default=YES; its caps bind below the node's.
    cpu = {"partition": None, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 16,
           "gpus_per_node": None, "mem_gb": 60, "timeout_min": 240}  # fmt: skip
    assert slurm.check_request(cpu) is None
    assert "MaxCPUsPerNode 16" in slurm.check_request({**cpu, "cpus_per_task": 17})
    assert "MaxMemPerNode 64000" in slurm.check_request({**cpu, "mem_gb": 63})
    assert "names no partition of this cluster (its partitions: gpu, cpu" in slurm.check_request(
        {**cpu, "partition": "bigmem"})  # fmt: skip
    assert "trainer.devices=4), not auto or -1" in slurm.check_request({**ok, "tasks_per_node": -1})
    monkeypatch.setattr(slurm, "scontrol", lambda *a: None)  # no cluster answering: no check
    assert slurm.check_request({**ok, "nodes": 30}) is None
    assert slurm.gpus("gpu:a100:2(S:0),gpu:v100:2,shard:8") == 4 and slurm.gpus("(null)") == 0
    assert slurm.minutes("1-02:03:00") == 1563 and slurm.minutes("30:00") == 30


def test_slurm_job_threads_are_capped_to_its_cpus(monkeypatch):
    from ganarena.run import slurm

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        monkeypatch.setenv("OMP_NUM_THREADS", "8")
        monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
        assert slurm.cap_threads(4) == 1  # Slurm's number wins over the request
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("SLURM_CPUS_PER_TASK")
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert slurm.cap_threads(4) == 2  # fewer threads asked for: kept
    finally:
        torch.set_num_threads(before)


class FakeJob:
    """submitit's SlurmJob as the launcher sees it: an id, a result file, results()."""

    def __init__(self, job_id: str, folder: Path, result):
        self.job_id, self.result = job_id, result
        self.paths = type("Paths", (), {"result_pickle": folder / f"{job_id}_result.pkl"})()

    def results(self):
        if isinstance(self.result, Exception):
            raise self.result
        return [self.result]


def test_slurm_launcher_watches_the_array_and_summarises_every_job(tmp_path, monkeypatch, capsys):
    """Three jobs: one completes (after a requeue), one is cancelled, one fails outside Hydra.
    The state changes are printed as they happen, the summary names each job, nothing raises."""
    import submitit
    from hydra.core.utils import JobReturn, JobStatus
    from submitit.slurm.slurm import SlurmExecutor

    from ganarena.run import slurm

    sweep = tmp_path / "sweep"
    cfg = compose_hydra([
        "hydra/launcher=slurm", "accelerator=ddp", "trainer.devices=4", "+trainer.num_nodes=2",
        "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=90", "hydra.launcher.poll_s=0",
        "hydra.launcher.setup=[source .venv/bin/activate]", f"hydra.sweep.dir={sweep}",
    ])  # fmt: skip
    for num, m in enumerate([{"status": "completed", "steps": 5, "health": "partial"},
                             {"status": "interrupted", "steps": 2}, None]):  # fmt: skip
        (sweep / str(num) / "checkpoints").mkdir(parents=True)
        (sweep / str(num) / "checkpoints" / "last.ckpt").write_bytes(b"")
        if m:
            (sweep / str(num) / "metrics.json").write_text(json.dumps(m))
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(sweep / "0")}}})
    ok = JobReturn(overrides=["seed=1"], hydra_cfg=hydra_cfg, status=JobStatus.COMPLETED,
                   _return_value=12.5)  # fmt: skip
    broken = submitit.core.utils.FailedJobError("Traceback ...\nRuntimeError: CUDA out of memory")
    captured = {}

    def fake_map_array(self, fn, *iterables):
        captured["executor"], captured["jobs"] = self, list(zip(*iterables, strict=True))
        return [FakeJob(f"7_{i}", tmp_path, r) for i, r in enumerate([ok, None, broken])]

    queue = iter([
        {f"7_{i}": ("PENDING", "None", "N/A") for i in range(3)},
        {f"7_{i}": ("PENDING", "Resources", "N/A") for i in range(3)},
        {f"7_{i}": ("RUNNING", "None", "T1") for i in range(3)},
        {"7_0": ("PENDING", "BeginTime", "N/A"), "7_1": ("RUNNING", "None", "T1")},
        {"7_0": ("RUNNING", "None", "T2")},
    ])  # fmt: skip

    def fake_squeue(ids):
        listed = next(queue, {})
        if not listed:  # jobs 0 and 2 wrote their results, job 1 was cancelled
            for i in (0, 2):
                (tmp_path / f"7_{i}_result.pkl").write_bytes(b"")
        return listed

    ended = [{"JobId": "9", "ArrayJobId": "7", "ArrayTaskId": "1", "JobState": "CANCELLED"},
             {"JobId": "8", "ArrayJobId": "7", "ArrayTaskId": "0", "JobState": "COMPLETED",
              "Restarts": "1"}]  # fmt: skip
    monkeypatch.setattr(slurm, "scontrol", lambda *a: ended if a[0] == "job" else None)
    monkeypatch.setattr(slurm, "squeue", fake_squeue)
    monkeypatch.setattr(slurm.shutil, "which", lambda name: f"/usr/bin/{name}")
    # Pretend to be on a cluster (submitit looks for srun) and capture the job array.
    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", fake_map_array)
    launcher = instantiate(cfg.hydra.launcher)
    assert isinstance(launcher, slurm.SlurmLauncher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    monkeypatch.setattr(launcher, "job_folder", lambda overrides, num: sweep / str(num))
    jobs_ = [["experiment=smoke", f"seed={s}"] for s in (1, 2, 3)]
    returns = launcher.launch(jobs_, initial_job_idx=0)
    assert [r.return_value for r in returns] == [12.5, math.inf, math.inf]
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "slurm: #0 seed=1 submitted as 7_0", "slurm: #1 seed=2 submitted as 7_1",
        "slurm: #2 seed=3 submitted as 7_2",
        "slurm: #0 seed=1, #1 seed=2, #2 seed=3: pending",
        "slurm: #0 seed=1, #1 seed=2, #2 seed=3: pending (Resources)",
        "slurm: #0 seed=1, #1 seed=2, #2 seed=3: running",
        "slurm: #0 seed=1: requeued, pending (BeginTime: Slurm holds a requeued job, 120 s by "
        "default)",
        "slurm: #0 seed=1: running",
    ]  # fmt: skip
    assert out.splitlines() == [
        f"ganarena-train: SLURM sweep of 3 jobs in {sweep}: 1 completed, 2 did not",
        "  #0 seed=1 [slurm 7_0]: completed, 5 steps, health partial, requeued 1x",
        "  #1 seed=2 [slurm 7_1]: CANCELLED; metrics.json: interrupted at step 2, last.ckpt kept "
        "(ckpt_path=auto resumes it)",
        "  #2 seed=3 [slurm 7_2]: failed (FailedJobError: RuntimeError: CUDA out of memory); no "
        "metrics.json",
        f"  Slurm logs: {sweep}/.submitit/<job id>/",
    ]  # fmt: skip

    executor = captured["executor"]._executor
    assert [job[0] for job in captured["jobs"]] == jobs_
    p = executor.parameters
    assert (p["partition"], p["time"], p["nodes"]) == ("gpu", 90, 2)
    assert p["gpus_per_node"] == 4 and p["ntasks_per_node"] == 4  # one task per GPU (DDP)
    script = executor._make_submission_file_text("python -m ganarena.train", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --ntasks-per-node=4", "#SBATCH --nodes=2", "#SBATCH --time=90",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --mem=20GB",
                 "source .venv/bin/activate"):  # fmt: skip
        assert line in script, line
    # Preemption / time limit: SLURM signals USR2 (submitit's) 120 s ahead; submitit then calls the
    # launcher's checkpoint(), which resubmits the same job (overrides, job number), so the
    # requeued job runs in the same folder and resumes with ckpt_path=auto; 3 timeouts at most.
    assert "#SBATCH --signal=USR2@120" in script
    assert executor.max_num_timeout == 3
    requeue = launcher.checkpoint(*captured["jobs"][1])
    assert isinstance(requeue, submitit.helpers.DelayedSubmission)
    assert requeue.function is launcher and requeue.args == captured["jobs"][1]

    # strict: any job that did not complete fails the command (after the same summary).
    for i in (0, 2):
        (tmp_path / f"7_{i}_result.pkl").unlink()
    queue = iter([])
    launcher.strict = True
    with pytest.raises(SystemExit) as stop:
        launcher.launch(jobs_, initial_job_idx=0)
    assert stop.value.code == 1 and "1 completed, 2 did not" in capsys.readouterr().out


def test_multirun_of_ddp_spawn_jobs_runs_each_job_once(tmp_path):
    """The supported way to sweep DDP jobs locally: the spawn strategy (the subprocess launcher
    would replay the sweep in its children, hydra #2070). Each job's run folder gets the counters
    and scores of its rank 0, handed back from the spawned processes."""
    sweep = tmp_path / "sweep"
    res = run_cli(
        [
            "ganarena.train", "-m", "seed=1,2", "model=mlp", "accelerator=ddp_cpu", "trainer.devices=2",
            "trainer.strategy=ddp_spawn_find_unused_parameters_true", "dataset=mnist_sample",
            "dataset.limit=256", "dataset.batch_size=32", "trainer.max_steps=3",
            "trainer.enable_progress_bar=false", "eval.n_samples=200", "eval.batch_size=100",
            "eval.kid_subset_size=100", "eval.classifier.epochs=1", f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "tensorboard"]
    assert sorted(p.name for p in (sweep / "tensorboard").iterdir()) == ["seed=1", "seed=2"]
    assert res.stderr.count("run folder:") == 2  # once per job: no replayed sweep
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["steps"] == 3
        assert metrics["final"]["fid"] >= 0 and metrics["imgs_per_s"] > 0
        assert not (sweep / job / ".spawn_results.json").exists()
        ckpt = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert ckpt["ganarena"]["g_step"] == 3
