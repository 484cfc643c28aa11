"""Checks template.yaml's roles against the requests each function made (run by
tests/it/iam.rs, which records them through the capacity meter):

1. every request a function made is allowed by its role;
2. every request of FORBIDDEN (and of EVERYONE_FORBIDDEN, for every function, those
   the template adds later included) is denied;
3. no inline grant goes unused: each action a function's own statements allow on its
   table, indexes or queue, and each partition-key pattern they allow writes on, was
   used by a request of that function (so a grant cannot outlive the code that needed
   it, and a function that makes no request may be granted nothing);
4. no statement limits a multivalued key with ForAllValues without requiring it
   (`Null: false`), which would let a request without the key through.

Usage: check.py --template template.yaml --requests log.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import roles
from policy import ALLOW, Request, decide, glob_matches, matches_action, matches_resource, statement_holes

SQS_ACTION = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    "ReceiveMessage(empty)": "ReceiveMessage",
}
ELEMENT_ACTION = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# The data-plane and queue actions a grant is checked against (check 3).
UNIVERSE = [
    f"dynamodb:{a}"
    for a in (
        "GetItem BatchGetItem Query Scan PutItem UpdateItem DeleteItem BatchWriteItem "
        "ConditionCheckItem DescribeTable PartiQLSelect PartiQLInsert PartiQLUpdate "
        "PartiQLDelete GetRecords DeleteTable UpdateTable"
    ).split()
] + [
    f"sqs:{a}"
    for a in (
        "SendMessage ReceiveMessage DeleteMessage ChangeMessageVisibility "
        "GetQueueAttributes GetQueueUrl PurgeQueue SetQueueAttributes DeleteQueue"
    ).split()
]


def requests_of(access: dict, fn: roles.Function) -> list[Request]:
    """How IAM authorises one logged request: a transaction element by element (as its
    Put/Update/Delete/ConditionCheck action), anything else as one request whose
    dynamodb:LeadingKeys holds every partition key it touches."""
    op = access["operation"]
    if access["service"] == "sqs":
        return [Request(f"sqs:{SQS_ACTION.get(op, op)}", fn.queue)]
    items = access["items"]

    def request(action: str, group: list[dict]) -> Request:
        context: dict[str, list[str]] = {}
        keys = sorted({i["partition_key"] for i in group if i["partition_key"]})
        if keys:
            context["dynamodb:LeadingKeys"] = keys
        names = sorted({a for i in group for a in i["attributes"]})
        if names:
            context["dynamodb:Attributes"] = names
        for field, key in (("return_values", "dynamodb:ReturnValues"), ("select", "dynamodb:Select")):
            if access.get(field):
                context[key] = [access[field]]
        index = next((i["index"] for i in group if i.get("index")), None)
        resource = fn.table + (f"/index/{index}" if index else "")
        return Request(f"dynamodb:{action}", resource, context)

    if op in ("TransactWriteItems", "TransactGetItems"):
        return [request(ELEMENT_ACTION[i["action"]], [i]) for i in items]
    return [request(op, items)]


# Requests a function must never be allowed: (function binary, what, action, partition
# key, attribute names, ReturnValues). A key of None: the request has no partition key.
KEY = ("pk", "sk")
FORBIDDEN = [
    ("publish-api", "mint an API key", "PutItem", "APIKEY#h", KEY + ("org", "role"), None),
    ("publish-api", "change a key's role", "UpdateItem", "APIKEY#h", KEY + ("role",), None),
    ("publish-api", "delete an API key", "DeleteItem", "APIKEY#h", KEY, None),
    ("publish-api", "overwrite an endpoint", "PutItem", "ORG#acme", KEY + ("url",), None),
    ("publish-api", "delete an endpoint", "DeleteItem", "ORG#acme", KEY, None),
    ("publish-api", "take an endpoint number", "UpdateItem", "SERIAL", KEY + ("last",), None),
    ("publish-api", "write statistics", "UpdateItem", "STATS#acme", KEY + ("s1",), None),
    ("publish-api", "write the due list", "PutItem", "DUE#202601010000#0", KEY, None),
    ("publish-api", "purge deliveries", "BatchWriteItem", "DLV#1", KEY, None),
    ("sender", "delete an endpoint", "DeleteItem", "ORG#acme", KEY, None),
    ("sender", "overwrite an endpoint", "PutItem", "ORG#acme", KEY + ("url",), None),
    ("sender", "mint an API key", "PutItem", "APIKEY#h", KEY + ("org", "role"), None),
    ("sender", "record a key's use", "UpdateItem", "APIKEY#h", KEY + ("last_used_at",), None),
    ("sender", "write an event", "PutItem", "EVT#acme#e", KEY, None),
    ("sender", "take an endpoint number", "UpdateItem", "SERIAL", KEY + ("last",), None),
    ("sender", "delete an event", "DeleteItem", "EVT#acme#e", KEY, None),
    ("scheduler", "write an organisation's item", "PutItem", "ORG#acme", KEY, None),
    ("scheduler", "change an endpoint", "UpdateItem", "ORG#acme", KEY + ("url",), None),
    ("scheduler", "write a delivery", "PutItem", "DLV#1", KEY, None),
    ("scheduler", "write the due list", "PutItem", "DUE#202601010000#0", KEY, None),
    ("scheduler", "mint an API key", "PutItem", "APIKEY#h", KEY + ("org", "role"), None),
    ("endpoints-api", "change a key's role", "UpdateItem", "APIKEY#h", KEY + ("role",), None),
    ("endpoints-api", "delete an API key", "DeleteItem", "APIKEY#h", KEY, None),
    ("endpoints-api", "read a whole key back on its last use", "UpdateItem", "APIKEY#h",
     KEY + ("last_used_at",), "ALL_OLD"),
    ("endpoints-api", "write statistics", "UpdateItem", "STATS#acme", KEY + ("s1",), None),
    ("endpoints-api", "write the due list", "PutItem", "DUE#202601010000#0", KEY, None),
    ("endpoints-api", "move the scheduler's mark", "UpdateItem", "SCHED", KEY + ("through",), None),
    ("endpoints-api", "purge deliveries itself", "BatchWriteItem", "DLV#1", KEY, None),
    ("endpoints-api", "write a recovery", "PutItem", "RECOVERY#r", KEY, None),
    ("deliveries-api", "mint an API key", "PutItem", "APIKEY#h", KEY + ("org", "role"), None),
    ("deliveries-api", "change a key's role", "UpdateItem", "APIKEY#h", KEY + ("role",), None),
    ("deliveries-api", "delete an endpoint", "DeleteItem", "ORG#acme", KEY, None),
    ("deliveries-api", "overwrite an endpoint", "PutItem", "ORG#acme", KEY + ("url",), None),
    ("deliveries-api", "take an endpoint number", "UpdateItem", "SERIAL", KEY + ("last",), None),
    ("deliveries-api", "delete a delivery", "DeleteItem", "DLV#1", KEY, None),
    ("deliveries-api", "purge deliveries", "BatchWriteItem", "DLV#1", KEY, None),
    ("deliveries-api", "write statistics", "UpdateItem", "STATS#acme", KEY + ("s1",), None),
    ("deliveries-api", "write the due list", "PutItem", "DUE#202601010000#0", KEY, None),
]
# For every function the template has, whatever it is.
EVERYONE_FORBIDDEN = [
    ("scan the table", "Scan", None),
    ("drop the table", "DeleteTable", None),
    ("write an item of an unknown prefix", "PutItem", "OTHER#x"),
    ("a write without a partition key", "UpdateItem", None),
    ("a PartiQL write", "PartiQLUpdate", "ORG#acme"),
]
EVERYONE_FORBIDDEN_SQS = [
    ("read the dead-letter queue", "ReceiveMessage", "dlq"),
    ("delete from the dead-letter queue", "DeleteMessage", "dlq"),
    ("send to the dead-letter queue", "SendMessage", "dlq"),
    ("purge the delivery queue", "PurgeQueue", "queue"),
    ("change the delivery queue", "SetQueueAttributes", "queue"),
    ("read another queue", "ReceiveMessage", "other"),
]


def forbidden_requests(fn: roles.Function, queues: dict[str, str]) -> list[tuple[str, Request]]:
    def dynamo(action, pk, attributes=KEY, return_values=None, resource=None):
        context = {"dynamodb:Attributes": list(attributes)}
        if pk:
            context["dynamodb:LeadingKeys"] = [pk]
        if return_values:
            context["dynamodb:ReturnValues"] = [return_values]
        return Request(f"dynamodb:{action}", resource or fn.table, context)

    out = [
        (what, dynamo(action, pk, attributes, rv))
        for binary, what, action, pk, attributes, rv in FORBIDDEN
        if binary == fn.binary
    ]
    out += [(what, dynamo(action, pk)) for what, action, pk in EVERYONE_FORBIDDEN]
    other_table = fn.table.rsplit("/", 1)[0] + "/SomeOtherTable"
    out += [
        ("read another table", dynamo("GetItem", "ORG#acme", resource=other_table)),
        ("write another table", dynamo("PutItem", "ORG#acme", resource=other_table)),
    ]
    out += [(what, Request(f"sqs:{action}", queues[q])) for what, action, q in EVERYONE_FORBIDDEN_SQS]
    return out


def shape(request: Request) -> str:
    """`dynamodb:UpdateItem APIKEY# [last_used_at, pk, sk]`: the action, the partition
    keys' constant parts, and the attributes named."""
    prefixes = sorted(
        {k.split("#", 1)[0] + "#" if "#" in k else k for k in request.context.get("dynamodb:LeadingKeys", [])}
    )
    where = request.resource.rsplit(":", 1)[-1].replace("table/", "")
    attributes = request.context.get("dynamodb:Attributes", [])
    writes = request.action.split(":")[1] in ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "BatchWriteItem")
    named = f" [{', '.join(attributes)}]" if writes and request.action != "dynamodb:PutItem" else ""
    return f"{request.action} {where} {' '.join(prefixes)}{named}".rstrip()


def check(functions: list[roles.Function], log: list[dict], queues: dict[str, str]) -> list[str]:
    failures: list[str] = []
    by_binary = {fn.binary: fn for fn in functions}
    made: dict[str, list[Request]] = defaultdict(list)
    for access in log:
        fn = by_binary.get(access["caller"])
        if fn is None:
            failures.append(f"a request from {access['caller']!r}, not a function of the template")
            continue
        made[fn.binary].extend(requests_of(access, fn))

    for fn in functions:
        print(f"{fn.binary} ({fn.logical_id}): {len(made[fn.binary])} requests")
        for line in sorted({shape(r) for r in made[fn.binary]}):
            print(f"  {line}")
        # 1. Everything it did, allowed.
        seen = set()
        for request in made[fn.binary]:
            decision = decide(fn.all_statements, request)
            if decision != ALLOW and request.describe() not in seen:
                seen.add(request.describe())
                failures.append(f"{fn.binary}: {decision} for a request it makes: {request.describe()}")
        # 2. What it must never do, denied.
        for what, request in forbidden_requests(fn, queues):
            decision = decide(fn.all_statements, request)
            if decision == ALLOW:
                failures.append(f"{fn.binary} may {what}: {request.describe()}")
        # 3. No unused grant.
        for statement in fn.statements:
            if statement["Effect"] != "Allow":
                continue
            sid = statement.get("Sid", "a statement")
            actions = [a for a in UNIVERSE if matches_action(statement, a)]
            for action in actions:
                used = any(r.action == action and matches_resource(statement, r.resource) for r in made[fn.binary])
                if not used:
                    failures.append(f"{fn.binary}: {sid} grants {action}, which it never uses")
            patterns = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", [])
            for pattern in roles._as_list(patterns):
                used = any(
                    r.action in actions
                    and decide([statement], r) == ALLOW
                    and any(glob_matches(pattern, k) for k in r.context.get("dynamodb:LeadingKeys", []))
                    for r in made[fn.binary]
                )
                if not used:
                    failures.append(f"{fn.binary}: {sid} allows {pattern}, which it never writes")
        # 4. No ForAllValues hole.
        failures += [f"{fn.binary}: {hole}" for hole in statement_holes(fn.statements)]
    return failures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--template", required=True)
    parser.add_argument("--requests", required=True)
    args = parser.parse_args()
    with open(args.template, encoding="utf-8") as f:
        text = f.read()
    functions = roles.functions(text)
    cfn = roles.cloudformation(text)
    queue_ids = [k for k, v in cfn["Resources"].items() if v["Type"] == "AWS::SQS::Queue"]
    delivery = {fn.queue for fn in functions if fn.queue}
    if len(delivery) != 1:
        print(f"expected one delivery queue, found {delivery}")
        return 1
    (queue,) = delivery
    dead = [roles.arn(cfn["Resources"], q) for q in queue_ids if roles.arn(cfn["Resources"], q) != queue]
    queues = {"queue": queue, "dlq": dead[0] if dead else queue + "-dlq", "other": queue + "-other"}
    with open(args.requests, encoding="utf-8") as f:
        log = json.load(f)
    failures = check(functions, log, queues)
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{len(functions)} functions, {len(log)} requests checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
