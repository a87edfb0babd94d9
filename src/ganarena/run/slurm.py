"""hydra/launcher=slurm: hydra-submitit-launcher's SlurmLauncher, made to follow the job and to
survive its jobs (conf/hydra/launcher/slurm.yaml, README "Launchers").

- Requests that follow the job: `${ganarena.run.slurm:KEY}` in the yaml resolves GPUs (only for a GPU
  accelerator), CPUs and memory from the trainer and the data (`request`), each overridable.
- Checked before submission: the request is compared with the nodes and limits of the partition
  (`scontrol show partition/node`); one that can never start is refused with both sets of numbers.
- Threads capped in the job: OpenMP/MKL/torch threads = the CPUs Slurm gave the task.
- Watched: one line per state change of the array's tasks (pending with Slurm's reason, running,
  requeued), from squeue/scontrol, so it works without accounting (sacct).
- One summary at the end, a line per job (its Slurm state and its metrics.json); no traceback for
  a cancelled, failed, timed-out or preempted job. Exit status 1 only when no job completed, or
  with `strict: true` when any did not.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as SubmititSlurmLauncher,
)
from omegaconf import DictConfig, OmegaConf, open_dict

PROG = "ganarena-train"
EXIT_USER_ERROR = 2
GPU_ACCELERATORS = ("gpu", "cuda")
CPUS_PER_TASK = {"cpu": 1, "gpu": 4}  # + dataset.num_workers; a CPU job computes in its threads
MEM_BASE_GB = {"cpu": 2, "gpu": 4}  # per task: Python, torch, Lightning (+ CUDA's host memory)
NOMINAL_IMAGES = 70_000  # dataset.limit unset: MNIST-sized (train + test) as the estimate
ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")


# -- requests -----------------------------------------------------------------------------------
def request(key: str, _root_: DictConfig) -> Any:
    """`${ganarena.run.slurm:KEY}`: what one job needs, from the trainer and the data."""
    accelerator = str(OmegaConf.select(_root_, "trainer.accelerator", default="cpu"))
    kind = "gpu" if accelerator in GPU_ACCELERATORS else "cpu"
    devices = OmegaConf.select(_root_, "trainer.devices", default=1)
    if key == "gpus_per_node":
        return devices if kind == "gpu" else None
    workers = OmegaConf.select(_root_, "dataset.num_workers", default=0) or 0
    if key == "cpus_per_task":
        return CPUS_PER_TASK[kind] + int(workers)
    if key == "mem_gb":
        size = OmegaConf.select(_root_, "dataset.image_size", default=64) or 64
        channels = OmegaConf.select(_root_, "dataset.channels", default=3) or 3
        n = OmegaConf.select(_root_, "dataset.limit", default=None) or NOMINAL_IMAGES
        data_gb = 2 * n * channels * size * size * 4 / 2**30  # float32 train + reference copies
        tasks = devices if isinstance(devices, int) and devices > 0 else 1
        return tasks * math.ceil(MEM_BASE_GB[kind] + data_gb)
    raise ValueError(
        f"${{ganarena.run.slurm:{key}}}: no such request (gpus_per_node, cpus_per_task, mem_gb)"
    )


OmegaConf.register_new_resolver("ganarena.run.slurm", request, replace=True)


def register_launcher() -> None:
    """Make hydra/launcher=slurm's class known to Hydra before a multirun instantiates it.

    Hydra instantiates launchers only from plugin classes under hydra_plugins (hydra #1554),
    which it finds by scanning that namespace package; the scan misses packages of an editable
    install (hydra #3252), so ganarena registers its own (RunFolderGuard.on_multirun_start)."""
    try:
        from hydra_plugins.ganarena_slurm import SlurmLauncher as plugin
    except ImportError:  # not installed (an old editable install): Hydra names the class
        return
    from hydra.core.plugins import Plugins

    Plugins.instance().register(plugin)


def cap_threads(cpus: int | None) -> int | None:
    """Inside a job: OpenMP/MKL/torch threads at most the task's CPUs (SLURM_CPUS_PER_TASK)."""
    cpus = int(os.environ.get("SLURM_CPUS_PER_TASK") or cpus or 0) or None
    if cpus is None:
        return None
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        given = os.environ.get(var, "")
        os.environ[var] = str(min(int(given), cpus) if given.isdigit() and given != "0" else cpus)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(min(torch.get_num_threads(), cpus))
    return int(os.environ["OMP_NUM_THREADS"])


# -- what the partition offers -------------------------------------------------------------------
def fields(line: str) -> dict[str, str]:
    """`scontrol -o show ...` line -> {key: value} (values may hold spaces, e.g. OS=)."""
    return {k: v.strip() for k, v in re.findall(r"(\w+)=(.*?)(?= \w+=|$)", line.strip())}


def scontrol(*args: str) -> list[dict[str, str]] | None:
    """`scontrol -o show ARGS` as one dict per line; None when it cannot answer."""
    try:
        out = subprocess.run(
            ["scontrol", "-o", "show", *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [fields(ln) for ln in out.stdout.splitlines() if "=" in ln]


def gpus(gres: str) -> int:
    """GPUs in a node's Gres string, e.g. gpu:4, gpu:a100:2(S:0),gpu:v100:2 -> 4."""
    counts = re.findall(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)", gres or "")
    return sum(int(c) for c in counts)


def minutes(limit: str) -> float:
    """Slurm's MaxTime ([D-]HH:MM:SS, MM:SS, UNLIMITED) in minutes."""
    if not limit or limit in ("UNLIMITED", "INFINITE", "NONE"):
        return math.inf
    days, _, hms = limit.rpartition("-")
    parts = [int(p) for p in hms.split(":")]
    h, m, s = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return (int(days or 0) * 24 + h) * 60 + m + s / 60


@dataclass
class Partition:
    name: str
    limits: dict[str, str]
    nodes: list[dict[str, str]] = field(default_factory=list)

    def cap(self, key: str) -> float:
        value = self.limits.get(key, "UNLIMITED")
        return math.inf if not value.isdigit() else float(value)


def partitions(name: str | None) -> list[Partition] | str:
    """The partitions a job names (or the default one) with their nodes; a message when unknown.
    An empty list: no Slurm commands here, nothing to check against."""
    every = scontrol("partition")
    if every is None:  # no Slurm commands here, or no controller answering: nothing to check
        return []
    wanted = [p for p in every if p.get("Default") == "YES"] if name is None else [
        p for p in every if p.get("PartitionName") in name.split(",")]  # fmt: skip
    if not wanted:
        known = ", ".join(p.get("PartitionName", "?") for p in every) or "none"
        what = "names no partition of" if name else "is null, and there is no default partition in"
        return (
            f"hydra.launcher.partition={name or 'null'} {what} this cluster (its partitions: "
            f"{known}; `sinfo` lists them). Set hydra.launcher.partition=NAME."
        )
    nodes = scontrol("node") or []
    return [
        Partition(p["PartitionName"], p, [n for n in nodes if p["PartitionName"] in
                                          n.get("Partitions", "").split(",")])
        for p in wanted
    ]  # fmt: skip


def fits(params: dict[str, Any], part: Partition) -> str | None:
    """Why the request can never start in `part` (with both sets of numbers), or None."""
    n_nodes, tasks = int(params.get("nodes") or 1), int(params.get("tasks_per_node") or 1)
    cpus = tasks * int(params.get("cpus_per_task") or 1)
    mem_mb = float(params.get("mem_gb") or 0) * 1024
    want_gpus = int(params.get("gpus_per_node") or 0)
    cpu_cap, mem_cap = part.cap("MaxCPUsPerNode"), part.cap("MaxMemPerNode")
    ok = [
        n for n in part.nodes
        if min(int(n.get("CPUEfctv") or n.get("CPUTot") or 0), cpu_cap) >= cpus
        and min(float(n.get("RealMemory") or 0), mem_cap) >= mem_mb
        and gpus(n.get("Gres", "")) >= want_gpus
    ]  # fmt: skip
    time_cap = minutes(part.limits.get("MaxTime", ""))
    max_nodes = min(part.cap("MaxNodes"), len(part.nodes))
    if len(ok) >= n_nodes and float(params.get("timeout_min") or 0) <= time_cap:
        return None
    big = max(part.nodes, key=lambda n: int(n.get("CPUTot") or 0), default={})
    return (
        f"each job asks for {n_nodes} node(s) with {cpus} CPUs ({tasks} task(s) x "
        f"cpus_per_task {cpus // tasks}), {mem_mb / 1024:g} GB memory, {want_gpus} GPUs and "
        f"{params.get('timeout_min')} min, but partition '{part.name}' offers at most "
        f"{max_nodes:g} node(s), {len(ok)} of which fit; its largest node has "
        f"{big.get('CPUTot', 0)} CPUs, {float(big.get('RealMemory') or 0) / 1024:.1f} GB "
        f"(RealMemory {big.get('RealMemory', 0)} MB) and {gpus(big.get('Gres', ''))} GPUs; "
        f"MaxCPUsPerNode {part.limits.get('MaxCPUsPerNode', '?')}, MaxMemPerNode "
        f"{part.limits.get('MaxMemPerNode', '?')}, MaxTime {part.limits.get('MaxTime', '?')}"
    )


def check_request(params: dict[str, Any]) -> str | None:
    """Why the job array should not be submitted, or None (also None without Slurm commands)."""
    for key in ("tasks_per_node", "nodes", "cpus_per_task", "gpus_per_node", "mem_gb"):
        value = params.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or
                                  value < 1):  # fmt: skip
            return (
                f"hydra.launcher.{key}={value!r} must be a positive whole number (null for "
                "gpus_per_node/mem_gb: none asked). tasks_per_node and gpus_per_node follow "
                "trainer.devices, so give it as a number (e.g. trainer.devices=4), not auto or -1."
            )
    found = partitions(params.get("partition"))
    if isinstance(found, str):
        return found
    reasons = [fits(params, p) for p in found]
    if not found or any(r is None for r in reasons):
        return None
    return (
        "this SLURM request can never start (sbatch would accept it and it would wait forever): "
        + "; ".join(reasons)
        + ". Lower hydra.launcher.cpus_per_task / mem_gb / timeout_min "
        "(or trainer.devices), or pick another hydra.launcher.partition (`sinfo -o '%P %c %m "
        "%G %l'` shows what each offers)."
    )


def refuse(message: str) -> None:
    print(textwrap.fill(f"{PROG}: error: {message}", width=100), file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


# -- watching the array ----------------------------------------------------------------------------
def squeue(array_ids: Sequence[str]) -> dict[str, tuple[str, str, str]] | None:
    """{task id: (state, reason, start time)} of the array tasks still queued; None when squeue
    fails (slurmctld unreachable)."""
    cmd = ["squeue", "-h", "-r", "-o", "%i|%T|%r|%S", "-j", ",".join(sorted(set(array_ids)))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    rows = (ln.split("|") for ln in out.stdout.splitlines() if ln.count("|") == 3)
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def ended(array_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """{task id: scontrol's fields} of finished tasks (slurmctld keeps them MinJobAge, 300 s)."""
    out: dict[str, dict[str, str]] = {}
    for array_id in sorted(set(array_ids)):
        for job in scontrol("job", array_id) or []:
            task = job.get("ArrayTaskId")
            out[f"{job.get('ArrayJobId')}_{task}" if task else job.get("JobId", "")] = job
    return out


def restarts(tasks: list[Task]) -> None:
    """Each task's requeue count from slurmctld (Restarts=), where it still knows the task."""
    info = ended([t.job.job_id.split("_")[0] for t in tasks])
    for t in tasks:
        t.requeues = max(t.requeues, int(info.get(t.job.job_id, {}).get("Restarts") or 0))


def sacct_state(job_id: str) -> str | None:
    """The job's final state from accounting, where the cluster has it."""
    cmd = ["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    return lines[-1] if out.returncode == 0 and lines else None


@dataclass
class Task:
    """One sweep job as its array task."""

    num: int
    label: str
    job: Any  # submitit.slurm.slurm.SlurmJob
    overrides: list[str]
    state: str = "SUBMITTED"
    reason: str = ""
    requeues: int = 0
    started: str = ""  # squeue's start time while running: a new one means it was requeued
    final: str | None = None  # Slurm's end state for a task that left no result
    gone_since: float | None = None

    def has_result(self) -> bool:
        return self.job.paths.result_pickle.exists()


def labels(job_overrides: Sequence[Sequence[str]]) -> list[str]:
    """Each job named by the overrides that differ between the jobs (all of them for one job)."""
    lists = [list(filter_overrides(o)) for o in job_overrides]
    common = set.intersection(*(set(o) for o in lists)) if len(lists) > 1 else set()
    return [" ".join(o for o in ov if o not in common) or "(no overrides)" for ov in lists]


def change(t: Task, state: str, reason: str, started: str) -> str | None:
    """What one squeue row says happened to the task since the last one, in words (or None)."""
    was_running = t.state in ("RUNNING", "COMPLETING")
    restarted = state == "RUNNING" and was_running and t.started not in ("", started)
    if state == "REQUEUED" or (state == "PENDING" and was_running) or restarted:
        t.requeues += 1
        if state == "PENDING" and reason == "BeginTime":  # AuthInfo cred_expire, 120 s
            return "requeued, pending (BeginTime: Slurm holds a requeued job, 120 s by default)"
        if state == "PENDING":
            return f"requeued, pending ({reason})"
        return "requeued, running again" if restarted else "requeued"
    if state == "PENDING" and (state, reason) != (t.state, t.reason):
        return f"pending ({reason})" if reason not in ("", "None") else "pending"
    if state != t.state and state not in ("PENDING", "COMPLETING"):
        return state.lower()
    return None


def observe(tasks: list[Task], queued: dict[str, tuple[str, str, str]], now: float) -> list[str]:
    """Update the tasks from one squeue listing; one line per kind of change, naming the jobs."""
    changes: dict[str, list[str]] = {}
    for t in tasks:
        if t.final is not None or t.has_result():
            continue
        if t.job.job_id not in queued:
            t.gone_since = t.gone_since or now
            continue
        state, reason, started = queued[t.job.job_id]
        word = change(t, state, reason, started)
        t.state, t.reason, t.gone_since = state, reason, None
        t.started = started if state == "RUNNING" else t.started
        if word:
            changes.setdefault(word, []).append(f"#{t.num} {t.label}")
    return [f"slurm: {', '.join(who)}: {word}" for word, who in changes.items()]


def settle(tasks: list[Task], now: float, grace_s: float = 20) -> None:
    """Tasks gone from the queue without a result: their end state (scontrol, else sacct)."""
    gone = [t for t in tasks if t.final is None and not t.has_result() and t.gone_since]
    if not gone:
        return
    info = ended([t.job.job_id.split("_")[0] for t in gone])
    for t in gone:
        state = info.get(t.job.job_id, {}).get("JobState") or sacct_state(t.job.job_id)
        if state == "COMPLETED" and now - t.gone_since < grace_s:
            continue  # the result file may still be on its way (a shared filesystem)
        if state in ACTIVE:
            continue
        if state or now - t.gone_since >= grace_s:
            t.final = state or "UNKNOWN (gone from the queue, no result)"
            t.requeues = max(t.requeues, int(info.get(t.job.job_id, {}).get("Restarts") or 0))


def watch(tasks: list[Task], poll_s: float) -> None:
    """Wait for every task, printing each state change (stderr) as it happens."""
    array_ids = [t.job.job_id.split("_")[0] for t in tasks]
    warned = False
    while any(t.final is None and not t.has_result() for t in tasks):
        queued = squeue(array_ids)
        now = time.monotonic()
        if queued is None:
            if not warned:
                print("slurm: squeue failed; still waiting for the results", file=sys.stderr)
            warned = True
        else:
            for line in observe(tasks, queued, now):
                print(line, file=sys.stderr, flush=True)
            settle(tasks, now)
        time.sleep(poll_s)


# -- the end: one summary ---------------------------------------------------------------------------
def read_metrics(folder: Path | None) -> dict[str, Any]:
    try:
        return json.loads((folder / "metrics.json").read_text()) if folder else {}
    except (OSError, ValueError):
        return {}


def record(m: dict[str, Any], folder: Path | None) -> str:
    """What a job's metrics.json says, in a few words."""
    if not m:
        return "no metrics.json"
    words = f"metrics.json: {m.get('status')}"
    if m.get("steps") is not None:
        words += f" at step {m['steps']}"
    if m.get("reason"):
        words += f" ({str(m['reason'])[:200]})"
    if folder is not None and (folder / "checkpoints" / "last.ckpt").is_file():
        words += ", last.ckpt kept (ckpt_path=auto resumes it)"
    return words


def outcome(t: Task, ret: JobReturn | None, folder: Path | None) -> tuple[bool, str]:
    """(completed, words) for one job: what its metrics.json and Slurm say."""
    m = read_metrics(folder)
    again = f", requeued {t.requeues}x" if t.requeues else ""
    if m.get("status") == "completed":
        health = f", health {m['health']}" if m.get("health") else ""
        return True, f"completed, {m.get('steps')} steps{health}{again}"
    if ret is None:  # ended without a result: Slurm's word (CANCELLED, TIMEOUT, ...)
        word = t.final or "no result"
    elif ret.status == JobStatus.FAILED:
        err = str(ret._return_value).strip().splitlines() or ["?"]
        word = f"failed ({type(ret._return_value).__name__}: {err[-1][:200]})"
    else:
        word = m.get("status") or "finished"
    return False, f"{word}{again}; {record(m, folder)}"


def summary(tasks: list[Task], results: list[JobReturn | None], folders: list[Path | None],
            sweep_dir: Path) -> tuple[int, list[str]]:  # fmt: skip
    """(jobs completed, lines): one line per job, its Slurm id, state and metrics.json."""
    rows = [outcome(t, r, f) for t, r, f in zip(tasks, results, folders, strict=True)]
    done = sum(ok for ok, _ in rows)
    head = f"{PROG}: SLURM sweep of {len(tasks)} jobs in {sweep_dir}: {done} completed"
    lines = [head + ("" if done == len(tasks) else f", {len(tasks) - done} did not")]
    lines += [f"  #{t.num} {t.label} [slurm {t.job.job_id}]: {words}" for t, (_, words) in
              zip(tasks, rows, strict=True)]  # fmt: skip
    lines.append(f"  Slurm logs: {sweep_dir}/.submitit/<job id>/")
    return done, lines


def output_dir(ret: JobReturn | None) -> Path | None:
    """The run folder of a job that returned (Hydra's runtime.output_dir)."""
    folder = (
        OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir")
        if ret and ret.hydra_cfg
        else None
    )
    return Path(folder) if folder else None


def result_of(t: Task) -> JobReturn | None:
    if t.final is not None:
        return None
    try:
        return t.job.results()[0]
    except Exception as e:  # noqa: BLE001 - a job that broke outside Hydra: report, go on
        return JobReturn(overrides=t.overrides, status=JobStatus.FAILED, _return_value=e)


class SlurmLauncher(SubmititSlurmLauncher):
    """submitit's SLURM launcher that checks, caps, watches and summarises (module docstring)."""

    def __init__(self, strict: bool = False, poll_s: float = 3, check_partition: bool = True,
                 **params: Any) -> None:  # fmt: skip
        super().__init__(**params)
        self.strict, self.poll_s, self.check_partition = (
            bool(strict),
            float(poll_s),
            check_partition,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Runs in the job: threads capped to its CPUs before torch starts its pools."""
        threads = cap_threads(self.params.get("cpus_per_task"))
        if threads is not None:
            print(f"ganarena: {threads} thread(s) per process (the task's CPUs)", flush=True)
        return super().__call__(*args, **kwargs)

    def executor(self) -> Any:
        """submitit's executor with this launcher's parameters (as the plugin's launch builds it)."""
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster="slurm", folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params.get("max_num_timeout", 0),
        )  # fmt: skip
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{
            k if k in base else f"slurm_{k}": v for k, v in self.params.items() if k not in init_keys
        })  # fmt: skip
        return executor

    def job_folder(self, overrides: Sequence[str], num: int) -> Path | None:
        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg.hydra.job):
                cfg.hydra.job.num = num
            return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        except Exception:  # noqa: BLE001 - only for the summary
            return None

    def submit(self, job_overrides: Sequence[Sequence[str]], first: int) -> list[Task]:
        """One array task per job, as the plugin submits them (same arguments, so checkpoint()
        requeues a job with its own overrides and job number)."""
        from hydra.core.singleton import Singleton

        nums = range(first, first + len(job_overrides))
        args = [(list(o), "hydra.sweep.dir", n, f"job_id_for_{n}", Singleton.get_state())
                for o, n in zip(job_overrides, nums, strict=True)]  # fmt: skip
        jobs = self.executor().map_array(self, *zip(*args, strict=True))
        tasks = [Task(n, name, j, list(o)) for n, name, j, o in
                 zip(nums, labels(job_overrides), jobs, job_overrides, strict=True)]  # fmt: skip
        for t in tasks:
            print(f"slurm: #{t.num} {t.label} submitted as {t.job.job_id}", file=sys.stderr)
        return tasks

    def finish(self, tasks: list[Task], sweep_dir: Path) -> list[JobReturn]:
        """The summary; the sweeper's returns (+inf for a job that left none, as run_cli returns
        for a failed job), or exit 1 when nothing completed (or any did not, with strict)."""
        restarts(tasks)
        results = [result_of(t) for t in tasks]
        folders = [output_dir(r) or self.job_folder(t.overrides, t.num)
                   for t, r in zip(tasks, results, strict=True)]  # fmt: skip
        done, lines = summary(tasks, results, folders, sweep_dir)
        print("\n".join(lines), flush=True)
        if done == 0 or (self.strict and done < len(tasks)):
            sys.exit(1)
        return [
            r if r is not None and r.status == JobStatus.COMPLETED
            else JobReturn(overrides=t.overrides, status=JobStatus.COMPLETED, _return_value=math.inf)
            for t, r in zip(tasks, results, strict=True)
        ]  # fmt: skip

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        if self.check_partition:
            problem = check_request(self.params)
            if problem:
                refuse(problem)
        if shutil.which("sbatch") is None:
            refuse("hydra/launcher=slurm submits with sbatch, which is not on PATH here: run the "
                   "sweep on a SLURM login node, or use hydra/launcher=parallel on this machine.")  # fmt: skip
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        tasks = self.submit(job_overrides, initial_job_idx)
        try:
            watch(tasks, self.poll_s)
        except KeyboardInterrupt:
            array = tasks[0].job.job_id.split("_")[0]
            print(f"\nslurm: stopped waiting; the jobs go on (scancel {array} stops them)",
                  file=sys.stderr)  # fmt: skip
            sys.exit(130)
        return self.finish(tasks, sweep_dir)
