#!/usr/bin/env python3
"""A stand-in for your app, for the README's walk-through: prints each webhook that
`webhooks-local listen --forward-to` hands it and answers with the status you choose.
Standard library only."""

import argparse
import json
import signal
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--status", type=int, default=200, help="the answer to every webhook")
args = parser.parse_args()


class Webhooks(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        print(
            f"app: {event.get('type')} event {event.get('id')}, "
            f"delivery {self.headers.get('webhook-id')}: answering {args.status}",
            flush=True,
        )
        self.send_response(args.status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(f"app answered {args.status}\n".encode())

    def log_message(self, *_):
        pass


# Ctrl-C stops the app however it was started. Python leaves SIGINT ignored when it
# starts with it ignored, as every background job of a non-interactive shell does (a
# script's `cmd &`, and so a test run started that way): without this, Ctrl-C would do
# nothing there.
signal.signal(signal.SIGINT, signal.default_int_handler)

server = HTTPServer(("127.0.0.1", args.port), Webhooks)
print(f"app: listening on http://127.0.0.1:{args.port}, answering {args.status}", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
