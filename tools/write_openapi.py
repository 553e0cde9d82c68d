"""`make openapi`: write docs/openapi.json, the OpenAPI document generated from the app's routes.

A test fails when the committed file is stale, and the twin reads its routes from it.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from handler.composition import build  # noqa: E402  (after the path)
from handler.http_routes import openapi_json  # noqa: E402  (after the path)


def document() -> str:
    # The routes do not depend on the settings: build with none (files, no model).
    return openapi_json(build({}).http) + "\n"


if __name__ == "__main__":
    target = ROOT / "docs" / "openapi.json"
    target.write_text(document())
    print(f"wrote {target.relative_to(ROOT)}")
