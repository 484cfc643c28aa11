"""Verify one captured delivery with the `standardwebhooks` library, exactly as a receiver
would (the test suite runs this on real deliveries).

stdin: {"secret": "whsec_...", "headers": {...}, "body": "<exact body>"}
exit 0 if the library accepts it, 1 if it refuses it.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

case = json.load(sys.stdin)
try:
    Webhook(case["secret"]).verify(case["body"], case["headers"])
except WebhookVerificationError as e:
    print(f"refused: {e}")
    sys.exit(1)
print("verified")
