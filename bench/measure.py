"""Run a command as a child process; wall time and peak RSS of its whole process tree."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_S = 0.02
REPO = Path(__file__).resolve().parents[1]  # `python -m bench.x` and `-m servetrace` run from here


@dataclass
class Run:
    """One timed process: wall seconds, CPU seconds (user + system of the process and the children it
    waited for, plus the last polled CPU of descendants it never waited for, as a JVM that Spark
    starts), peak RSS of the tree (bytes), exit code, captured output."""

    cmd: list[str]
    wall_s: float
    cpu_s: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error_line(self) -> str:
        lines = [ln for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit code {self.returncode}"


def _tree_poll(proc: psutil.Process, cpu: dict[int, float]) -> tuple[int, set[int]]:
    """RSS of the process tree (bytes) and the descendants' pids; each descendant's CPU seconds so
    far go into `cpu`."""
    total, seen = 0, set()
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, seen
    for p in members:
        try:
            if p.pid != proc.pid:
                times = p.cpu_times()  # a zombie's too: it has ended, and nobody waited for it
                cpu[p.pid] = times.user + times.system
                seen.add(p.pid)
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total, seen


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_measured(cmd: list[str], cwd: str | None = None, env: dict | None = None,
                 timeout_s: float | None = None) -> Run:
    """Start `cmd`, poll the RSS of its process tree until it ends.

    Peak RSS is the larger of the polled sum over the tree and the kernel's own maximum for
    the process (wait4 ru_maxrss), so a spike shorter than the poll interval is still caught
    for the main process.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd or REPO, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        proc = psutil.Process(child.pid)
        peak, status, usage = 0, None, None
        cpu: dict[int, float] = {}
        unwaited: set[int] = set()  # descendants still there at the last poll: the process never waited for them
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            rss, seen = _tree_poll(proc, cpu)
            peak = max(peak, rss)
            if seen or _running(proc):  # a process that ended mid-poll has handed its children on: keep the last set
                unwaited = seen
            if timeout_s is not None and time.perf_counter() - start > timeout_s:
                for p in [*proc.children(recursive=True), proc]:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(POLL_S)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak = max(peak, usage.ru_maxrss * 1024)
        own = usage.ru_utime + usage.ru_stime + sum(cpu[p] for p in unwaited)
        return Run(cmd, wall, own, peak, child.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"))


@dataclass
class Measurement:
    """A figure measured `repeat` times: the median is what counts."""

    name: str
    trace: str | None = None
    rows: int | None = None
    status: str = "ok"  # ok | skipped | failed
    reason: str | None = None
    wall_s: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    stdout: str = ""  # of the last run, for figures a command prints; not written out

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.wall_s) if self.wall_s else None

    @property
    def peak_rss_max(self) -> int | None:
        return max(self.peak_rss) if self.peak_rss else None

    def to_dict(self) -> dict:
        med = self.median_s if self.status == "ok" else None  # a failed figure's partial runs are kept, not used
        return {
            "name": self.name,
            "trace": self.trace,
            "rows": self.rows,
            "status": self.status,
            "reason": self.reason,
            "runs": len(self.wall_s),
            "wall_s": [round(w, 4) for w in self.wall_s],
            "median_s": round(med, 4) if med is not None else None,
            "min_s": round(min(self.wall_s), 4) if med is not None else None,
            "cpu_s": round(statistics.median(self.cpu_s), 4) if med is not None and self.cpu_s else None,
            "rows_per_s": round(self.rows / med) if med and self.rows else None,
            "peak_rss_mb": round(self.peak_rss_max / 2**20, 1) if self.peak_rss else None,  # failed runs too
            **self.extra,
        }


def measure(name: str, cmd_for_run, repeat: int, trace: str | None = None, rows: int | None = None,
            cwd: str | None = None, env: dict | None = None, timeout_s: float | None = None,
            before=None) -> Measurement:
    """Run `cmd_for_run(i)` `repeat` times (calling `before(i)` first, untimed); stop at the first failure."""
    m = Measurement(name, trace, rows)
    for i in range(repeat):
        if before is not None:
            before(i)
        run = run_measured(cmd_for_run(i), cwd=cwd, env=env, timeout_s=timeout_s)
        if not run.ok:
            m.status, m.reason = "failed", f"{' '.join(run.cmd[:4])} ...: {run.error_line()}"
            break
        m.wall_s.append(run.wall_s)
        m.peak_rss.append(run.peak_rss)
        m.cpu_s.append(run.cpu_s)
        m.stdout = run.stdout
    return m


def skipped(name: str, reason: str, trace: str | None = None, rows: int | None = None) -> Measurement:
    return Measurement(name, trace, rows, status="skipped", reason=reason)
