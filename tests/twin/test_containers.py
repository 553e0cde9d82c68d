"""Containers as Lambda's execution environments: one invocation each at a time, and one that
dies is replaced while the twin goes on serving."""

import asyncio
import os
import signal

import pytest
from model_server import Reply

from tests.polling import until_async
from tests.twin.conftest import post, run, session_id

pytestmark = pytest.mark.slow


def agent_pool(twin):
    return twin.pools["AgentFunction"]


def test_a_killed_idle_container_is_replaced_and_the_next_request_succeeds(twin):
    pool = agent_pool(twin)
    before = pool.pids()
    os.kill(before[0], signal.SIGKILL)

    async def scenario(client):
        await until_async(lambda: _replaced(pool, before), timeout=10, every=0.05)
        return await post(client, twin, session_id(), "hello")

    status, _, body = run(scenario)
    assert status == 200 and body["reply"] == "Noted: hello"
    assert len(pool.pids()) == len(before) and before[0] not in pool.pids()


def test_a_container_killed_mid_request_answers_502_and_is_replaced(twin, model):
    pool = agent_pool(twin)
    before = pool.pids()
    model.queue(Reply.slow("a slow answer to be cut short", 5))

    async def scenario(client):
        slow = asyncio.create_task(post(client, twin, session_id(), "take your time"))
        busy = await until_async(lambda: _busy(pool), timeout=10, every=0.05)
        os.kill(busy[0], signal.SIGKILL)
        cut = await slow
        await until_async(lambda: _replaced(pool, before), timeout=10, every=0.05)
        return cut, await post(client, twin, session_id(), "hello again")

    (status, _, body), (next_status, _, _) = run(scenario)
    assert status == 502 and body == {"message": "Internal Server Error"}
    assert next_status == 200
    assert any("function error Runtime.ExitError" in line for line in twin.terminal.lines)
    assert any("exited during an invocation; replaced" in line for line in twin.terminal.lines)


async def _replaced(pool, before):
    pids = pool.pids()
    return len(pids) == len(before) and pids != before


async def _busy(pool):
    return pool.busy_pids()
