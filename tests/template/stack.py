"""The template as CloudFormation would deploy it, for given parameter values, and the tools that
produce it (SAM's own transform, run with the pinned SAM CLI's Python; see sam_transform.py).

`Stack(transformed, **values)` decides the conditions, takes the Fn::If branches, removes
AWS::NoValue, substitutes parameters and pseudo parameters. What exists only once deployed
(resource Refs, Fn::GetAtt, a Fn::Sub naming a resource) is left as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"

AGENT = "AgentFunction"
WORKER = "TurnWorkerFunction"
AUTHORIZER = "WebSocketAuthorizerFunction"
# The functions that run conversations: the same code, the same environment, the same data access.
CONVERSATION_FUNCTIONS = (AGENT, WORKER)

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:model-api-key-AbCdEf"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:agent-alarms"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
# The other side of every switch in the template.
ALTERNATIVE = {
    "AuthMode": "JWT", "JwtIssuer": ISSUER, "JwtAudience": "web-client,cli-client",
    "CorsAllowOrigins": "https://app.example.com", "ModelId": "nebius/deepseek-ai/DeepSeek-V3-0324",
    "ModelApiKeySecretArn": SECRET_ARN, "SessionsKmsKeyArn": KEY_ARN, "Architecture": "x86_64",
    "FunctionTimeout": "60", "TurnTimeout": "900", "EnableAccessLogs": "false",
    "ReservedConcurrency": "20", "WorkerReservedConcurrency": "5", "AlarmTopicArn": TOPIC_ARN,
    "ApiGatewayLogsRole": "existing",
}
# What deploy time makes of the pseudo parameters, for tests that compare whole ARNs.
PSEUDO = {
    "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
    "AWS::StackName": "stateful-agent", "AWS::URLSuffix": "amazonaws.com",
}

NO_VALUE = object()


class Stack:
    """The template as CloudFormation evaluates it for given parameter values."""

    def __init__(self, template: dict, **values: str) -> None:
        self.template = template
        unknown = set(values) - set(template["Parameters"])
        assert not unknown, f"not parameters of the template: {unknown}"
        self.parameters = {
            name: self._parameter(spec, values.get(name, spec.get("Default")))
            for name, spec in template["Parameters"].items()
        }
        self.conditions: dict[str, bool] = {}
        for name in template.get("Conditions", {}):
            self._condition(name)
        self.resources = {
            name: self.evaluate(resource) for name, resource in template["Resources"].items()
            if self.conditions.get(resource.get("Condition"), True)
        }
        self.outputs = {name: self.evaluate(output) for name, output in template.get("Outputs", {}).items()
                        if self.conditions.get(output.get("Condition"), True)}

    @staticmethod
    def _parameter(spec: dict, value: Any) -> Any:
        value = "" if value is None else str(value)
        return value.split(",") if spec["Type"] == "CommaDelimitedList" else value

    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = self.evaluate(self.template["Conditions"][name])
        return self.conditions[name]

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in map(self.evaluate, node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (function, argument), = node.items()
            if function == "Ref" or function == "Condition" or function.startswith("Fn::"):
                return self._intrinsic(function, argument, node)
        evaluated = {key: self.evaluate(value) for key, value in node.items()}
        return {key: value for key, value in evaluated.items() if value is not NO_VALUE}

    def _intrinsic(self, function: str, argument: Any, node: dict) -> Any:
        if function == "Ref":
            if argument == "AWS::NoValue":
                return NO_VALUE
            return self.parameters.get(argument, PSEUDO.get(argument, node))
        if function == "Condition":
            return self._condition(argument)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.evaluate(when_true if self._condition(name) else when_false)
        if function == "Fn::GetAtt":
            return node
        if function == "Fn::Sub":
            return self._sub(argument, node)
        values = self.evaluate(argument)
        operations = {
            "Fn::Equals": lambda: values[0] == values[1],
            "Fn::Not": lambda: not values[0],
            "Fn::And": lambda: all(values),
            "Fn::Or": lambda: any(values),
            "Fn::Select": lambda: select(int(values[0]), values[1]),
            "Fn::Split": lambda: values[1].split(values[0]),
            "Fn::Join": lambda: values[0].join(values[1]),
            "Fn::FindInMap": lambda: self.template["Mappings"][values[0]][str(values[1])][str(values[2])],
        }
        if function not in operations:
            raise NotImplementedError(f"{function} is not evaluated by this test; add it")
        return operations[function]()

    def _sub(self, argument: Any, node: dict) -> Any:
        """Parameters and pseudo parameters are substituted; a Fn::Sub that still names a resource
        stays one (with what is left of its variable map), otherwise it becomes its string."""
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], self.evaluate(argument[1]))
        known = {**PSEUDO, **{k: v for k, v in self.parameters.items() if isinstance(v, str)},
                 **{k: v for k, v in variables.items() if isinstance(v, str)}}
        text = re.sub(r"\$\{([^}!]+)\}", lambda m: known.get(m.group(1), m.group(0)), text)
        left = {k: v for k, v in variables.items() if not isinstance(v, str)}
        if not re.search(r"\$\{[^}!]+\}", text):
            return text
        return {"Fn::Sub": [text, left] if left else text}

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def properties(self, name: str) -> dict:
        return self.resources[name]["Properties"]


def select(index: int, values: list) -> Any:
    """Fn::Select as CloudFormation runs it: an index past the end fails the deployment."""
    if not 0 <= index < len(values):
        raise IndexError(f"Fn::Select index {index} out of range for {values}")
    return values[index]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def environment(stack: Stack, function: str = AGENT) -> dict[str, str]:
    """A function's environment once deployed; resource references become plausible names."""
    variables = stack.properties(function)["Environment"]["Variables"]
    return {name: str(value) if isinstance(value, (str, int)) else f"stack-{name.lower()}-1a2b3c"
            for name, value in variables.items()}


def role_policies(stack: Stack, function: str) -> tuple[list, list[dict]]:
    """(managed policy ARNs, statements) of a function's role, the stack's own managed policies
    (a Ref in ManagedPolicyArns) counted as statements."""
    role = stack.properties(f"{function}Role")
    managed, statements = [], []
    for arn in role.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and arn.get("Ref") in stack.resources:
            statements += as_list(stack.properties(arn["Ref"])["PolicyDocument"]["Statement"])
        managed.append(arn)
    for policy in role.get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    return managed, statements


def statements(stack: Stack, function: str = AGENT) -> list[dict]:
    return role_policies(stack, function)[1]


def granted(stack: Stack, function: str) -> dict[str, list]:
    """Action -> the resources it is allowed on, for one function's role."""
    by_action: dict[str, list] = {}
    for statement in statements(stack, function):
        assert statement["Effect"] == "Allow", statement
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).extend(as_list(statement["Resource"]))
    return by_action


# ---- the pinned SAM CLI and checkov ---------------------------------------------------------


def tool_python(project: str, executable: str) -> list[str]:
    """A pinned tool's Python: its synced venv, else through uv (which syncs it)."""
    venv = ROOT / "tools" / project / ".venv" / "bin"
    if (venv / executable).exists():
        return [str(venv / "python")]
    uv = shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip(f"neither tools/{project}/.venv nor uv is available (run `make setup`)")
    return [uv, "run", "--frozen", "--project", str(ROOT / "tools" / project), "python"]


def tool_environment() -> dict[str, str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    return env


def transform(template_text: str) -> dict:
    """SAM's transform of a template, as CloudFormation's AWS::Serverless transform would make it."""
    result = subprocess.run([*tool_python("sam", "sam"), str(Path(__file__).with_name("sam_transform.py")), "-"],
                            input=template_text, cwd=ROOT, env=tool_environment(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def with_defaults(template_text: str, values: dict[str, str]) -> str:
    """The template with other parameter defaults (for scanners that only read defaults)."""
    from cfnlint.decode import decode_str

    decoded, errors = decode_str(template_text)
    assert not errors, errors
    for name, value in values.items():
        decoded["Parameters"][name]["Default"] = value
    return json.dumps(decoded)
