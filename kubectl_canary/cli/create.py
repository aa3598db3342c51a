"""`kubectl canary create NAME`: a Canary for a Deployment, from flags.

The document is built by a pure function (`canary_document`) and checked with the same
validation the agent uses, so a bad flag is reported before anything reaches the cluster.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_canary.api.model import API_VERSION, PROVIDERS
from kubectl_canary.cli.errors import CliError
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


@click.command(
    "create",
    epilog="""\b
Examples:
  kubectl canary create mhs --port 9898 --provider istio --success-rate 99 --max-duration 500
  kubectl canary create web --target web-app --port 8080 --step-weights 5,25,50
  kubectl canary create mhs --port 9898 --dry-run -o yaml > canary.yaml
""",
)
@click.argument("name")
@kube_options()
@click.option("--target", metavar="DEPLOYMENT", help="Deployment to release (default: NAME).")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="Service port.")
@click.option("--provider", type=click.Choice(PROVIDERS), help="Default: the agent's --provider.")
@click.option("--interval", default="1m", show_default=True, help="Time between checks.")
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Failed checks before rolling back.",
)
@click.option("--max-weight", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--step-weight", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option(
    "--step-weights",
    metavar="LIST",
    default="",
    help="Comma-separated weights instead of --step-weight/--max-weight.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=0),
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
    doc = canary_document(name, namespace, target=target or name, step_weights=weights, **flags)
    problems = validate_canary(doc)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CliError(f"the Canary would be invalid: {problems[0]}{more}")
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
