"""`make bench-memory`'s CPU share of a memory size: Lambda's proportion, as a cgroup quota and as a
duty cycle. Arithmetic only (no child process): how accurate the throttles are is what the benchmark
prints first, as its calibration."""

import cpu_share
import pytest


@pytest.mark.parametrize(("memory_mb", "share"), [(512, 0.289), (768, 0.434), (1024, 0.579), (1769, 1.0)])
def test_a_memory_size_gets_its_proportion_of_one_vcpu(memory_mb: int, share: float) -> None:
    assert cpu_share.share_of(memory_mb) == pytest.approx(share, abs=0.0005)


def test_above_one_vcpu_a_single_thread_gets_no_more_than_one() -> None:
    assert cpu_share.share_of(3008) == 1.0


def test_the_quota_is_the_share_of_each_period_in_microseconds() -> None:
    assert cpu_share.cfs_quota_us(cpu_share.share_of(512), 20_000) == 5789
    assert cpu_share.cfs_quota_us(1.0, 20_000) == 20_000


def test_a_quota_below_the_kernels_minimum_is_raised_to_it() -> None:
    assert cpu_share.cfs_quota_us(cpu_share.share_of(128), 10_000) == cpu_share.MIN_QUOTA_US


def test_the_duty_cycle_runs_the_share_of_each_period_and_stops_the_rest() -> None:
    running, stopped = cpu_share.duty_cycle(cpu_share.share_of(768), 0.02)
    assert running == pytest.approx(0.00868, abs=1e-5)
    assert running + stopped == pytest.approx(0.02)


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_one_cpu_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share of one CPU"):
        cpu_share.cfs_quota_us(share, 20_000)
    with pytest.raises(ValueError, match="share of one CPU"):
        cpu_share.duty_cycle(share, 0.02)
