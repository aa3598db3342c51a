"""`kubectl canary init`: install or upgrade the CRDs, RBAC and the agent, then wait for it.

Idempotent: objects already as wanted are left alone, changed ones updated. In a cluster the
agent is a Deployment and `init` waits for its rollout and for a replica to take the Lease.
`--agent-process` is for the sandbox, which has no kubelet to run pods: the agent runs as a
local background process instead (its log in a file, recorded in a ConfigMap so `logs`,
`doctor` and `uninstall` find it) and `init` waits until it leads.

Converging: the settings it installs are recorded in the cluster (install_settings.py), so a
re-run without flags keeps them, and one with a flag changes only that setting.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kubectl_canary import __version__
from kubectl_canary.api.model import PROVIDERS
from kubectl_canary.api.sharding import shard_lease_name
from kubectl_canary.cli.agent_info import (
    AGENT_NAME,
    DEFAULT_NAMESPACE,
    LOCAL_AGENT_CONFIGMAP,
    LocalAgent,
    local_record,
    read_leader,
    read_local,
)
from kubectl_canary.cli.apply import apply, ref
from kubectl_canary.cli.errors import CliError, TimeoutExceeded
from kubectl_canary.cli.install_settings import (
    SETTINGS_ANNOTATION,
    InstallSettings,
    changes,
    merged,
    stored,
)
from kubectl_canary.cli.install_settings import to_json as settings_json
from kubectl_canary.cli.manifests import (
    DEFAULT_IMAGE,
    OUR_LABELS,
    agent_documents,
    crd_documents,
)
from kubectl_canary.cli.options import Session, kube_options, output_option, timeout_option
from kubectl_canary.cli.prune import prune
from kubectl_canary.cli.render import to_json, yaml_documents
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError

Obj = dict[str, Any]

POLL_SECONDS = 1.0
AGENT_STOP_SECONDS = 20.0


def manifest_values(namespace: str, settings: InstallSettings) -> dict[str, str]:
    return {
        "NAMESPACE": namespace,
        "IMAGE": settings.image or DEFAULT_IMAGE,
        "PROVIDER": settings.provider,
        "METRICS_SERVER": settings.metrics_server,
        "WATCH_NAMESPACES": ",".join(settings.watch_namespace),
        "VERSION": __version__,
    }


def namespace_doc(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


# On a namespace init created (never on one that existed): uninstall deletes only those.
CREATED_BY_INIT = "kubectl-canary.dev/created-by-init"
EGRESS_DEFAULTS = ("allow", "deny")
_GATEWAY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/(\*|[a-z0-9]([-.a-z0-9]*[a-z0-9])?)$")


def security_args(settings: InstallSettings) -> list[str]:
    """The agent's security flags, only those set: the agent's own defaults stay in force."""
    args = [f"--allow-egress={url}" for url in settings.allow_egress]
    if settings.egress_default:
        args.append(f"--egress-default={settings.egress_default}")
    args += [f"--allow-gateway={gw}" for gw in settings.allow_gateway]
    if settings.allow_wildcard_hosts:
        args.append("--allow-wildcard-hosts")
    if settings.allow_tls_disable:
        args.append("--allow-tls-disable")
    return args


def _gateway(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    for gw in value:
        if gw and not _GATEWAY.match(gw):  # "" clears the list
            raise click.BadParameter(f"{gw!r} is not NS/NAME or NS/*", ctx, param)
    return value


# Apply order, as `kubectl apply` users expect it: what others refer to comes first.
KIND_ORDER = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Service",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "Deployment",
)
# What exists only for the agent's pods: without a kubelet (--agent-process) there are none.
POD_KINDS = ("Deployment", "NetworkPolicy", "PodDisruptionBudget")


def plan(namespace: str, settings: InstallSettings, agent_process: bool) -> list[Obj]:
    """Every object `init` applies, in order: CRDs, the namespace, RBAC, then the agent.

    The agent's ServiceAccount records `settings` (install_settings.py)."""
    values = manifest_values(namespace, settings)
    agent = sorted(
        agent_documents(values, security_args(settings)),
        key=lambda d: KIND_ORDER.index(d["kind"]) if d["kind"] in KIND_ORDER else len(KIND_ORDER),
    )
    if not any(d["kind"] == "Namespace" for d in agent):
        agent.insert(0, namespace_doc(values["NAMESPACE"]))
    if agent_process:
        # No kubelet: the Deployment would never run; the local process replaces it.
        agent = [d for d in agent if d["kind"] not in POD_KINDS]
    if settings.shards > 1:
        shard(agent, settings.shards)
    docs = crd_documents() + agent
    for doc in docs:
        labels = doc["metadata"].setdefault("labels", {})
        for key, value in OUR_LABELS.items():
            labels.setdefault(key, value)
        if doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] == AGENT_NAME:
            annotations = doc["metadata"].setdefault("annotations", {})
            annotations[SETTINGS_ANNOTATION] = settings_json(settings)
    return docs


def apply_namespace(kube: Kube, doc: Obj) -> str:
    """Apply the agent's namespace; one init creates is marked so uninstall may delete it."""
    if kube.get("v1", "Namespace", "", doc["metadata"]["name"]) is None:
        meta = doc["metadata"]
        marked = {**doc, "metadata": {**meta, "annotations": {CREATED_BY_INIT: "true"}}}
        return apply(kube, marked)
    return apply(kube, doc)


def shard(docs: list[Obj], shards: int) -> None:
    """One replica per shard, told the shard count, and allowed the shards' Leases."""
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = shards
            container = doc["spec"]["template"]["spec"]["containers"][0]
            container["args"].append(f"--shards={shards}")
        elif doc["kind"] == "Role" and doc["metadata"]["name"].endswith("-leader-election"):
            for rule in doc["rules"]:
                if "resourceNames" in rule:
                    rule["resourceNames"] += [shard_lease_name(i) for i in range(shards)]


# ----- waiting, with progress -----


class Progress:
    """Progress on stderr: rewritten in place on a terminal, one line per change elsewhere."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""
        self.drawn = False

    def show(self, text: str, elapsed: float | None = None) -> None:
        timed = text if elapsed is None else f"{text} ({int(elapsed)}s)"
        if self.tty:
            click.echo(f"\r\x1b[2K{timed}", nl=False, err=True)
            self.drawn = True
        elif text != self.last:  # CI logs: no line per second, only per change
            click.echo(timed, err=True)
        self.last = text

    def done(self) -> None:
        if self.drawn:
            click.echo("", err=True)


def wait_until(
    session: Session, timeout: float, check: Callable[[], tuple[bool, str]], what: str
) -> None:
    """Poll `check` (done, progress text) every second until done or `timeout` seconds."""
    runtime = session.runtime
    progress = Progress()
    start = runtime.monotonic()
    try:
        while True:
            done, text = check()
            elapsed = runtime.monotonic() - start
            progress.show(text, None if done else elapsed)
            if done:
                return
            if elapsed >= timeout:
                raise TimeoutExceeded(f"timed out after {timeout:g}s waiting for {what}: {text}")
            runtime.sleep(POLL_SECONDS)
    finally:
        progress.done()


def crds_established(kube: Kube, crds: list[Obj]) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        pending = []
        for crd in crds:
            live = kube.get(crd["apiVersion"], crd["kind"], "", crd["metadata"]["name"]) or {}
            conditions = (live.get("status") or {}).get("conditions") or []
            established = [c for c in conditions if c.get("type") == "Established"]
            if established and established[0].get("status") != "True":
                pending.append(crd["metadata"]["name"])
        if pending:
            return False, f"waiting for CRDs to be established: {', '.join(pending)}"
        return True, "CRDs established"

    return check


def agent_rollout(kube: Kube, namespace: str, shards: int) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        d = kube.get("apps/v1", "Deployment", namespace, AGENT_NAME)
        if d is None:
            raise CliError(f"deployment {namespace}/{AGENT_NAME} disappeared during init")
        spec, status = d.get("spec", {}), d.get("status", {})
        want = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas", 0))
        ready = int(status.get("readyReplicas", 0))
        observed = int(status.get("observedGeneration", 0)) >= int(
            d["metadata"].get("generation", 0)
        )
        if not (observed and updated >= want and ready >= want):
            return False, f"waiting for the agent: {ready}/{want} replicas ready"
        if shards > 1:
            leases = [shard_lease_name(i) for i in range(shards)]
            held = sum(1 for name in leases if read_leader(kube, namespace, name) is not None)
            if held < shards:
                return False, f"agent ready ({ready}/{want}); {held}/{shards} shards taken"
            return True, f"agent ready ({ready}/{want}), {shards} shards taken"
        leader = read_leader(kube, namespace)
        if leader is None:
            return False, f"agent ready ({ready}/{want}); waiting for a replica to take the lease"
        return True, f"agent ready ({ready}/{want}), leader {leader.identity}"

    return check


# ----- the local agent process (sandbox) -----


def kubeconfig_path(session: Session) -> str:
    """The kubeconfig file the plugin uses, for the local agent to use the same cluster."""
    if session.kubeconfig:
        return os.path.abspath(session.kubeconfig)
    env = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if env:
        return os.path.abspath(env[0])
    return os.path.join(os.path.expanduser("~"), ".kube", "config")


def default_log_file(kubeconfig: str, namespace: str) -> str:
    """Next to the sandbox's kubeconfig (its state dir), else under ~/.local/state."""
    folder = os.path.dirname(kubeconfig)
    if not os.path.exists(os.path.join(folder, "sandbox.log")):
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        folder = os.path.join(base, "kubectl-canary")
    return os.path.join(folder, f"canary-agent-{namespace}.log")


def agent_command() -> list[str]:
    if importlib.util.find_spec("agent.main") is not None:
        return [sys.executable, "-m", "agent.main"]
    found = shutil.which("canary-agent")
    if found is None:
        raise CliError(
            "--agent-process needs the agent: install kubectl-canary with pip to get canary-agent"
        )
    return [found]


def _reap(pid: int) -> None:
    """Collect the exit status when the agent is our own child (demo), so it is not a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_local_agent(agent: LocalAgent, sleep: Callable[[float], None]) -> None:
    """SIGTERM (the agent releases its Lease on the way out), SIGKILL after 20 s."""
    if not agent.alive():
        return
    os.kill(agent.pid, signal.SIGTERM)
    for _ in range(int(AGENT_STOP_SECONDS / 0.1)):
        _reap(agent.pid)
        if not agent.alive():
            return
        sleep(0.1)
    os.kill(agent.pid, signal.SIGKILL)
    _reap(agent.pid)


def start_local_agent(
    session: Session,
    namespace: str,
    settings: InstallSettings,
    log_file: str,
    extra_args: tuple[str, ...],
) -> tuple[LocalAgent, subprocess.Popen[bytes]]:
    """The agent as a local process, run with the same settings a Deployment would get."""
    kube = session.kube
    previous = read_local(kube, namespace)
    if previous is not None and previous.alive():
        click.echo(f"stopping the previous local agent (pid {previous.pid})")
        stop_local_agent(previous, session.runtime.sleep)
    identity = f"local-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    args = [
        "--kubeconfig",
        kubeconfig_path(session),
        "--namespace",
        namespace,
        "--provider",
        settings.provider,
        "--listen",
        "127.0.0.1:0",
        "--identity",
        identity,
    ]
    if session.context:
        args += ["--context", session.context]
    if settings.metrics_server:
        args += ["--metrics-server", settings.metrics_server]
    for ns in settings.watch_namespace:
        args += ["--watch-namespace", ns]
    args += security_args(settings)
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [*agent_command(), *args, *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # keeps running after this command returns
        )
    agent = LocalAgent(
        identity, proc.pid, socket.gethostname(), log_file, __version__, settings.metrics_server
    )
    record = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": LOCAL_AGENT_CONFIGMAP,
            "namespace": namespace,
            "labels": {**OUR_LABELS, "app.kubernetes.io/name": AGENT_NAME},
        },
        "data": local_record(agent),
    }
    apply(kube, record)
    return agent, proc


def local_agent_leading(
    kube: Kube, namespace: str, agent: LocalAgent, proc: subprocess.Popen[bytes]
) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        if proc.poll() is not None:
            raise CliError(
                f"the local agent exited with status {proc.returncode}; see {agent.log_file}"
            )
        leader = read_leader(kube, namespace)
        if leader is None or leader.identity != agent.identity:
            who = leader.identity if leader else "nobody"
            return False, f"waiting for the local agent (pid {agent.pid}) to lead (holder: {who})"
        return True, f"local agent pid {agent.pid} is leading; log: {agent.log_file}"

    return check


def installed_settings(kube: Kube, namespace: str) -> InstallSettings | None:
    """The settings the last `init` recorded in `namespace`; None on a fresh install."""
    return stored(kube.get("v1", "ServiceAccount", namespace, AGENT_NAME))


def settings_report(before: InstallSettings | None, after: InstallSettings) -> list[str]:
    """What `init` changes in the agent's settings, one line each, or why nothing changes."""
    lines = changes(before or InstallSettings(), after)
    if lines:
        return lines
    return ["settings: the defaults" if before is None else "settings: no change"]


@click.command(
    "init",
    epilog="""\b
Examples:
  kubectl canary init --provider istio --metrics-server http://prometheus.istio-system:9090
  kubectl canary init --watch-namespace shop --watch-namespace web
  kubectl canary init                          # upgrade, keeping the installed settings
  kubectl canary init --watch-namespace ''     # back to all namespaces, the rest kept
  kubectl canary init --reset                  # back to the defaults
  kubectl canary init --dry-run -o yaml > kubectl-canary.yaml   # review or GitOps it
  kubectl canary init --agent-process                            # on the sandbox (no kubelet)

\b
Settings (provider, metrics server, image, watched namespaces, egress and gateway rules) are
recorded on the agent's ServiceAccount. A flag not given keeps the installed value; init prints
each setting it changes.
""",
)
@kube_options(namespace_help=f"Namespace for the agent (default: {DEFAULT_NAMESPACE}).")
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default=None,
    help="Traffic provider for Canaries that do not name one (default: kubernetes).",
)
@click.option(
    "--metrics-server",
    default=None,
    metavar="URL",
    help="Prometheus URL for metric checks ('' for none).",
)
@click.option(
    "--image",
    default=None,
    help=f"The agent's image ('' for this plugin's: {DEFAULT_IMAGE}).",
)
@click.option(
    "--watch-namespace",
    multiple=True,
    metavar="NS",
    help="Only act on Canaries in this namespace (repeatable; '' for all namespaces).",
)
@click.option(
    "--allow-egress",
    multiple=True,
    metavar="URL",
    help="A URL prefix the agent may call (metrics servers, webhooks; repeatable; '' for none).",
)
@click.option(
    "--egress-default",
    type=click.Choice(EGRESS_DEFAULTS),
    default=None,
    help="Egress to URLs not allowed by --allow-egress (the agent's default: allow).",
)
@click.option(
    "--allow-gateway",
    multiple=True,
    metavar="NS/NAME|NS/*",
    callback=_gateway,
    help="A Gateway HTTPRoutes may attach to (repeatable; '' for none).",
)
@click.option(
    "--allow-wildcard-hosts/--no-allow-wildcard-hosts",
    default=None,
    help="Let Canaries route wildcard hosts.",
)
@click.option(
    "--allow-tls-disable/--no-allow-tls-disable",
    default=None,
    help="Let Canaries skip TLS verification.",
)
@click.option(
    "--shards",
    type=int,
    default=None,
    help="Run this many agent replicas, each ticking its share of the canaries (default: 1, "
    "one leader and all canaries).",
)
@click.option(
    "--reset",
    is_flag=True,
    help="Forget the installed settings: flags not given take their defaults.",
)
@click.option(
    "--dry-run", is_flag=True, help="Print what would be applied and pruned; change nothing."
)
@output_option("yaml", "json")
@click.option("--no-wait", is_flag=True, help="Do not wait for the agent to be ready.")
@timeout_option(300, "the agent to be ready")
@click.option(
    "--agent-process",
    is_flag=True,
    help="Run the agent as a local process instead of a pod (for the sandbox, which has no "
    "kubelet).",
)
@click.option("--agent-log", metavar="PATH", help="Log file of the --agent-process agent.")
@click.option("--agent-arg", multiple=True, hidden=True, help="Extra argument for the agent.")
def init(
    session: Session,
    reset: bool,
    dry_run: bool,
    output: str | None,
    no_wait: bool,
    timeout: float,
    agent_process: bool,
    agent_log: str | None,
    agent_arg: tuple[str, ...],
    **given: Any,
) -> None:
    """Install or upgrade the CRDs, RBAC and agent, and wait until the agent is ready."""
    namespace = session.namespace_flag or DEFAULT_NAMESPACE
    if output and not dry_run:
        raise click.UsageError("-o is only for --dry-run")
    try:
        before = installed_settings(session.kube, namespace)
    except KubeError as e:
        if not dry_run:
            raise
        # GitOps renders offline: from the flags and the defaults alone.
        click.echo(f"not read the installed settings: {e}", err=True)
        before = None
    except CliError:
        if not reset:  # a damaged record: --reset is the way out of it
            raise
        before = None
    settings = merged(InstallSettings() if reset or before is None else before, given)
    if settings.shards < 1:
        raise click.BadParameter("must be at least 1", param_hint="--shards")
    if agent_process and settings.shards > 1:
        raise CliError(
            "--shards splits the canaries across the agent's replicas; --agent-process runs "
            "one process: use --shards 1"
        )
    report = settings_report(before, settings)
    docs = plan(namespace, settings, agent_process)
    if dry_run:
        if output == "json":
            click.echo(to_json({"apiVersion": "v1", "kind": "List", "items": docs}))
        else:
            click.echo(yaml_documents(docs), nl=False)
        # On stderr, so the printed manifests stay valid YAML/JSON.
        for line in report:
            click.echo(line, err=True)
        try:
            for line in prune(session.kube, docs, dry_run=True):
                click.echo(line, err=True)
        except KubeError as e:
            click.echo(f"not checked what would be pruned: {e}", err=True)
        return
    kube = session.kube
    for line in report:
        click.echo(line)
    for doc in docs:
        done = apply_namespace(kube, doc) if doc["kind"] == "Namespace" else apply(kube, doc)
        click.echo(f"{ref(doc)} {done}")
    for line in prune(kube, docs, dry_run=False):
        click.echo(line)
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    wait_until(session, 60, crds_established(kube, crds), "the CRDs")
    if agent_process:
        log_file = agent_log or default_log_file(kubeconfig_path(session), namespace)
        agent, proc = start_local_agent(session, namespace, settings, log_file, agent_arg)
        click.echo(f"local agent started: pid {agent.pid}, log {agent.log_file}")
        if not no_wait:
            wait_until(
                session, timeout, local_agent_leading(kube, namespace, agent, proc), "the agent"
            )
    elif not no_wait:
        try:
            wait_until(
                session, timeout, agent_rollout(kube, namespace, settings.shards), "the agent"
            )
        except TimeoutExceeded as e:
            raise TimeoutExceeded(
                f"{e}; see `kubectl -n {namespace} describe deployment {AGENT_NAME}` "
                "(on the sandbox, which runs no pods, use --agent-process)"
            ) from None
    click.echo("kubectl-canary is ready: create a Canary, or `kubectl canary create --help`")
