"""SnapStart: what must be redone when Lambda resumes this function from a snapshot.

With SnapStart (template: SnapStart ApplyOn PublishedVersions), init runs once, when a version
is published: imports, settings, the model, AWS clients. Every new execution environment then
resumes from a memory snapshot of that process. Whatever init made unique or time-bound is
shared by all those environments, or stale by the time they run:

- `random`'s generator was seeded once, at import: every environment would draw the same
  "random" numbers (retry jitter, sampling). It is reseeded from the OS after a restore.
- A secret read during init (the model's key) may have been rotated since the snapshot: the
  model provider forgets it (registered by composition.py, which both entry points build), so the
  next turn reads the current value.
- LiteLLM's first call imports some 700 modules (about two seconds): it is made once before the
  snapshot, against a canned answer in memory, so restored environments start with them loaded.
- LiteLLM's cache of HTTP clients is emptied before the snapshot and after a restore, so no
  model connection outlives either.
- Credentials need nothing here: Lambda serves a SnapStart function's credentials from its
  container credentials endpoint, and botocore refreshes those by itself.

Importing this module registers the hooks; `end_init()` (called last by app.py and worker_app.py)
closes init. Other modules add theirs with `after_restore` (composition.py: the model's key).
`snapshot_restore_py` exists only in Lambda's managed runtime; elsewhere (tests, `make dev`) nothing
is ever restored, and `restore()` runs the hooks by hand.
"""

from __future__ import annotations

import gc
import logging
import random
from collections.abc import Callable

try:  # part of Lambda's managed Python runtime, not a package we ship
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:
    register_after_restore = register_before_snapshot = None

logger = logging.getLogger(__name__)

Hook = Callable[[], None]
_after_restore: list[Hook] = []
_before_snapshot: list[Hook] = []


def end_init() -> None:
    """Call at the end of the handler's import, which began with `gc.disable()`.

    Init builds a few hundred thousand objects that live as long as the process (modules,
    classes, clients). With the cyclic GC running during the imports, each of its passes
    re-scans them: about a fifth of the import's CPU time here. So the GC is paused for init,
    and resumed with everything init built moved to the permanent generation (gc.freeze), which
    later passes, during requests, skip too. It is also what the snapshot captures.
    """
    gc.freeze()
    gc.enable()


def after_restore(hook: Hook) -> Hook:
    """Run `hook` in every execution environment resumed from the snapshot, in registration order."""
    _after_restore.append(hook)
    return hook


def before_snapshot(hook: Hook) -> Hook:
    """Run `hook` once, just before Lambda takes the snapshot."""
    _before_snapshot.append(hook)
    return hook


def restore() -> None:
    """Run the after-restore hooks. A failing hook is logged and the rest still run: a restore
    must not fail the whole environment over, say, a cache that could not be emptied."""
    _run(_after_restore, "after restore")


def snapshot() -> None:
    _run(_before_snapshot, "before snapshot")


def _run(hooks: list[Hook], when: str) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            logger.warning("SnapStart hook %s failed (%s)", getattr(hook, "__name__", hook), when, exc_info=True)


@after_restore
def reseed_random() -> None:
    random.seed()  # from os.urandom: a different sequence in each restored environment


@before_snapshot
def prime_model_calls() -> None:
    """Keep LiteLLM's first-call imports in the snapshot (about two seconds off each environment's
    first turn); see agent.model.prime."""
    from agent.model import prime

    prime()


@before_snapshot
@after_restore
def drop_model_http_clients() -> None:
    from agent.model import forget_all_clients

    forget_all_clients()


def _install() -> bool:
    """Hand our two hooks to the runtime once; True when SnapStart hooks are active."""
    if register_after_restore is None or register_before_snapshot is None:
        return False
    register_before_snapshot(snapshot)
    register_after_restore(restore)
    return True


ACTIVE = _install()
