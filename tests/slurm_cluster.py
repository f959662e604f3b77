"""A real single-node SLURM for tests: munged, slurmctld and slurmd on 127.0.0.1, every
file (munge key, slurm.conf, state, logs) in one temporary folder, torn down after.

    with SlurmCluster(folder) as cluster:   # exports SLURM_CONF while it is up
        ... sbatch / submitit ...

`missing()` names what this machine lacks (Debian: apt-get install slurm-wlm munge), so
a test can skip with the reason; .ci/run installs both, so CI never skips.
"""

import os
import shutil
import socket
import subprocess
import time

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "srun", "scancel")
NODE = "sweepnode"
PARTITION = "sweeptest"
SBIN = ("/usr/sbin", "/usr/local/sbin")


def which(name):
    return shutil.which(name) or next(
        (os.path.join(d, name) for d in SBIN if os.access(os.path.join(d, name), os.X_OK)), None
    )


def missing():
    """'' when SLURM and munge can run here, else why not (one line)."""
    absent = [p for p in PROGRAMS if not which(p)]
    if absent:
        return f"SLURM/munge not installed ({', '.join(absent)} missing): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the single-node SLURM test runs its daemons as root; this user is not root"
    return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """\
ClusterName=sweeptest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SrunPortRange={srun_ports}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 NodeHostname={node} CPUs={cpus} RealMemory=1024 State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


class SlurmCluster:
    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        self.conf = os.path.join(self.folder, "slurm.conf")
        self.procs = []
        self._old_conf = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        f = self.folder
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(f, sub), exist_ok=True)
        os.chmod(f, 0o700)
        key = os.path.join(f, "munge.key")
        with open(key, "wb") as out:
            out.write(os.urandom(1024))
        os.chmod(key, 0o400)
        with open(self.conf, "w") as out:
            base = free_port()
            out.write(
                CONF.format(
                    folder=f,
                    node=NODE,
                    partition=PARTITION,
                    cpus=os.cpu_count(),
                    ctld_port=free_port(),
                    slurmd_port=free_port(),
                    srun_ports=f"{base}-{base + 20}" if base < 60000 else "40000-40020",
                )
            )
        self._old_conf = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = self.conf
        self._daemon(
            which("munged"),
            "-F",
            "-f",
            f"--key-file={key}",
            f"--socket={f}/munge.socket",
            f"--pid-file={f}/munged.pid",
            f"--log-file={f}/munged.log",
            f"--seed-file={f}/munged.seed",
        )
        self._wait(lambda: os.path.exists(f"{f}/munge.socket"), 20, "munged")
        self._daemon(which("slurmctld"), "-D", "-i", "-f", self.conf)
        self._daemon(which("slurmd"), "-D", "-f", self.conf, "-N", NODE)
        self._wait(self.idle, timeout, "the node to become idle")

    def _daemon(self, *argv):
        log = open(os.path.join(self.folder, os.path.basename(argv[0]) + ".out"), "ab")
        self.procs.append(
            subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        )

    def idle(self):
        out = subprocess.run([which("sinfo"), "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
        return out.returncode == 0 and out.stdout.strip() in ("idle", "idle*".rstrip("*"))

    def _wait(self, ready, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"{dead[0].args[0]} exited with code {dead[0].returncode}; see {self.folder}: {self.logs()}"
                )
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}: {self.logs()}")

    def logs(self):
        tails = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log", "slurmctld.out", "slurmd.out"):
            path = os.path.join(self.folder, name)
            if os.path.exists(path):
                tails.append(f"{name}: " + " | ".join(open(path, errors="replace").read().splitlines()[-5:]))
        return " || ".join(tails)

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
        if self._old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self._old_conf
