"""Requests per second the sandbox API server sustains with 1,000 Canaries stored.

Starts a sandbox process (API server only), creates the Canaries, then runs each request
kind for a fixed time with concurrent keep-alive clients, and prints requests/second next to
a trivial GET /version baseline measured in the same run (the ratio is what to compare
across machines).

    python3 bench/sandbox_requests.py [--canaries 1000] [--clients 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kubectl_canary.sandbox.process import start_sandbox

NAMESPACE = "default"
CANARIES = f"/apis/kubectl-canary.dev/v1alpha1/namespaces/{NAMESPACE}/canaries"


def canary(i: int) -> dict[str, object]:
    return {
        "apiVersion": "kubectl-canary.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": f"app-{i:04d}", "labels": {"shard": str(i % 10)}},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"app-{i:04d}"},
            "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }


Request = Callable[[http.client.HTTPConnection], None]


def simple(path: str) -> Request:
    def run(conn: http.client.HTTPConnection) -> None:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status}")

    return run


def watch_setup(conn: http.client.HTTPConnection) -> None:
    """What an informer does on (re)start: a cheap list for the resourceVersion, then a watch
    from it (timeoutSeconds=0 so the stream ends at once and the pair can be counted)."""
    conn.request("GET", CANARIES + "?limit=1")
    listing = json.loads(conn.getresponse().read())
    rv = listing["metadata"]["resourceVersion"]
    conn.request("GET", f"{CANARIES}?watch=1&resourceVersion={rv}&timeoutSeconds=0")
    resp = conn.getresponse()
    resp.read()


def measure(port: int, request: Request, clients: int, seconds: float) -> float:
    counts = [0] * clients
    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < stop:
                request(conn)
                counts[slot] += 1
        except BaseException as e:  # surfaced after the run
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        start_sandbox(Path(tmp), simulation=False) as sandbox,
    ):
        conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=30)
        started = time.monotonic()
        for i in range(args.canaries):
            conn.request(
                "POST",
                CANARIES,
                body=json.dumps(canary(i)),
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status != 201:
                raise RuntimeError(f"create failed: {resp.status}")
        create_rate = args.canaries / (time.monotonic() - started)
        conn.close()

        cases: list[tuple[str, Request]] = [
            ("GET /version (baseline)", simple("/version")),
            ("GET one canary", simple(f"{CANARIES}/app-0500")),
            (f"LIST {args.canaries} canaries", simple(CANARIES)),
            ("LIST by label (1/10)", simple(f"{CANARIES}?labelSelector=shard%3D3")),
            ("LIST limit=1 + watch (pairs)", watch_setup),
        ]
        print(f"created {args.canaries} canaries at {create_rate:.0f}/s (1 client)")
        print(f"{args.clients} concurrent clients, {args.seconds:.0f}s per case")
        baseline = 0.0
        for name, request in cases:
            rate = measure(sandbox.port, request, args.clients, args.seconds)
            baseline = baseline or rate
            print(f"  {name:<28} {rate:9.1f} req/s   {rate / baseline:6.3f} x baseline")


if __name__ == "__main__":
    main()
