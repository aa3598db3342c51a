"""`kubectl canary create NAME`: a Canary for a Deployment, from flags.

The document is built by a pure function (`canary_document`) and checked with the same
validation the agent uses, so a bad flag is reported before anything reaches the cluster, as a
usage error naming the flag (exit 2). Flags carry no ranges of their own: the validator is the one
place that knows a port is 1..65535 or a success rate a percentage.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_canary.api.durations import format_duration
from kubectl_canary.api.errors import MISSING, Problem
from kubectl_canary.api.model import API_VERSION, PROVIDERS
from kubectl_canary.cli.durations import DURATION
from kubectl_canary.cli.errors import CliError, FlagValuesError
from kubectl_canary.cli.options import Session, kube_options, output_option
from kubectl_canary.cli.render import to_json, to_yaml
from kubectl_canary.resources import AlreadyExistsError

Obj = dict[str, Any]


def canary_document(
    name: str,
    namespace: str,
    *,
    target: str,
    port: int,
    provider: str | None,
    interval: str,
    threshold: int,
    max_weight: int,
    step_weight: int,
    step_weights: tuple[int, ...],
    iterations: int,
    success_rate: float | None,
    max_duration: float | None,
    metrics_server: str | None,
    hosts: tuple[str, ...],
    gateways: tuple[str, ...],
    gateway_refs: tuple[str, ...],
    skip_analysis: bool,
    revert_on_deletion: bool,
) -> Obj:
    analysis: Obj = {"interval": interval, "threshold": threshold}
    if iterations:
        analysis["iterations"] = iterations
    elif step_weights:
        analysis["stepWeights"] = list(step_weights)
    else:
        analysis["maxWeight"] = max_weight
        analysis["stepWeight"] = step_weight
    metrics = []
    if success_rate is not None:
        metrics.append(
            {
                "name": "request-success-rate",
                "thresholdRange": {"min": success_rate},
                "interval": "1m",
            }
        )
    if max_duration is not None:
        metrics.append(
            {"name": "request-duration", "thresholdRange": {"max": max_duration}, "interval": "1m"}
        )
    if metrics:
        analysis["metrics"] = metrics
    service: Obj = {"port": port}
    if hosts:
        service["hosts"] = list(hosts)
    if gateways:
        service["gateways"] = list(gateways)
    if gateway_refs:
        service["gatewayRefs"] = [gateway_ref(ref) for ref in gateway_refs]
    spec: Obj = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "service": service,
        "analysis": analysis,
    }
    if provider:
        spec["provider"] = provider
    if metrics_server:
        spec["metricsServer"] = metrics_server
    if skip_analysis:
        spec["skipAnalysis"] = True
    if revert_on_deletion:
        spec["revertOnDeletion"] = True
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def gateway_ref(text: str) -> Obj:
    """`--gateway-ref [NS/]NAME` as a spec.service.gatewayRefs entry."""
    namespace, _, name = text.rpartition("/")
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


# Where each flag lands in the document, to name the flag a validation problem is about.
_FLAG_OF_PATH = (
    ("metadata.name", "NAME"),
    ("metadata.namespace", "--namespace"),
    ("spec.service.port", "--port"),
    ("spec.service.hosts", "--host"),
    ("spec.service.gateways", "--gateway"),
    ("spec.service.gatewayRefs", "--gateway-ref"),
    ("spec.provider", "--provider"),
    ("spec.metricsServer", "--metrics-server"),
    ("spec.analysis.interval", "--interval"),
    ("spec.analysis.threshold", "--threshold"),
    ("spec.analysis.maxWeight", "--max-weight"),
    ("spec.analysis.stepWeights", "--step-weights"),
    ("spec.analysis.stepWeight", "--step-weight"),
    ("spec.analysis.iterations", "--iterations"),
)
_FLAG_OF_METRIC = {"request-success-rate": "--success-rate", "request-duration": "--max-duration"}


def flag_of(path: str, doc: Obj, target_given: bool) -> str | None:
    """The flag (or NAME) that set the field at `path` of `doc`, None when no flag did."""

    def under(prefix: str) -> bool:
        return path == prefix or path.startswith((prefix + ".", prefix + "["))

    for prefix, flag in _FLAG_OF_PATH:
        if under(prefix):
            return flag
    if under("spec.targetRef"):
        return "--target" if target_given else "NAME"  # the target defaults to NAME
    metrics = doc["spec"]["analysis"].get("metrics", [])
    for index, metric in enumerate(metrics):
        if under(f"spec.analysis.metrics[{index}]"):
            return _FLAG_OF_METRIC.get(metric["name"])
    return None


def refuse(problems: list[Problem], doc: Obj, target_given: bool) -> FlagValuesError:
    """One line per refused flag (NAME also names the target: its problem is told once)."""
    lines, told = [], set()
    for problem in problems:
        flag = flag_of(problem.path, doc, target_given)
        if flag in told:
            continue
        if flag:
            told.add(flag)
            where = f"missing {flag}" if problem.value is MISSING else f"invalid {flag}"
        else:
            where = "the Canary would be invalid"
        lines.append(f"{where}: {problem}")
    return FlagValuesError("\n".join(lines))


@click.command(
    "create",
    epilog="""\b
Examples:
  kubectl canary create mhs --port 9898 --provider istio --success-rate 99 --max-duration 500
  kubectl canary create web --target web-app --port 8080 --step-weights 5,25,50
  kubectl canary create mhs --port 9898 --dry-run -o yaml > canary.yaml
  kubectl canary create web --port 8080 --provider gatewayapi --gateway-ref infra/public
""",
)
@click.argument("name")
@kube_options()
@click.option("--target", metavar="DEPLOYMENT", help="Deployment to release (default: NAME).")
@click.option("--port", type=int, required=True, help="Service port.")
@click.option("--provider", type=click.Choice(PROVIDERS), help="Default: the agent's --provider.")
@click.option(
    "--interval", type=DURATION, default="1m", show_default=True, help="Time between checks."
)
@click.option(
    "--threshold",
    type=int,
    default=5,
    show_default=True,
    help="Failed checks before rolling back.",
)
@click.option("--max-weight", type=int, default=50, show_default=True)
@click.option("--step-weight", type=int, default=10, show_default=True)
@click.option(
    "--step-weights",
    metavar="LIST",
    default="",
    help="Comma-separated weights instead of --step-weight/--max-weight.",
)
@click.option(
    "--iterations",
    type=int,
    default=0,
    help="Blue/green: checks to run before switching all traffic.",
)
@click.option(
    "--success-rate", type=float, metavar="PERCENT", help="Check request-success-rate >= PERCENT."
)
@click.option(
    "--max-duration", type=float, metavar="MS", help="Check request-duration (p99) <= MS."
)
@click.option("--metrics-server", metavar="URL", help="Prometheus for this canary only.")
@click.option("--host", "hosts", multiple=True, help="Istio VirtualService host (repeatable).")
@click.option("--gateway", "gateways", multiple=True, help="Istio gateway (repeatable).")
@click.option(
    "--gateway-ref",
    "gateway_refs",
    metavar="[NS/]NAME",
    multiple=True,
    help="Gateway API Gateway the HTTPRoute attaches to (repeatable; needed by gatewayapi).",
)
@click.option("--skip-analysis", is_flag=True, help="Promote new revisions without checks.")
@click.option(
    "--revert-on-deletion",
    is_flag=True,
    help="Set revertOnDeletion (Flagger compatibility: every deletion hands the app back).",
)
@click.option("--dry-run", is_flag=True, help="Print the Canary; create nothing.")
@output_option("yaml", "json")
def create(
    session: Session,
    name: str,
    target: str | None,
    step_weights: str,
    interval: float,
    dry_run: bool,
    output: str | None,
    **flags: Any,
) -> None:
    """Create a Canary for a Deployment."""
    from kubectl_canary.api.validate import validate_canary

    try:
        weights = tuple(int(w) for w in step_weights.split(",") if w.strip())
    except ValueError:
        raise click.BadParameter(
            "must be integers like 5,25,50", param_hint="--step-weights"
        ) from None
    namespace = session.namespace
    doc = canary_document(
        name,
        namespace,
        target=target or name,
        step_weights=weights,
        interval=format_duration(interval),  # the CRD's duration string: 90 -> "1m30s"
        **flags,
    )
    problems = validate_canary(doc)
    if problems:
        raise refuse(problems, doc, target is not None)
    if dry_run:
        click.echo(to_json(doc) if output == "json" else to_yaml(doc), nl=output == "json")
        return
    kube = session.kube
    if kube.get("apps/v1", "Deployment", namespace, target or name) is None:
        click.echo(
            f"warning: deployment {namespace}/{target or name} does not exist yet; "
            "the agent waits for it",
            err=True,
        )
    try:
        kube.create(doc)
    except AlreadyExistsError:
        raise CliError(f'canary "{name}" already exists in namespace "{namespace}"') from None
    click.echo(f"canary.{API_VERSION.split('/')[0]}/{name} created")
