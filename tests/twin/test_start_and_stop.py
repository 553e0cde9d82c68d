"""`make dev` as a developer meets it: its start-up lines, a clear line and exit status 2 for a
setting it cannot use or a taken port, and a clean stop (no traceback, no process left behind)."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from model_server import ModelServer

from tests.conftest import ROOT
from tests.polling import until
from tests.twin.conftest import function_env
from twin.config import Config
from twin.model_check import MAKE_MODEL_PORT
from twin.server import Twin, model_answers

pytestmark = pytest.mark.slow


class Dev:
    """`python tools/dev.py`, as `make dev` runs it, with its output collected line by line."""

    def __init__(self, env: dict[str, str], new_group: bool = False) -> None:
        self.process = subprocess.Popen([sys.executable, "tools/dev.py"], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=new_group)
        self.new_group = new_group
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None  # opened with stdout=PIPE
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 90) -> str:
        def line() -> str:
            found = [line for line in self.lines if text in line]
            assert found or self.process.poll() is None, "\n".join(self.lines)  # it exited without saying it
            return found[0] if found else ""

        try:
            return until(line, timeout, every=0.05, what=f"a line with {text!r}")
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n" + "\n".join(self.lines)) from None

    def kill(self) -> None:
        """After a failed test: nothing left running (its containers too, when it leads a group)."""
        with contextlib.suppress(ProcessLookupError):
            if self.new_group:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code, "\n".join(self.lines)


def dev_env(**settings: str) -> dict[str, str]:
    return {**os.environ, "DOTENV_FILE": os.devnull, "PYTHONPATH": "", **settings}


def descendants(pid: int) -> set[int]:
    """Every process under ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):  # a process that ended meanwhile
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()
            and (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")}


def stop_cleanly(dev: Dev, how: str) -> None:
    """Stop `make dev` as a developer does, then: exit status 0, no traceback, no process left."""
    processes = descendants(dev.process.pid)
    assert len(processes) >= 3, processes  # the init process and a container of each function, at least
    try:
        if how == "ctrl-c":  # the terminal sends SIGINT to every process of its foreground group
            os.killpg(dev.process.pid, signal.SIGINT)
        else:
            dev.process.send_signal(signal.SIGTERM)
        code, output = dev.finish()
    finally:
        if dev.process.poll() is None:
            dev.kill()
    assert code == 0, output
    assert "Traceback" not in output and "Task was destroyed" not in output, output
    assert "Exception ignored" not in output, output
    until(lambda: not alive(processes), timeout=5, what="every process of the twin ended")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_leaves_no_process_and_no_traceback(model, tmp_path):
    """Ctrl-C is test_a_fresh_clone_chats_at_once_with_the_bundled_test_model's way to stop."""
    closed_port = free_port()
    env = dev_env(**function_env(model, tmp_path / "sessions", MODEL_API_BASE=f"http://127.0.0.1:{closed_port}/v1"),
                  PORT="0", WORKERS="1", TURN_WORKERS="1", PYTHONPATH="")
    dev = Dev(env)
    try:
        ready = dev.wait_for("ready in")
        dev.wait_for("Ctrl-C to stop")
        url = ready.split("serving ")[1].split(" ")[0]
        assert f"files under {tmp_path / 'sessions'}/" in ready and "ws://127.0.0.1:" in ready and "/docs" in ready
        assert "model openai/test-model at" in dev.wait_for("not answering (connection refused)")
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as response:
            assert response.status == 200
        dev.wait_for("GET /openapi.json  200")
    except BaseException:
        dev.kill()
        raise
    stop_cleanly(dev, "sigterm")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_taken_port_is_one_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "tools/dev.py"], cwd=ROOT, env=dev_env(PORT=str(port)),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout.strip().endswith(f"Port {port} is taken; run `make dev PORT={port + 1}`.")
    assert len(done.stdout.strip().splitlines()) == 1 and not done.stderr


@pytest.mark.parametrize("setting, named", [
    ({"HISTORY_WINDOW": "many"}, "HISTORY_WINDOW must be a whole number from 2 up, not 'many'."),
    ({"MODEL_PARAMS": "{not json"}, "MODEL_PARAMS must be a JSON object"),
    ({"WORKERS": "lots"}, "WORKERS must be a whole number from 1 to 64, not 'lots'."),
])
def test_a_malformed_setting_is_one_line_naming_it_and_exit_2(setting, named):
    done = subprocess.run([sys.executable, "tools/dev.py"], cwd=ROOT, env=dev_env(PORT="0", **setting),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert named in done.stdout and len(done.stdout.strip().splitlines()) == 1, done.stdout
    assert not done.stderr


@pytest.mark.parametrize("params, named", [
    ('{"temprature": 0.3}', "MODEL_PARAMS has 'temprature', which openai/test-model does not take; "
                            "did you mean 'temperature'?"),
    ('{"temperature": "hot"}', "MODEL_PARAMS temperature must be a number, not 'hot'."),
])
def test_a_model_param_litellm_would_not_take_stops_start_up_in_one_line(params, named):
    """Checked by the function's init (it asks LiteLLM), so after the line saying containers start."""
    done = subprocess.run([sys.executable, "tools/dev.py"], cwd=ROOT, env=dev_env(PORT="0", MODEL_PARAMS=params),
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 2
    said = [line for line in done.stdout.splitlines() if "MODEL_PARAMS" in line]
    assert len(said) == 1 and said[0].endswith(f"cannot start: {named}"), done.stdout
    assert not done.stderr


@pytest.mark.parametrize("model_id, problem", [
    ("nonsense/foo", "MODEL_ID 'nonsense/foo' names no provider LiteLLM knows"),
    ("openai/gpt-4o-mini", "MODEL_ID openai/gpt-4o-mini needs an API key and none is set: set MODEL_API_KEY"),
])
def test_a_model_set_up_problem_is_one_line(tmp_path, model_id, problem):
    env = {k: v for k, v in dev_env(PORT="0", WORKERS="1", TURN_WORKERS="1", MODEL_ID=model_id,
                                    SESSION_DIR=str(tmp_path / "sessions")).items()
           if k not in ("MODEL_API_KEY", "MODEL_API_BASE", "OPENAI_API_KEY")}
    dev = Dev(env, new_group=True)
    try:
        dev.wait_for("Ctrl-C to stop")
    finally:
        os.killpg(dev.process.pid, signal.SIGTERM)
    code, output = dev.finish()
    said = [line for line in output.splitlines() if "MODEL_ID" in line]
    assert len(said) == 1 and said[0].endswith(f"model: {problem}" + said[0].split(problem, 1)[1]), output
    assert "retry" not in output and code == 0


def test_the_model_line_says_what_a_turn_would_meet():
    twin = Twin(Config(port=0), {})
    twin.report = {"model_id": "nonsense", "model_problem": "MODEL_ID 'nonsense' names no provider LiteLLM knows"}
    assert asyncio.run(twin._model_line()) == "model: MODEL_ID 'nonsense' names no provider LiteLLM knows"
    twin.report = {"model_id": "bedrock/us.amazon.nova-2-lite-v1:0", "model_problem": None, "model_api_base": None}
    assert "not checked" in asyncio.run(twin._model_line())
    with ModelServer() as model:  # lists its model as OpenAI-compatible servers do
        assert asyncio.run(model_answers(model.base_url)) == "answering"
        assert asyncio.run(model_answers(model.base_url + "/nowhere")) == "answering (GET /models: 404)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_fresh_clone_chats_at_once_with_the_bundled_test_model(tmp_path):
    """No MODEL_ID anywhere (no .env): `make dev` answers with the bundled test model, so the
    README's first command gives a working chat with no account and no key."""
    import json

    port = free_port()
    # one container of each function: enough for a chat, and each container costs start-up time
    env = {k: v for k, v in dev_env(PORT=str(port), SESSION_DIR=str(tmp_path / "sessions"), WORKERS="1",
                                    TURN_WORKERS="1").items()
           if not k.startswith("MODEL_")}
    dev = Dev(env, new_group=True)
    try:
        assert dev.wait_for("model openai/test-model at").endswith(": answering")
        dev.wait_for("the bundled test model answers")  # said once it is ready
        dev.wait_for("Ctrl-C to stop")

        def post(message: str) -> dict:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/sessions/user_arindam_convo_123/messages",
                                             data=json.dumps({"message": message}).encode(), method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())

        post("Hey, my name is Arindam.")
        assert post("Do you remember my name?")["reply"] == "Yes, your name is Arindam."
    except BaseException:
        dev.kill()
        raise
    stop_cleanly(dev, "ctrl-c")  # (test_sigterm_leaves_no_process_and_no_traceback: SIGTERM)


def test_nothing_on_make_models_port_says_start_make_model():
    with socket.socket() as probe:  # the check is only as good as the port being free
        if probe.connect_ex(("127.0.0.1", MAKE_MODEL_PORT)) == 0:
            pytest.skip(f"something listens on {MAKE_MODEL_PORT} here")
    assert asyncio.run(model_answers(f"http://127.0.0.1:{MAKE_MODEL_PORT}/v1")) == \
        "not answering (connection refused) — start it with `make model`"


def test_a_wrong_port_names_it_and_does_not_send_you_to_make_model():
    port = free_port()
    said = asyncio.run(model_answers(f"http://localhost:{port}/v1"))

    assert said.startswith(f"not answering (connection refused) — nothing listens on port {port}")
    assert "start it with `make model`" not in said


def test_a_wrong_port_beside_a_running_make_model_points_at_it(monkeypatch):
    """make model on its port (here: a model server on a port standing in for 8000), MODEL_API_BASE on another."""
    import twin.model_check as model_check

    with ModelServer() as model:
        make_model_port = urlsplit(model.base_url).port
        monkeypatch.setattr(model_check, "MAKE_MODEL_PORT", make_model_port)
        said = asyncio.run(model_answers(f"http://127.0.0.1:{free_port()}/v1"))

    assert f"something does on {make_model_port} (make model's port): check the port in MODEL_API_BASE" in said


@pytest.mark.parametrize("base, said", [
    ("localhost:8000/v1", "MODEL_API_BASE 'localhost:8000/v1' has no scheme — add http:// (http://localhost:8000/v1)"),
    ("127.0.0.1:8000/v1", "MODEL_API_BASE '127.0.0.1:8000/v1' has no scheme — add http:// (http://127.0.0.1:8000/v1)"),
    ("ws://127.0.0.1:8000/v1", "MODEL_API_BASE 'ws://127.0.0.1:8000/v1' must start with http:// or https://"),
    ("http://127.0.0.1:80x/v1", "MODEL_API_BASE 'http://127.0.0.1:80x/v1' is not a URL — write it as http://<host>:<port>/v1"),
])
def test_a_base_url_without_a_usable_scheme_is_named(base, said):
    assert asyncio.run(model_answers(base)) == said


def test_a_host_that_does_not_resolve_says_so():
    said = asyncio.run(model_answers("http://model-server.invalid:8000/v1"))  # .invalid never resolves (RFC 2606)

    assert said == "not answering (the host 'model-server.invalid' does not resolve) — check MODEL_API_BASE"
