"""SnapStart hooks: what a restored execution environment must not share with the snapshot, and what
it should find already done."""

import random

import pytest

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


FIRST_TURN = """
import json, sys
from handler.composition import build
from handler import snapstart
from agent import ChatRequest, Deadline
services = build({"MODEL_ID": "openai/test-model", "MODEL_API_BASE": sys.argv[1], "MODEL_API_KEY": "k",
                  "SESSION_DIR": sys.argv[2]})
if sys.argv[3] == "snapshot":
    snapstart.snapshot()   # what Lambda runs once, before it takes the snapshot
    snapstart.restore()    # and what each environment resumed from it runs
before = set(sys.modules)
services.conversations.chat(ChatRequest("c", "s", "hello"), Deadline.after(20))
print("IMPORTED", len(set(sys.modules) - before))
"""


@pytest.mark.slow
def test_a_snapshot_carries_what_the_first_turn_would_import(model_server, tmp_path):
    """LiteLLM imports some 700 modules on its first call; made before the snapshot (against a
    canned answer in memory), a restored environment's first turn finds them loaded."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import ROOT, child_environment

    def imported(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", FIRST_TURN, model_server.base_url, str(tmp_path / mode), mode],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env=child_environment(PYTHONPATH=f"{ROOT / 'src'}"))
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.split("IMPORTED ")[-1])

    # Two independent processes, each mostly importing LiteLLM: run side by side (two cores).
    with ThreadPoolExecutor(2) as pool:
        cold, snapshot = pool.map(imported, ["cold", "snapshot"])
    assert cold > 300
    assert snapshot < 20
