"""A real single-node SLURM cluster for the tests, in a temporary directory: Debian's slurm-wlm
(slurmctld, slurmd, and slurmdbd on MariaDB, so that sacct, sacctmgr and account checks work as
on a site's cluster) with munge. Installed with apt-get where missing; `SlurmUnavailable` says
why where it cannot be installed or started.

Installing packages and starting daemons changes the machine, so nothing here runs unless asked:
REGURGITATE_TEST_SLURM=1 in the environment (.ci/run sets it)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server"]
PROGRAMS = ["slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "munged"]
PROGRAMS += ["mariadbd", "mariadb-install-db", "mariadb"]
CLUSTER = "regurgitate"
ACCOUNT = "study"
PARTITION = "debug"
NODE = "node1"
GPU_TYPE = "tesla"
SITE_CONF = Path("/etc/slurm/slurm.conf")
RUN_CONF = Path("/run/slurm/conf")
MARK = ".regurgitate-test-cluster"


# The switch that lets the tests install SLURM's packages and start its daemons.
SWITCH = "REGURGITATE_TEST_SLURM"
HOW_TO_ENABLE = (
    f"{SWITCH}=1 runs them: they install slurm-wlm, munge and MariaDB through apt-get where "
    "missing (as root) and start their daemons on this machine"
)


class SlurmUnavailable(Exception):
    """SLURM cannot be installed or started here; the message says why."""


def enabled() -> bool:
    return os.environ.get(SWITCH) == "1"


def require_enabled() -> None:
    """Refuse to touch the machine unless the switch is on: whoever imports this module outside
    the skipped tests gets the reason, not an apt-get."""
    if not enabled():
        raise SlurmUnavailable(f"the SLURM tests are off; {HOW_TO_ENABLE}")


def install() -> None:
    """The packages, through apt-get, unless every program is there already."""
    require_enabled()
    if all(shutil.which(p) for p in PROGRAMS):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlurmUnavailable(f"{', '.join(PACKAGES)} are not installed and apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)}: {result.stderr[-500:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_memory_mb() -> int:
    """What the node offers jobs: the machine's memory less 1 GB for the daemons and Snakemake;
    the tiny study's largest job asks for 4 GB (prepare_pools)."""
    total = next(
        int(line.split()[1]) // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    if total - 1000 < 4500:
        raise SlurmUnavailable(f"{total} MB of memory: the study's jobs ask for up to 4,500 MB")
    return total - 1000


def wait_for(what: str, check, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SlurmUnavailable(f"{what} did not come up within {seconds:.0f} s")
        time.sleep(0.5)


class Cluster:
    """The daemons, their configuration and logs under `root`; `env` is what a client (sbatch,
    Snakemake) needs to reach them."""

    def __init__(self, root: Path):
        self.root = root
        self.pid_files: list[Path] = []
        self.ports = {name: free_port() for name in ("ctld", "slurmd", "dbd", "db")}
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
        self.munge_socket = root / "munge" / "munge.socket"
        self.lock = None
        self.linked = False

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, capture_output=True, text=True, env=self.env)
        if check and result.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(command)}: {result.stdout}{result.stderr}"[-800:])
        return result

    def start(self) -> Cluster:
        """Start every daemon; on failure stop those that started and say why."""
        require_enabled()
        try:
            return self._start_all()
        except BaseException:
            self.stop()
            raise

    def _start_all(self) -> Cluster:
        self._link_config()
        for folder in ("munge", "log", "spool/ctld", "spool/d", "db"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self._start_database()
        self._write_config()
        self._start("slurmdbd", self.root / "slurmdbd.pid", "slurmdbd")
        wait_for(
            "slurmdbd",
            lambda: self.run("sacctmgr", "-n", "list", "cluster", check=False).returncode == 0,
        )
        for entity in (
            ["cluster", CLUSTER],
            ["account", ACCOUNT, f"Cluster={CLUSTER}"],
            ["user", "root", f"Account={ACCOUNT}", f"DefaultAccount={ACCOUNT}"],
        ):
            self.run("sacctmgr", "-i", "add", *entity)
        self._start("slurmctld", self.root / "slurmctld.pid", "slurmctld")
        self._start("slurmd", self.root / "slurmd.pid", "slurmd", "-N", NODE)
        wait_for("the node", self._node_idle)
        return self

    def _link_config(self) -> None:
        """Where the srun inside every job finds the configuration: the plugin's job step drops
        SLURM_* variables, SLURM_CONF among them, before it calls srun, so srun reads the places
        a site's configuration lives, /etc/slurm/slurm.conf and then /run/slurm/conf/slurm.conf
        (where a configless slurmd links its copy). The test links the latter to its own, one
        test cluster at a time on a machine, and never beside a configured SLURM."""
        if SITE_CONF.exists():
            raise SlurmUnavailable(f"{SITE_CONF} exists: a SLURM is configured on this machine")
        RUN_CONF.parent.mkdir(parents=True, exist_ok=True)
        self.lock = (RUN_CONF.parent / ".regurgitate-test.lock").open("w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)  # another session's test cluster: wait for it
        if RUN_CONF.is_symlink() and ((RUN_CONF / MARK).exists() or not RUN_CONF.exists()):
            RUN_CONF.unlink()  # left behind by a test cluster that was killed
        if RUN_CONF.exists() or RUN_CONF.is_symlink():
            raise SlurmUnavailable(f"{RUN_CONF} exists: a configless slurmd runs here")
        (self.root / MARK).touch()
        RUN_CONF.symlink_to(self.root)
        self.linked = True

    def _node_idle(self) -> bool:
        result = self.run("sinfo", "-h", "-n", NODE, "-o", "%T", check=False)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _start(self, name: str, pid_file: Path, *command: str) -> None:
        self.run(*command)
        wait_for(name, pid_file.exists)
        self.pid_files.append(pid_file)

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        pid = self.root / "munge" / "munged.pid"
        self._start(
            "munged",
            pid,
            "munged",
            "--force",
            f"--key-file={key}",
            f"--socket={self.munge_socket}",
            f"--pid-file={pid}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={self.root / 'munge' / 'seed'}",
        )

    def _start_database(self) -> None:
        datadir = self.root / "db"
        self.run(
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        )
        socket_path = self.root / "db.sock"
        pid = self.root / "db.pid"
        subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={datadir}",
                f"--socket={socket_path}",
                "--bind-address=127.0.0.1",
                f"--port={self.ports['db']}",
                "--user=root",
                f"--pid-file={pid}",
                f"--log-error={self.root / 'log' / 'mariadb.err'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for("mariadbd", pid.exists)
        self.pid_files.append(pid)
        grants = "".join(
            f"CREATE USER 'slurm'@'{host}' IDENTIFIED BY 'slurm'; "
            f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{host}'; "
            for host in ("127.0.0.1", "localhost")
        )
        sql = ["mariadb", "--no-defaults", f"--socket={socket_path}", "-u", "root"]
        wait_for("mariadb", lambda: self.run(*sql, "-e", "select 1", check=False).returncode == 0)
        self.run(*sql, "-e", grants)

    def _write_config(self) -> None:
        root, ports, munge = self.root, self.ports, self.munge_socket
        cpus = os.cpu_count() or 1
        memory = node_memory_mb()
        (root / "slurm.conf").write_text(
            f"""ClusterName={CLUSTER}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports["ctld"]}
SlurmdPort={ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}
StateSaveLocation={root}/spool/ctld
SlurmdSpoolDir={root}/spool/d
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports["dbd"]}
AccountingStoragePass={munge}
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu,gres/gpu:{GPU_TYPE}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
NodeName={NODE} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:{GPU_TYPE}:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""  # noqa: E501
        )
        # A GPU in name only (this machine may have none): SLURM grants it and sets
        # CUDA_VISIBLE_DEVICES, which is what the tests check.
        (root / "gres.conf").write_text(
            f"NodeName={NODE} Name=gpu Type={GPU_TYPE} File=/dev/null\n"
        )
        dbd = root / "slurmdbd.conf"
        dbd.write_text(
            f"""AuthType=auth/munge
AuthInfo=socket={munge}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports["dbd"]}
SlurmUser=root
LogFile={root}/log/slurmdbd.log
PidFile={root}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["db"]}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
"""
        )
        dbd.chmod(0o600)

    def stop(self) -> None:
        """Stop every daemon this cluster started, by the process id it wrote, last first."""
        for pid_file in reversed(self.pid_files):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), 15)
            time.sleep(0.5)
        if self.linked:
            RUN_CONF.unlink(missing_ok=True)
        if self.lock:
            self.lock.close()

    def logs(self) -> str:
        """The end of every daemon's log, for a failing test's message."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}"
            for log in sorted((self.root / "log").glob("*"))
        )
