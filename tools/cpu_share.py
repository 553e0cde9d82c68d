"""A share of one CPU for a child process, as Lambda gives CPU in proportion to memory.

Lambda allocates CPU in proportion to the configured memory: 1,769 MB is one full vCPU, so 512 MB
gets 29% of one. Two ways to hold a child to such a share, the first this machine allows:

- a CPU cgroup (v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``): the kernel
  lets the child's processes run ``share x period`` of CPU time per period, then holds them until
  the next period, which is how a Firecracker microVM's CPU is capped. It counts CPU time only:
  a child waiting on the network uses none of its quota.
- a duty cycle (no cgroup can be created, e.g. without root): the child's process group is sent
  SIGCONT for ``share x period`` of wall time, then SIGSTOP for the rest. Cruder: a child waiting
  on I/O through its "on" slice loses that slice, and one stopped while a reply arrives reads it
  late, so I/O-heavy work comes out slower than under a quota.

Periods are short (20 ms by default) so that a burst of a few milliseconds is throttled as a
fluid share would throttle it; with the kernel's default 100 ms period, a 6 ms turn at 29% could
run at full speed inside one period's quota.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ONE_VCPU_MB = 1769  # Lambda: "at 1,769 MB, a function has the equivalent of one vCPU"
MIN_QUOTA_US = 1000  # the kernel refuses a CFS quota under 1 ms


def share_of(memory_mb: int) -> float:
    """The share of one vCPU Lambda gives a function of ``memory_mb`` (capped at one: above
    1,769 MB the extra vCPUs help only work that runs on several threads at once)."""
    return min(1.0, memory_mb / ONE_VCPU_MB)


def cfs_quota_us(share: float, period_us: int) -> int:
    """CPU time per period, in microseconds, for ``share`` of one CPU."""
    if not 0 < share <= 1:
        raise ValueError(f"a share of one CPU is in (0, 1], not {share}")
    return max(MIN_QUOTA_US, round(share * period_us))


def duty_cycle(share: float, period: float) -> tuple[float, float]:
    """(running, stopped) seconds of each period for ``share`` of one CPU."""
    if not 0 < share <= 1:
        raise ValueError(f"a share of one CPU is in (0, 1], not {share}")
    return share * period, period - share * period


class Cgroup:
    """Runs each child in a fresh CPU cgroup of its own, removed when the child has exited."""

    name = "cgroup"

    def __init__(self, root: Path, version: int, period_us: int) -> None:
        self.root, self.version, self.period_us = root, version, period_us
        self._names = (f"bench-memory-{os.getpid()}-{n}" for n in itertools.count())

    def describe(self) -> str:
        files = "cpu.max" if self.version == 2 else "cpu.cfs_quota_us"
        return f"cgroup v{self.version} {files} under {self.root}, period {self.period_us / 1000:g} ms"

    @classmethod
    def find(cls, period_us: int) -> Cgroup | None:
        """A cgroup this process may create and cap, or None."""
        for root, version in ((Path("/sys/fs/cgroup"), 2), (Path("/sys/fs/cgroup/unified"), 2),
                              (Path("/sys/fs/cgroup/cpu"), 1), (Path("/sys/fs/cgroup/cpu,cpuacct"), 1)):
            marker = root / ("cgroup.controllers" if version == 2 else "cpu.cfs_quota_us")
            if not marker.exists() or (version == 2 and "cpu" not in marker.read_text().split()):
                continue
            cgroup = cls(root, version, period_us)
            try:
                with cgroup.capped(0.5):
                    return cgroup
            except OSError:
                continue
        return None

    @contextlib.contextmanager
    def capped(self, share: float) -> Iterator[Path]:
        path = self.root / next(self._names)
        path.mkdir()
        try:
            quota = cfs_quota_us(share, self.period_us)
            if self.version == 2:
                (path / "cpu.max").write_text(f"{quota} {self.period_us}")
            else:
                (path / "cpu.cfs_period_us").write_text(str(self.period_us))
                (path / "cpu.cfs_quota_us").write_text(str(quota))
            yield path
        finally:
            for _ in range(50):  # the last task leaves the cgroup a moment after the child is reaped
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)

    def run(self, command: list[str], env: dict[str, str], share: float, timeout: float) -> subprocess.CompletedProcess:
        with self.capped(share) as path:
            procs = path / "cgroup.procs"

            def enter() -> None:  # in the child, before exec: everything it runs is capped
                procs.write_text(str(os.getpid()))

            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=enter)


class DutyCycle:
    """Runs each child in a process group of its own, stopped and continued in slices."""

    name = "signals"

    def __init__(self, period: float) -> None:
        self.period = period

    def describe(self) -> str:
        return f"SIGSTOP/SIGCONT duty cycle of the child's process group, period {self.period * 1000:g} ms"

    def run(self, command: list[str], env: dict[str, str], share: float, timeout: float) -> subprocess.CompletedProcess:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        done = threading.Event()
        throttle = threading.Thread(target=self._cycle, args=(child.pid, share, done), daemon=True)
        if share < 1:
            throttle.start()
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            raise
        finally:
            done.set()
            if throttle.is_alive():
                throttle.join()
        return subprocess.CompletedProcess(command, child.returncode, out, err)

    def _cycle(self, group: int, share: float, done: threading.Event) -> None:
        running, stopped = duty_cycle(share, self.period)
        send: Callable[[int], None] = lambda sig: os.killpg(group, sig)  # noqa: E731
        with contextlib.suppress(ProcessLookupError):
            while not done.wait(running):
                send(signal.SIGSTOP)
                time.sleep(stopped)
                send(signal.SIGCONT)
            send(signal.SIGCONT)


Throttle = Cgroup | DutyCycle


def choose(kind: str, period: float) -> Throttle:
    """``kind``: "cgroup", "signals", or "auto" (a cgroup if one can be created and capped)."""
    if kind in ("auto", "cgroup"):
        cgroup = Cgroup.find(round(period * 1_000_000))
        if cgroup:
            return cgroup
        if kind == "cgroup":
            raise SystemExit("cpu_share: no CPU cgroup can be created and capped here (needs root and cgroupfs)")
    return DutyCycle(period)
