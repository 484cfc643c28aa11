"""Each Lambda function's IAM statements, from template.yaml as CloudFormation gets it:
the SAM transform (aws-sam-translator, the version `sam` uses) turns every
AWS::Serverless::Function into an AWS::Lambda::Function and its AWS::IAM::Role, and
this resolves the roles' intrinsics to concrete fake ARNs (one account, one region) and
adds the AWS managed policies they attach, as those policies read.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REGION, ACCOUNT, PARTITION, STACK = "us-east-1", "123456789012", "aws", "webhooks"

# The AWS managed policies SAM attaches (their documents, as AWS publishes them). A role
# with any other managed policy fails the check: its statements would be unknown.
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
    # What an SQS event source needs: on every queue of the account (the sender's own
    # statements confine it with a Deny).
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
}


class _NoManagedPolicyLookups(ManagedPolicyLoader):
    """The transform asks IAM for managed policy names only when a template names one
    by name; this template names none, and the test is offline."""

    def __init__(self):  # noqa: D107 - no IAM client
        pass

    def load(self):
        return {}


@dataclass
class Function:
    logical_id: str
    binary: str
    statements: list[dict]  # inline policies, resolved
    managed: list[dict]  # managed policies' statements
    table: str  # the ARN of the table TABLE_NAME names
    queue: str  # the ARN of the queue DELIVERY_QUEUE_URL names

    @property
    def all_statements(self) -> list[dict]:
        return self.statements + self.managed


def arn(resources: dict, logical_id: str) -> str:
    kind = resources[logical_id]["Type"]
    if kind == "AWS::DynamoDB::Table":
        return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{logical_id}"
    if kind == "AWS::SQS::Queue":
        return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{logical_id}"
    if kind == "AWS::Lambda::Function":
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
    return f"arn:{PARTITION}:fake:{REGION}:{ACCOUNT}:{logical_id}"


def ref(template: dict, name: str) -> str:
    pseudo = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": PARTITION,
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
    }
    if name in pseudo:
        return pseudo[name]
    if name in template.get("Parameters", {}):
        return str(template["Parameters"][name].get("Default", ""))
    resource = template["Resources"][name]
    if resource["Type"] == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return name  # a table's or a function's name


def get_att(template: dict, logical_id: str, attribute: str) -> str:
    if attribute == "Arn":
        return arn(template["Resources"], logical_id)
    if attribute == "QueueName":
        return logical_id
    raise ValueError(f"!GetAtt {logical_id}.{attribute}: not resolved here")


def resolve(template: dict, value):
    """Intrinsics to plain values: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If (the
    condition taken as true: both branches are checked where it matters)."""
    if isinstance(value, list):
        return [resolve(template, v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return ref(template, arg)
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return get_att(template, logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            variables = {k: resolve(template, v) for k, v in variables.items()}

            def substitute(match):
                name = match.group(1)
                if name in variables:
                    return str(variables[name])
                if "." in name:
                    return get_att(template, *name.split(".", 1))
                return ref(template, name)

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(p) for p in resolve(template, parts))
        if key == "Fn::If":
            return resolve(template, arg[1])
        if key.startswith("Fn::") or key == "Condition":
            raise ValueError(f"intrinsic not resolved here: {key}")
    return {k: resolve(template, v) for k, v in value.items()}


def cloudformation(template_text: str) -> dict:
    """template.yaml after the SAM transform (local CodeUri replaced, as `sam validate`
    does, since the transform wants an S3 location)."""
    sam = yaml_parse(template_text)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(copy.deepcopy(sam), {}, _NoManagedPolicyLookups())


def functions(template_text: str) -> list[Function]:
    cfn = cloudformation(template_text)
    resources = cfn["Resources"]
    out = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        role_ref = props["Role"]
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise ValueError(f"{logical_id}: a role from outside the template ({role_ref})")
        role = resources[role_ref["Fn::GetAtt"][0]]["Properties"]
        statements = []
        for policy in role.get("Policies", []):
            document = resolve(cfn, policy["PolicyDocument"])
            statements.extend(_as_list(document["Statement"]))
        managed = []
        for policy_arn in role.get("ManagedPolicyArns", []):
            own = policy_arn.get("Ref") if isinstance(policy_arn, dict) else None
            if own in resources and resources[own]["Type"] == "AWS::IAM::ManagedPolicy":
                # The template's own managed policy: its statements count as the role's.
                document = resolve(cfn, resources[own]["Properties"]["PolicyDocument"])
                statements.extend(_as_list(document["Statement"]))
                continue
            policy_arn = resolve(cfn, policy_arn)
            if policy_arn not in MANAGED:
                raise ValueError(f"{logical_id}: unknown managed policy {policy_arn}")
            managed.extend(MANAGED[policy_arn])
        if role.get("PermissionsBoundary"):
            raise ValueError(f"{logical_id}: permissions boundaries are not evaluated here")
        variables = resolve(cfn, props.get("Environment", {}).get("Variables", {}))
        binary = (
            resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical_id)
        )
        out.append(
            Function(
                logical_id=logical_id,
                binary=binary,
                statements=statements,
                managed=managed,
                table=arn(resources, variables.get("TABLE_NAME", "")) if variables.get("TABLE_NAME") in resources else "",
                queue=_queue_arn(resources, variables.get("DELIVERY_QUEUE_URL", "")),
            )
        )
    return out


def _queue_arn(resources: dict, url: str) -> str:
    name = url.rsplit("/", 1)[-1]
    return arn(resources, name) if name in resources else ""


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]
