"""A one-node Slurm cluster on localhost, for tests/test_slurm_cluster.py.

`start(folder)` installs slurm-wlm and munge where they are missing (apt-get, quietly) and starts
a private munged and a slurmctld + slurmd pair, every one of them on the loopback address:
munged on a socket in `folder` with its own key, the Slurm daemons on free ports of 127.0.0.1
(SlurmctldHost=localhost(127.0.0.1), NodeAddr=127.0.0.1, CommunicationParameters=
NoCtldInAddrAny,NoInAddrAny, so they bind to that address instead of every interface). The
configuration, state, spool, pid and log files are all in `folder`; nothing under /etc is
written (apt-get aside). Clients reach the cluster through `Cluster.env` (SLURM_CONF).

The node is the machine itself (its CPUs, 90 % of its memory) in one partition named `cpu`, no
accounting (slurmdbd needs a database): what ganarena's SLURM launcher must cope with. Slurm
holds a requeued job for AuthInfo's cred_expire (120 s by default) before it may start again;
here it is 10 s.

`why_not()` says why no cluster can be started here (None when one can).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "cpu"
NODE = "localhost"
REQUEUE_HOLD_S = 10  # AuthInfo cred_expire: how long a requeued job waits before it may start


def why_not() -> str | None:
    """Why a cluster cannot be started on this machine, or None."""
    if not sys.platform.startswith("linux"):
        return f"a Slurm test cluster needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "starting Slurm's daemons (slurmd launches jobs as their user) needs root"
    if Path("/etc/slurm/slurm.conf").exists() or Path("/etc/slurm-llnl/slurm.conf").exists():
        return "this machine has a Slurm configuration of its own (/etc/slurm): not touching it"
    if not all(shutil.which(d, path=_PATH) for d in DAEMONS) and not shutil.which("apt-get"):
        return "Slurm is not installed and there is no apt-get to install " + " ".join(PACKAGES)
    return None


_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def install() -> str | None:
    """apt-get install the packages where a daemon is missing; the error, or None."""
    if all(shutil.which(d, path=_PATH) for d in DAEMONS):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    for attempt in range(2):  # the package lists may be missing or stale: update once, retry
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode == 0:
            return None
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
    return f"apt-get install {' '.join(PACKAGES)} failed: {proc.stderr.strip()[-500:]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 9 // 10 // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def slurm_conf(folder: Path, cpus: int, memory_mb: int) -> str:
    ports = free_port(), free_port()
    return f"""\
# ganarena test cluster (tests/slurm_cluster.py): one node, loopback only
ClusterName=ganarena-test
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket,cred_expire={REQUEUE_HOLD_S}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
PlugStackConfig={folder}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    folder: Path
    cpus: int
    memory_mb: int
    env: dict[str, str] = field(default_factory=dict)
    lock: Any = None  # set by the test fixture: held while a test submits

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=60, check=check
        )

    def idle(self) -> bool:
        out = self.run("sinfo", "-h", "-o", "%t", check=False).stdout.split()
        return out == ["idle"]

    def pid(self, daemon: str) -> int | None:
        try:
            pid = int((self.folder / f"{daemon}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def listening(self) -> dict[str, list[str]]:
        """daemon -> the addresses its listening TCP sockets are bound to (from /proc)."""
        return {d: listening(pid) for d in DAEMONS if (pid := self.pid(d)) is not None}

    def drain(self, timeout_s: float = 30) -> None:
        """Cancel what is left in the queue and wait until Slurm has finished every job (so no
        job step outlives the daemons: a sweep returns once its results exist, while Slurm may
        still be completing the jobs)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            listed = self.run("squeue", "-h", "-o", "%A", check=False)
            if listed.returncode != 0 or not listed.stdout.split():
                return
            self.run("scancel", *sorted(set(listed.stdout.split())), check=False)
            time.sleep(0.5)

    def stop(self) -> None:
        """Drain the queue, then stop the three daemons (by the pids they wrote) and wait."""
        if self.pid("slurmctld") and self.pid("slurmd"):
            self.drain()
        pids = []
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.folder / f"{name}.pid"
            if not pid_file.is_file():
                continue
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except (ValueError, IndexError, ProcessLookupError):
                pass
        deadline = time.monotonic() + 20
        for pid in pids:
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def listening(pid: int) -> list[str]:
    """host:port of each listening TCP socket of process `pid` (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                addr, port = cols[1].split(":")
                host = ".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)) if len(
                    addr) == 8 else addr  # fmt: skip
                found.append(f"{host}:{int(port, 16)}")
    return found


def attach(folder: Path) -> Cluster | None:
    """The cluster already running from `folder` (started by another xdist worker), or None."""
    conf = folder / "slurm.conf"
    if not conf.is_file():
        return None
    cluster = Cluster(folder, os.cpu_count() or 1, mem_mb())
    cluster.env = {**os.environ, "SLURM_CONF": str(conf), "PATH": _PATH}
    cluster.env.pop("SLURM_JOB_ID", None)
    if not all(cluster.pid(d) for d in DAEMONS):
        cluster.stop()  # what is left of it
        return None
    return cluster


def start(folder: Path, timeout_s: float = 60) -> Cluster:
    """Write the configuration into `folder` and start munged, slurmctld and slurmd."""
    for sub in ("munge", "state", "spool"):  # fresh: no state of an earlier start
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True)
    folder.chmod(0o700)
    (folder / "munge").chmod(0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (folder / "plugstack.conf").write_text("")
    cluster = Cluster(folder, os.cpu_count() or 1, mem_mb())
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, cluster.cpus, cluster.memory_mb))
    cluster.env = {**os.environ, "SLURM_CONF": str(conf), "PATH": _PATH}
    cluster.env.pop("SLURM_JOB_ID", None)
    m = folder / "munge"
    daemons = [
        ["munged", f"--socket={m}/munge.socket", f"--key-file={key}",
         f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log",
         f"--seed-file={m}/munged.seed", "--force"],
        ["slurmctld", "-i"],  # -i: ignore (there is no) saved state
        ["slurmd", "-N", NODE],
    ]  # fmt: skip
    for cmd in daemons:
        proc = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            cluster.stop()
            raise RuntimeError(f"{cmd[0]} did not start: {proc.stderr.strip()[-500:]}")
    deadline = time.monotonic() + timeout_s
    while not cluster.idle():
        if time.monotonic() > deadline:
            logs = [(folder / f"{d}.log") for d in ("slurmctld", "slurmd")]
            tails = "\n".join(p.read_text()[-1500:] for p in logs if p.is_file())
            cluster.stop()
            raise RuntimeError(f"the node did not become idle in {timeout_s:.0f} s:\n{tails}")
        time.sleep(0.5)
    return cluster
