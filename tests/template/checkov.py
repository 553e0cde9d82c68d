"""Checkov on template.yaml and on SAM's transforms of it, for the defaults and for the other side of
every switch (checkov reads parameter defaults only, so the second is made with other defaults),
run in the background: start it early, read the report when a test needs it.

The transforms (the pinned SAM CLI, ~2 s each) and checkov (~15 s) run in a thread and a child
process; checkov writes to files, never to a pipe nobody reads, so it never stalls on a full one.
"""

import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.template.stack import ALTERNATIVE, ROOT, TEMPLATE, tool_environment, tool_python, transform, with_defaults

CHECKOV_CONFIG = ROOT / ".checkov.yaml"
TIMEOUT_SECONDS = 600


class CheckovScan:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="checkov-"))
        self.process: subprocess.Popen | None = None
        self.failure: BaseException | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._starting = threading.Thread(target=self._start, name="checkov", daemon=True)
        self._starting.start()

    def _start(self) -> None:
        try:
            transformed = self.folder / "transformed-defaults.json"
            transformed.write_text(json.dumps(transform(TEMPLATE.read_text())))
            alternative = self.folder / "transformed-alternative.json"
            alternative.write_text(json.dumps(transform(with_defaults(TEMPLATE.read_text(), ALTERNATIVE))))
            command = [*tool_python("checkov", "checkov"), "-m", "checkov.main", "--config-file", str(CHECKOV_CONFIG),
                       "--output", "json", "-f", str(TEMPLATE), "-f", str(transformed), "-f", str(alternative)]
            with self._lock, (self.folder / "stdout").open("w") as out, (self.folder / "stderr").open("w") as err:
                if not self._stopped:
                    self.process = subprocess.Popen(command, cwd=ROOT, env=tool_environment(), stdout=out,
                                                    stderr=err, stdin=subprocess.DEVNULL)
        except BaseException as error:  # raised in the test that reads the report, not in this thread
            self.failure = error

    def report(self) -> dict:
        """The scan's JSON report, its exit code and the end of its stderr (waits for it to finish)."""
        self._starting.join(TIMEOUT_SECONDS)
        if self.failure is not None:
            raise self.failure
        assert self.process is not None, "checkov did not start"
        code = self.process.wait(TIMEOUT_SECONDS)
        stdout, stderr = (self.folder / "stdout").read_text(), (self.folder / "stderr").read_text()
        assert stdout.strip(), stderr[-3000:]
        return {"code": code, "report": json.loads(stdout), "stderr": stderr}

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
