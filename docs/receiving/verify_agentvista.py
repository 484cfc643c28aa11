#!/usr/bin/env python3
"""Verify an AgentVista Webhooks delivery's X-AgentVista-Signature header.

The function between the snippet markers is the one printed in docs/RECEIVING.md (a test
checks that the guide contains it verbatim); copy it into your receiver. Standard library
only.

Run as a script, it reads one JSON object on standard input:

    {"secret": "whsec_...",
     "headers": {"x-agentvista-signature": "t=...,v1=..."},
     "body": "<the exact request body, as a string>"}

and prints one line: exit status 0 if the signature is valid, 1 if it is not, 2 if the
input cannot be read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time


# --- snippet start ---
def verify_agentvista(
    secret: str,
    signature_header: str,
    body: bytes,
    tolerance_seconds: int = 300,
    now: int | None = None,
) -> bool:
    """Check an X-AgentVista-Signature header against the raw request body.

    secret: the endpoint's signing secret exactly as shown to you ("whsec_...").
    signature_header: the header's value, "t=<unix seconds>,v1=<hex>[,v1=<hex>...]".
    body: the request body bytes exactly as received, before any JSON parsing.
    """
    timestamp = None
    candidates = []
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if timestamp is not None:
                return False  # more than one timestamp
            timestamp = value
        elif key == "v1":
            candidates.append(value)
        # other schemes: ignore
    if timestamp is None or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if len(timestamp) > 15:
        return False  # not a plausible unix time
    if now is None:
        now = int(time.time())
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False  # too old (a replay?) or too far in the future

    signed = timestamp.encode("ascii") + b"." + body
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(expected.encode("ascii"), candidate.encode("utf-8", "replace"))
        for candidate in candidates
    )
# --- snippet end ---


def main() -> int:
    try:
        request = json.load(sys.stdin)
        secret = request["secret"]
        headers = {name.lower(): value for name, value in request["headers"].items()}
        body = request["body"].encode("utf-8")
        if not isinstance(secret, str):
            raise TypeError("secret must be a string")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"unreadable input: {type(error).__name__}")
        return 2
    header = headers.get("x-agentvista-signature")
    if not isinstance(header, str):
        print("invalid: no X-AgentVista-Signature header")
        return 1
    if verify_agentvista(secret, header, body):
        print("valid: X-AgentVista-Signature matches")
        return 0
    print("invalid: signature does not match, or timestamp not within 5 minutes of now")
    return 1


if __name__ == "__main__":
    sys.exit(main())
