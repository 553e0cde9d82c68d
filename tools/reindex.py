"""make reindex: put every session written before the session list into its caller's list (and
the expiry sweep's markers), once after upgrading. Safe to run again; a caller's first
GET /sessions does the same for that caller alone. Reads SESSION_BUCKET / SESSION_DIR as the
function does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from agent.deadline import Deadline  # noqa: E402  (after the path above)
from agent.settings import Settings  # noqa: E402  (after the path above)
from agent.store import open_store  # noqa: E402  (after the path above)


def main() -> None:
    store = open_store(Settings.from_env())
    print(f"listed {store.reindex(Deadline.never())} sessions written before the session list")


if __name__ == "__main__":
    main()
