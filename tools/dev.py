"""`make dev`: the function's handler served locally as Lambda and API Gateway would serve it:
the HTTP API, the WebSocket API at /ws and the queued turns, with no AWS account (tools/twin/).

Settings come from the shell, then `.env` (DOTENV_FILE names another file). The twin's own:
PORT (3000), WORKERS (4 AgentFunction containers), TURN_WORKERS (2 TurnWorkerFunction
containers), FUNCTION_TIMEOUT (29), TURN_TIMEOUT (300), MODEL_CHECK (on|off).

With no MODEL_ID anywhere, the bundled test model (tools/model_server.py) answers: a fresh clone
chats at once, with no account and no key; set MODEL_ID (see .env.example) for a real model.

Exit status: 0 when stopped (Ctrl-C, SIGTERM), 2 for a setting it cannot use or a taken port,
1 when the function's init fails otherwise.
"""

import sys
from typing import TYPE_CHECKING, Any

# Imports are in the functions: a Ctrl-C while they load is then caught (see the end), and a
# container spawned from this file (spawn start method) loads none of them.
if TYPE_CHECKING:
    from twin.config import Config
    from twin.terminal import Terminal


def main() -> int:
    import asyncio
    import os

    from twin import environment
    from twin.config import Config
    from twin.containers import InitFailed
    from twin.environment import SettingsProblem
    from twin.server import PortTaken
    from twin.terminal import Terminal

    environment.load_dotenv_file()
    environment.put_code_on_path()
    terminal = Terminal()
    try:
        config = Config.from_env(os.environ)
        environment.check_settings(environment.terminal_defaults(os.environ))
    except SettingsProblem as problem:
        terminal.line(f"cannot start: {problem}")
        return 2
    bundled = bundled_model()
    try:
        return asyncio.run(serve(config, terminal, bundled))
    except PortTaken as taken:
        terminal.line(str(taken))
        return 2
    except InitFailed as failed:
        terminal.line(f"cannot start: {failed}")
        return 2 if failed.kind == "settings" else 1
    finally:
        if bundled is not None:
            bundled.stop()


def bundled_model() -> Any:
    """The test model, in this process, when no model is configured (the function's containers
    are separate processes and reach it over HTTP, as they would any OpenAI-compatible server)."""
    import os

    if os.environ.get("MODEL_ID", "").strip():
        return None
    from model_server import ModelServer

    model = ModelServer(word_delay=0.03).start()
    os.environ.update(MODEL_ID="openai/test-model", MODEL_API_BASE=model.base_url, MODEL_API_KEY="not-needed")
    return model


async def serve(config: "Config", terminal: "Terminal", bundled: Any = None) -> int:
    import asyncio
    import os
    import signal

    from twin.server import Twin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    twin = Twin(config, os.environ, terminal)
    opening = asyncio.create_task(twin.open())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if opening.done():
        opening.result()  # raises what stopped the start-up
        if bundled is not None:
            terminal.line(f"no MODEL_ID is set, so the bundled test model answers ({bundled.base_url}): it knows "
                          "only what it is sent. For a real model set MODEL_ID (see .env.example).")
        terminal.line("Ctrl-C to stop")
        await stopping
        terminal.line("stopping…")
    else:
        terminal.line("stopping…")
        opening.cancel()  # open() cleans up after itself
        await asyncio.gather(opening, return_exceptions=True)
    await twin.close()
    terminal.line("stopped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before the twin's own handler is in place: nothing to clean up
        sys.exit(130)
