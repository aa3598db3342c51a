"""`kubectl canary logs [NAME]`: the agent's log lines about one canary (or all), in order.

The agent logs one JSON object per line, and every line about a canary carries
`canary: "namespace/name"`, so this is a filter over the leader's log: the pod holding the
agent's Lease, or on the sandbox the log file of the local agent process (see agent_info).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import click

from kubectl_canary.cli.agent_info import AgentInfo, find_agent, leader_pod
from kubectl_canary.cli.durations import DURATION
from kubectl_canary.cli.errors import CliError
from kubectl_canary.cli.options import Session, kube_options, name_argument, output_option
from kubectl_canary.cli.reads import get_canary
from kubectl_canary.cli.render import parse_time

FOLLOW_POLL_SECONDS = 0.2
_SHOWN_ELSEWHERE = {"ts", "level", "msg", "logger", "canary"}


def select(
    lines: Iterator[str], prefix: str | None, not_before: datetime | None
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(raw line, parsed JSON or None) for lines whose `canary` is `prefix` or starts with it.

    `prefix` is "ns/name" for one canary, "ns/" for a namespace, None for every line.
    """
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if doc is not None and not isinstance(doc, dict):
            doc = None
        if prefix is not None:
            canary = str(doc.get("canary", "")) if doc is not None else ""
            if not (canary == prefix or (prefix.endswith("/") and canary.startswith(prefix))):
                continue
        if not_before is not None and doc is not None:
            ts = parse_time(str(doc.get("ts", "")))
            if ts is not None and ts < not_before:
                continue
        yield line, doc


def human(doc: dict[str, Any], with_canary: bool) -> str:
    """`2026-11-27T10:00:00.000+00:00 info  [ns/name] message key=value ...`."""
    parts = [str(doc.get("ts", "")), f"{str(doc.get('level', '')):<5}"]
    if with_canary and doc.get("canary"):
        parts.append(f"[{doc['canary']}]")
    parts.append(str(doc.get("msg", "")))
    for k, v in doc.items():
        if k not in _SHOWN_ELSEWHERE:
            parts.append(f"{k}={v if isinstance(v, str | int | float) else json.dumps(v)}")
    return " ".join(parts)


def tail_file(
    path: str, follow: bool, sleep: Callable[[float], None], stop: Callable[[], bool]
) -> Iterator[str]:
    """The file's lines; with `follow`, keep yielding lines appended later until `stop()`."""
    try:
        f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - held while following
    except OSError as e:
        raise CliError(f"cannot read the agent's log file {path}: {e.strerror}") from None
    with f:
        pending = ""
        while True:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending.rstrip("\n")
                    pending = ""
                continue
            if not follow or stop():
                if pending:
                    yield pending
                return
            sleep(FOLLOW_POLL_SECONDS)


def log_source(
    session: Session, info: AgentInfo, follow: bool, since: float | None, key: str | None = None
) -> tuple[Iterator[str], str]:
    """The log lines of the replica ticking canary `key` (the leader's; with `--shards`, its
    shard's holder) and a description of where they come from."""
    kube = session.kube
    local = info.local
    if info.shard_leaders and key is None:
        raise CliError(
            "the agent runs --shards: each replica logs its own canaries; give a canary NAME"
        )
    leader = info.leader if key is None else info.leader_of(key)
    if local is not None and (leader is None or leader.identity == local.identity):
        if not local.here():
            raise CliError(
                f"the agent runs as a local process on host {local.host}; "
                f"read its log there: {local.log_file}"
            )
        if not os.path.exists(local.log_file):
            raise CliError(f"the agent's log file {local.log_file} does not exist")
        lines = tail_file(local.log_file, follow, session.runtime.sleep, lambda: False)
        return lines, f"local agent process {local.pid} ({local.log_file})"
    pod = leader_pod(kube, info, leader)
    if pod is None:
        who = f'"{leader.identity}"' if leader else "nobody"
        raise CliError(
            f"no running agent pod holds the lease in namespace {info.namespace} (holder: {who}); "
            "check `kubectl canary doctor`"
        )
    since_seconds = None if since is None else max(1, int(since))
    return kube.pod_log(info.namespace, pod, follow=follow, since_seconds=since_seconds), (
        f"pod {info.namespace}/{pod}"
    )


@click.command(
    "logs",
    epilog="""\b
Examples:
  kubectl canary logs mhs              # the agent's lines about canary mhs
  kubectl canary logs mhs -f           # and keep following
  kubectl canary logs                  # lines about canaries of the current namespace
  kubectl canary logs -A --since 10m   # every line of the last ten minutes
  kubectl canary logs mhs -o json      # the raw JSON lines
""",
)
@name_argument(required=False)
@kube_options(listing=True)
@output_option("json")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--since", type=DURATION, help="Only lines newer than this (e.g. 10m, or seconds).")
@click.option(
    "--agent-namespace", metavar="NS", default=None, help="The agent's namespace (default: found)."
)
def logs(
    session: Session,
    name: str | None,
    output: str | None,
    follow: bool,
    since: float | None,
    agent_namespace: str | None,
) -> None:
    """Print the agent's log lines about canary NAME (no NAME: the namespace's; -A: all)."""
    if name and session.all_namespaces:
        raise click.UsageError("NAME and -A cannot be combined")
    if name:
        # The agent logs nothing about a canary that does not exist: say so, as `status` does,
        # rather than print nothing and exit 0 as if it had been quiet.
        get_canary(session.kube, session.namespace, name)
        prefix: str | None = f"{session.namespace}/{name}"
    else:
        prefix = None if session.all_namespaces else f"{session.namespace}/"
    info = find_agent(session.kube, agent_namespace)
    if info is None:
        raise CliError("the agent is not installed: run `kubectl canary init`")
    lines, _ = log_source(session, info, follow, since, prefix if name else None)
    not_before = None if since is None else session.now() - timedelta(seconds=since)
    try:
        for raw, doc in select(lines, prefix, not_before):
            click.echo(raw if output == "json" or doc is None else human(doc, not name))
    except KeyboardInterrupt:
        return
