"""`python3 -m kubectl_canary.sandbox serve ...`: run the sandbox API server in the foreground.

Writes `kubeconfig` and then `port` into the state directory, so a reader that sees `port`
finds a complete sandbox.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .crd_files import load_crds
from .kubeconfig import write_kubeconfig
from .server import make_server
from .store import Store

log = logging.getLogger("kubectl_canary.sandbox")

OWN_CRDS = Path(__file__).resolve().parents[1] / "manifests" / "crds"
# The mesh CRDs installed from a CRD directory; other files there (Flagger's Canary) would
# clash with our own kinds' names in `kubectl get canary`.
MESH_CRD_FILES = ("istio-networking.yaml", "gateway-api-standard.yaml")


# The upstream Istio and Gateway API CRDs ship with the package (see crds/README.md).
PACKAGED_MESH_CRDS = Path(__file__).resolve().parent / "crds"


def default_crds_dir() -> Path:
    env = os.environ.get("CANARY_SANDBOX_CRDS")
    return Path(env) if env else PACKAGED_MESH_CRDS


def crd_paths(crds_dir: Path | None, extra: list[Path]) -> list[Path]:
    paths: list[Path] = []
    if OWN_CRDS.is_dir():
        paths.append(OWN_CRDS)
    if crds_dir is not None:
        paths += [crds_dir / f for f in MESH_CRD_FILES if (crds_dir / f).is_file()]
    return paths + extra


def install_crds(store: Store, paths: list[Path]) -> int:
    crds = load_crds(paths)
    for crd in crds:
        store.create(crd)
    return len(crds)


def _start_simulation(store: Store, speed: float, seed: int) -> Any:
    try:
        simulation = importlib.import_module("kubectl_canary.sandbox.simulation")
        start = simulation.start
    except (ImportError, AttributeError) as e:
        log.warning("serving without the simulation (%s)", e)
        return None
    return start(store, {"speed": speed, "seed": seed})


def serve(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "port").unlink(missing_ok=True)
    store = Store(watch_window=args.watch_window)
    crds_dir = Path(args.crds_dir) if args.crds_dir else default_crds_dir()
    count = install_crds(store, crd_paths(crds_dir, [Path(p) for p in args.extra_crd]))
    log.info("installed %d CRDs", count)
    sim = None if args.no_simulation else _start_simulation(store, args.speed, args.seed)
    server = make_server(
        store,
        host=args.host,
        port=args.port,
        simulation=sim,
        bookmark_interval=args.bookmark_interval,
    )
    port = server.server_address[1]
    url = f"http://{args.host}:{port}"
    write_kubeconfig(state_dir / "kubeconfig", url)
    tmp = state_dir / "port.tmp"
    tmp.write_text(f"{port}\n", encoding="utf-8")
    tmp.replace(state_dir / "port")
    log.info("sandbox API server listening on %s", url)

    def stop(signum: int, frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if sim is not None:
            sim.stop()
        server.server_close()
        (state_dir / "port").unlink(missing_ok=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m kubectl_canary.sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the sandbox API server in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--state-dir", required=True, help="where port and kubeconfig are written")
    p.add_argument("--crds-dir", help="directory with the Istio and Gateway API CRD files")
    p.add_argument("--extra-crd", action="append", default=[], help="more CRD files or dirs")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--watch-window", type=int, default=100, help="watch events kept per kind")
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    p.add_argument("--no-simulation", action="store_true", help="API server only")
    p.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
