#!/usr/bin/env python3
"""Loopback webhook receiver for aos_cus tests: records every request and verifies its Standard Webhooks
signature with Python's own hmac (an implementation independent of the extension's C code).

The path decides the answer: /ok/... answers 200, /fail/... 500, /slow/... answers 200 after --slow seconds.
Control routes: POST /__secret with {"path": "/ok/a", "secret": "whsec_..."} registers an endpoint's secret;
GET /__log returns every recorded request as JSON: path, webhook-id, webhook-timestamp, arrival time (Unix
seconds), whether the signature verified, the body's type and the status answered. Nothing is printed.

Usage: webhook_receiver.py [--port N] [--port-file FILE] [--state FILE] [--slow SECONDS]
(--state keeps secrets and the log across restarts of the receiver)
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"secrets": {}, "log": []}
args = None


def save():
    """Persist the state (under lock)."""
    if args.state:
        with open(args.state + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(args.state + ".tmp", args.state)


def verify(secret, msg_id, timestamp, body, header):
    """True when one of the header's v1 signatures is HMAC-SHA256(key, id.timestamp.body)."""
    if not secret or not secret.startswith("whsec_"):
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body,
                                         hashlib.sha256).digest()).decode()
    for part in (header or "").split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        """Never log."""

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__log":
            with lock:
                data = json.dumps(state["log"]).encode()
            self.reply(200, data)
        else:
            self.reply(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/__secret":
            req = json.loads(body)
            with lock:
                state["secrets"][req["path"]] = req["secret"]
                save()
            self.reply(204)
            return
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        with lock:
            secret = state["secrets"].get(self.path)
        try:
            parsed = json.loads(body)
            kind = parsed.get("type") or ("slack" if "text" in parsed else None)
        except ValueError:
            kind = None
        status = 500 if self.path.startswith("/fail/") else 200
        entry = {"path": self.path, "id": msg_id, "timestamp": ts, "arrived": time.time(),
                 "verified": verify(secret, msg_id, ts, body, self.headers.get("webhook-signature")),
                 "content_type": self.headers.get("Content-Type"), "type": kind, "status": status,
                 "body": body.decode(errors="replace"), "answered": False}
        with lock:
            state["log"].append(entry)
            save()
        if self.path.startswith("/slow/"):
            time.sleep(args.slow)
        self.reply(status, b"{}")
        with lock:
            entry["answered"] = True
            save()


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--state")
    p.add_argument("--slow", type=float, default=3.0)
    args = p.parse_args()
    if args.state and os.path.exists(args.state):
        with open(args.state) as f:
            state.update(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
