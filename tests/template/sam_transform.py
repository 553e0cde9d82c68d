"""Print template.yaml after the AWS::Serverless transform, as JSON. Runs under the pinned SAM
CLI's Python (tools/sam), which carries the translator CloudFormation runs at deploy time.

`sam validate --lint` checks the template as written; this shows what it becomes (routes and their
integrations, the function's role, the schedule's rule), so tests can check what gets deployed
without an AWS account. Usage: python sam_transform.py template.yaml (or - for standard input)
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator asks boto for a region

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """The template names no managed policies (SAM adds its own as ARNs), so no IAM lookup."""

    def load(self) -> dict:
        return {}


def packaged(template: dict) -> dict:
    """Code locations as `sam package` leaves them: S3 URIs instead of local folders."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = "s3://artifacts/function.zip"
        if resource.get("Type") == "AWS::Serverless::LayerVersion" and "ContentUri" in properties:
            properties["ContentUri"] = "s3://artifacts/layer.zip"
    return template


def main(path: str) -> None:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    template = packaged(yaml_parse(text))
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
