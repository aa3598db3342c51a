"""A kubeconfig pointing at the sandbox: context `sandbox`, namespace `default`, a token."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import yaml

CONTEXT = "sandbox"


def write_kubeconfig(path: Path, server_url: str, token: str | None = None) -> Path:
    """Write (atomically) a kubeconfig for the sandbox; the token is accepted, not checked."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server_url}}],
        "users": [{"name": CONTEXT, "user": {"token": token or secrets.token_hex(16)}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
