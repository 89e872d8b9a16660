#!/usr/bin/env python3
"""Loopback-only mock of the providers' list-models endpoints, for aos_cus health tests.

Routes and the auth headers each checks:
  GET /v1/models      OpenAI (Authorization: Bearer KEY) or Anthropic (x-api-key: KEY + anthropic-version)
  GET /v1beta/models  Google (x-goog-api-key: KEY)
  GET /openai/models  Azure OpenAI (api-key: KEY and the api-version query parameter)
The key decides the answer: a key starting with "valid-" is accepted; "valid-429", "valid-500",
"valid-403" answer that status, "valid-hang" never answers, "valid-redirect" answers 302 to another
host, "valid-endless" answers 200 with a body that never ends; any other key (or none) is 401. GET /__stats returns request counts as JSON (never keys);
POST /__reset zeroes them. Nothing is logged.

Usage: mock_provider.py [--port N] [--port-file FILE] [--tls-cert PEM --tls-key PEM]
(port 0 picks a free one; with a certificate it speaks HTTPS)
"""
import argparse
import os
import ssl
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
stats = {"requests": 0, "by_provider": {}, "by_status": {}}


def count(provider, status):
    """Count one answered request."""
    with lock:
        stats["requests"] += 1
        stats["by_provider"][provider] = stats["by_provider"].get(provider, 0) + 1
        stats["by_status"][str(status)] = stats["by_status"].get(str(status), 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        """Never log: request lines and headers carry keys."""

    def reply(self, status, body, headers=None):
        """Send a JSON body with the given status."""
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def answer_for_key(self, provider, key):
        """Answer as the key asks: 200, 401, 403, 429, 500, a redirect, or hang."""
        if not key or not key.startswith("valid-"):
            status = 401
        elif key == "valid-hang":
            count(provider, "hang")
            time.sleep(3600)
            return
        elif key == "valid-endless":
            count(provider, "endless")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b" " * 65536
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
            return
        elif key == "valid-redirect":
            count(provider, 302)
            self.reply(302, {}, {"Location": "http://198.51.100.1/v1/models"})
            return
        elif key in ("valid-403", "valid-429", "valid-500"):
            status = int(key[-3:])
        else:
            status = 200
        count(provider, status)
        if status == 200:
            self.reply(200, {"object": "list", "data": [{"id": provider + "-mock-model", "object": "model"}]})
        else:
            self.reply(status, {"error": {"message": "mock %d" % status}})

    def do_GET(self):
        """Route a list-models request to the provider it imitates."""
        url = urlparse(self.path)
        h = self.headers
        if url.path == "/__stats":
            with lock:
                self.reply(200, stats)
            return
        if url.path == "/v1/models" and h.get("x-api-key") is not None:
            if not h.get("anthropic-version"):
                count("anthropic", 400)
                self.reply(400, {"error": "anthropic-version header required"})
                return
            self.answer_for_key("anthropic", h.get("x-api-key"))
        elif url.path == "/v1/models":
            auth = h.get("Authorization") or ""
            self.answer_for_key("openai", auth[7:] if auth.startswith("Bearer ") else None)
        elif url.path == "/v1beta/models":
            self.answer_for_key("google", h.get("x-goog-api-key"))
        elif url.path == "/openai/models":
            if "api-version" not in parse_qs(url.query):
                count("azure_openai", 400)
                self.reply(400, {"error": "api-version query parameter required"})
                return
            self.answer_for_key("azure_openai", h.get("api-key"))
        else:
            count("none", 404)
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        """POST /__reset zeroes the counters."""
        if urlparse(self.path).path == "/__reset":
            with lock:
                stats.update({"requests": 0, "by_provider": {}, "by_status": {}})
            self.reply(200, {"reset": True})
        else:
            self.reply(404, {"error": "not found"})


def main():
    """Serve on 127.0.0.1 until killed."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(args.port_file + ".tmp", args.port_file)
    print("mock provider listening on 127.0.0.1:%d" % port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
