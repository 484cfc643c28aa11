"""The evaluator's own tests (policy.py): each rule it claims, on AWS's documented
behaviour, including the ForAllValues-over-nothing case."""

import unittest

from policy import ALLOW, DENY, IMPLICIT, Request, decide, statement_holes

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/T"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:Q"


def allow(actions, resource=TABLE, condition=None, effect="Allow"):
    s = {"Effect": effect, "Action": actions, "Resource": resource}
    if condition:
        s["Condition"] = condition
    return s


LEADING = {
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ORG#*", "SERIAL"]},
    "Null": {"dynamodb:LeadingKeys": "false"},
}


def put(*keys, attributes=None, return_values=None, resource=TABLE, action="dynamodb:PutItem"):
    context = {}
    if keys:
        context["dynamodb:LeadingKeys"] = list(keys)
    if attributes:
        context["dynamodb:Attributes"] = list(attributes)
    if return_values:
        context["dynamodb:ReturnValues"] = [return_values]
    return Request(action, resource, context)


class Actions(unittest.TestCase):
    def test_wildcards_and_case(self):
        s = [allow(["dynamodb:Get*", "sqs:sendmessage"], ["*"])]
        self.assertEqual(decide(s, Request("dynamodb:GetItem", TABLE)), ALLOW)
        self.assertEqual(decide(s, Request("SQS:SendMessage", QUEUE)), ALLOW)
        self.assertEqual(decide(s, Request("dynamodb:PutItem", TABLE)), IMPLICIT)

    def test_not_action(self):
        s = [{"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": "*"}]
        self.assertEqual(decide(s, Request("dynamodb:PutItem", TABLE)), ALLOW)
        self.assertEqual(decide(s, Request("dynamodb:DeleteItem", TABLE)), IMPLICIT)


class Resources(unittest.TestCase):
    def test_table_is_not_its_indexes(self):
        s = [allow("dynamodb:Query", TABLE)]
        self.assertEqual(decide(s, Request("dynamodb:Query", TABLE)), ALLOW)
        self.assertEqual(decide(s, Request("dynamodb:Query", TABLE + "/index/gsi1")), IMPLICIT)
        s = [allow("dynamodb:Query", TABLE + "/index/*")]
        self.assertEqual(decide(s, Request("dynamodb:Query", TABLE + "/index/gsi1")), ALLOW)

    def test_resource_match_is_case_sensitive(self):
        s = [allow("dynamodb:GetItem", TABLE)]
        self.assertEqual(decide(s, Request("dynamodb:GetItem", TABLE.lower())), IMPLICIT)


class Conditions(unittest.TestCase):
    def test_leading_keys_every_value_must_match(self):
        s = [allow("dynamodb:BatchWriteItem", condition=LEADING)]
        ok = put("ORG#a", "SERIAL", action="dynamodb:BatchWriteItem")
        mixed = put("ORG#a", "APIKEY#x", action="dynamodb:BatchWriteItem")
        self.assertEqual(decide(s, ok), ALLOW)
        self.assertEqual(decide(s, mixed), IMPLICIT)

    def test_for_all_values_over_nothing_is_true_and_null_closes_it(self):
        open_statement = allow(
            "dynamodb:PutItem",
            condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ORG#*"]}},
        )
        self.assertEqual(decide([open_statement], put()), ALLOW, "as on AWS")
        self.assertEqual(statement_holes([open_statement]), [f"{open_statement}: ForAllValues:StringLike dynamodb:LeadingKeys without Null false"])
        closed = allow("dynamodb:PutItem", condition=LEADING)
        self.assertEqual(decide([closed], put()), IMPLICIT)
        self.assertEqual(statement_holes([closed]), [])

    def test_attributes_and_return_values(self):
        s = [
            allow(
                "dynamodb:UpdateItem",
                condition={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APIKEY#*"]},
                    "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "last_used_at"]},
                    "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]},
                    "Null": {"dynamodb:LeadingKeys": "false", "dynamodb:Attributes": "false"},
                },
            )
        ]
        update = lambda **kw: put("APIKEY#h", action="dynamodb:UpdateItem", **kw)  # noqa: E731
        self.assertEqual(decide(s, update(attributes=["pk", "sk", "last_used_at"])), ALLOW)
        self.assertEqual(decide(s, update(attributes=["pk", "sk", "role"])), IMPLICIT)
        self.assertEqual(decide(s, update()), IMPLICIT, "no attributes named: Null false")
        self.assertEqual(
            decide(s, update(attributes=["pk", "sk", "last_used_at"], return_values="ALL_OLD")),
            IMPLICIT,
        )
        self.assertEqual(
            decide(s, update(attributes=["pk", "sk", "last_used_at"], return_values="UPDATED_NEW")),
            ALLOW,
        )

    def test_for_any_value_and_negations(self):
        any_org = allow("dynamodb:PutItem", condition={"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": "ORG#*"}})
        self.assertEqual(decide([any_org], put("ORG#a", "X")), ALLOW)
        self.assertEqual(decide([any_org], put()), IMPLICIT, "ForAnyValue over nothing is false")
        not_key = allow("dynamodb:PutItem", condition={"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": "APIKEY#*"}})
        self.assertEqual(decide([not_key], put("ORG#a")), ALLOW)
        self.assertEqual(decide([not_key], put("ORG#a", "APIKEY#b")), IMPLICIT)

    def test_unknown_operators_are_errors(self):
        s = [allow("dynamodb:PutItem", condition={"NumericLessThan": {"x": "1"}})]
        with self.assertRaises(ValueError):
            decide(s, put("ORG#a"))


class Precedence(unittest.TestCase):
    def test_an_explicit_deny_wins(self):
        s = [
            allow(["sqs:ReceiveMessage"], "*"),
            {"Effect": "Deny", "Action": "sqs:*", "NotResource": QUEUE},
        ]
        self.assertEqual(decide(s, Request("sqs:ReceiveMessage", QUEUE)), ALLOW)
        self.assertEqual(decide(s, Request("sqs:ReceiveMessage", QUEUE + "-dlq")), DENY)


if __name__ == "__main__":
    unittest.main()
