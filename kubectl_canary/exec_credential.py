"""client-go exec credential plugins (`users[].user.exec`), e.g. `aws eks get-token`.

kr8s runs the plugin once and forgets `status.expirationTimestamp`, so a long `status --wait`
on EKS breaks when the 15-minute token expires. The adapter runs the plugin through this module
instead and runs it again when the credential has expired or the server answers 401.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta

from kubectl_canary.resources import ConfigError, Obj

# Refresh a little early: a request sent just before expiry would otherwise reach the server
# after it and come back 401.
EARLY = timedelta(seconds=10)
PLUGIN_TIMEOUT = 60


@dataclass(frozen=True)
class ExecCredential:
    token: str | None
    client_certificate_data: str | None
    client_key_data: str | None
    expires_at: datetime | None  # None: valid until the server refuses it

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at - EARLY

    def apply(self, user: Obj) -> None:
        """Write the credential into a kubeconfig `user` entry (the one kr8s reads)."""
        for key in ("token", "client-certificate-data", "client-key-data"):
            user.pop(key, None)
        if self.token:
            user["token"] = self.token
        if self.client_certificate_data and self.client_key_data:
            user["client-certificate-data"] = self.client_certificate_data
            user["client-key-data"] = self.client_key_data


def run_exec_plugin(config: Obj, server: str) -> ExecCredential:
    """Run the plugin non-interactively, as kubectl does from a script."""
    command = config.get("command")
    if not command:
        raise ConfigError("exec credential plugin has no command")
    api_version = config.get("apiVersion", "client.authentication.k8s.io/v1")
    env = dict(os.environ)
    for item in config.get("env") or []:
        env[item["name"]] = item["value"]
    info = {
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": False, "cluster": {"server": server}},
    }
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    hint = config.get("installHint", "")
    try:
        done = subprocess.run(
            [command, *(config.get("args") or [])],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PLUGIN_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"exec credential plugin {command} failed: {e} {hint}".strip()) from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(
            f"exec credential plugin {command} exited {done.returncode}: "
            f"{err[-1] if err else ''}".rstrip(": ")
        )
    try:
        status = json.loads(done.stdout)["status"]
        if not isinstance(status, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"exec credential plugin {command} printed no ExecCredential") from None
    credential = ExecCredential(
        token=status.get("token") or None,
        client_certificate_data=status.get("clientCertificateData") or None,
        client_key_data=status.get("clientKeyData") or None,
        expires_at=_timestamp(status.get("expirationTimestamp"), command),
    )
    if not credential.token and not (
        credential.client_certificate_data and credential.client_key_data
    ):
        raise ConfigError(f"exec credential plugin {command} returned neither token nor cert")
    return credential


def _timestamp(value: object, command: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"exec credential plugin {command} gave an invalid expirationTimestamp {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise ConfigError(
            f"exec credential plugin {command} gave an expirationTimestamp without a zone"
        )
    return parsed
