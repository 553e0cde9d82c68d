"""SnapStart restore hooks: what a restored execution environment must not share with the snapshot."""

import random

from handler import snapstart


def test_restore_gives_each_environment_its_own_random_sequence():
    random.seed(1234)  # the state every environment would resume with
    snapshot_state = random.getstate()
    expected_without_reseed = [random.random() for _ in range(3)]

    random.setstate(snapshot_state)
    snapstart.restore()

    assert [random.random() for _ in range(3)] != expected_without_reseed


def test_a_failing_hook_does_not_stop_the_others():
    ran = []

    @snapstart.after_restore
    def broken() -> None:
        raise RuntimeError("boom")

    @snapstart.after_restore
    def later() -> None:
        ran.append("later")

    try:
        snapstart.restore()
    finally:
        snapstart._after_restore.remove(broken)
        snapstart._after_restore.remove(later)
    assert ran == ["later"]


def test_every_built_in_hook_runs_cleanly():
    for hook in [*snapstart._before_snapshot, *snapstart._after_restore]:
        hook()  # raises here if it would only be logged during a real restore
