"""The linters and the security scanner find nothing: cfn-lint, `sam validate --lint` (the pinned
SAM CLI) and checkov (pinned in tools/checkov), the last on the template as written and on SAM's
transform of it for both sides of every switch, since the transform makes the functions' roles,
the alias and the schedule's rule. Checkov's waivers live in .checkov.yaml, each with its reason,
and are listed with the same reasons in docs/security.md."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cfnlint.api import lint

from tests.template.checkov import CHECKOV_CONFIG
from tests.template.stack import ROOT, TEMPLATE, tool_environment, tool_python

SECURITY_DOC = ROOT / "docs" / "security.md"


@pytest.mark.slow
def test_cfn_lint_reports_nothing() -> None:
    assert [str(match) for match in lint(TEMPLATE.read_text())] == []


@pytest.mark.slow
def test_sam_validate_lint_is_clean() -> None:
    result = subprocess.run([*tool_python("sam", "sam"), "-m", "samcli", "validate", "--lint", "--template",
                             str(TEMPLATE)], cwd=ROOT, env=tool_environment(), capture_output=True, text=True,
                            timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output
    assert not re.search(r"\b[EWI]\d{4}\b", output), output


@pytest.mark.slow
def test_checkov_finds_nothing_that_is_not_waived(checkov_report: dict) -> None:
    """checkov_report (tests/template/conftest.py) started when the run was collected."""
    report = checkov_report["report"]
    failed = [(c["check_id"], c["resource"], Path(c["file_path"]).name) for c in report["results"]["failed_checks"]]

    assert failed == []
    assert checkov_report["code"] == 0, checkov_report["stderr"][-3000:]
    assert report["summary"]["parsing_errors"] == 0
    scanned = {c["resource"] for c in report["results"]["passed_checks"]}
    # the functions exist only after the transform; the authorizer only with AuthMode=JWT
    assert {"AWS::Lambda::Function.AgentFunction", "AWS::Lambda::Function.TurnWorkerFunction",
            "AWS::Lambda::Function.WebSocketAuthorizerFunction", "AWS::IAM::Role.AgentFunctionRole",
            "AWS::S3::Bucket.SessionsBucket"} <= scanned


def waivers() -> list[str]:
    return yaml.safe_load(CHECKOV_CONFIG.read_text())["skip-check"]


def test_every_waiver_has_its_reason_beside_it() -> None:
    lines = CHECKOV_CONFIG.read_text().splitlines()
    for check in waivers():
        (at,) = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        assert lines[at - 1].strip().startswith("#"), f"{check} is waived without a reason"


def test_security_doc_lists_the_same_waivers() -> None:
    doc = SECURITY_DOC.read_text()
    section = doc.split("## Waived checks", 1)[1].split("\n## ", 1)[0]

    assert sorted(set(re.findall(r"CKV\d?_[A-Z]+_\d+", section))) == sorted(waivers())
    assert "checkov" in doc.lower()
