"""`kubectl canary convert -f FILE`: Flagger Canaries and MetricTemplates in, ours out.

Every document of the file is written out: Flagger ones converted, others (Deployments,
Services...) unchanged, so a whole app manifest converts in one go. What could not be carried
over is listed on stderr, one line per field. A result the agent would refuse is still written
(so it can be fixed in place) but each of its problems is an `error:` line and the exit status
is 1: a pipeline into `kubectl apply` must not go on as if it had converted cleanly.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_canary.cli.errors import CliError
from kubectl_canary.cli.options import output_option
from kubectl_canary.cli.render import to_json, yaml_documents

Obj = dict[str, Any]
FLAGGER_PREFIX = "flagger.app/"


def convert_documents(docs: list[Any]) -> tuple[list[Any], list[str], list[str]]:
    """(converted documents, notes, problems of invalid results), both as `Kind name: message`
    lines."""
    from kubectl_canary.api.convert import convert_flagger, convert_flagger_metric_template
    from kubectl_canary.api.errors import InvalidResource
    from kubectl_canary.api.validate import validate_canary, validate_metric_template

    out: list[Any] = []
    notes: list[str] = []
    invalid: list[str] = []
    for doc in docs:
        if not (
            isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(FLAGGER_PREFIX)
        ):
            out.append(doc)
            continue
        kind = doc.get("kind")
        name = (doc.get("metadata") or {}).get("name", "?")
        try:
            if kind == "Canary":
                result = convert_flagger(doc)
                problems = validate_canary(result.resource)
            elif kind == "MetricTemplate":
                result = convert_flagger_metric_template(doc)
                problems = validate_metric_template(result.resource)
            else:
                notes.append(f"{kind} {name}: Flagger kind not converted, copied unchanged")
                out.append(doc)
                continue
        except InvalidResource as e:
            raise CliError(
                f"{kind} {name} is not a valid Flagger {kind}: {e.problems[0]}"
            ) from None
        out.append(result.resource)
        notes += [f"{kind} {name}: {n}" for n in result.notes]
        invalid += [f"{kind} {name}: invalid after conversion: {p}" for p in problems]
    return out, notes, invalid


@click.command(
    "convert",
    epilog="""\b
Examples:
  kubectl canary convert -f flagger-canary.yaml > canary.yaml
  kubectl get canaries.flagger.app mhs -o yaml | kubectl canary convert -f - | kubectl apply -f -
""",
)
@click.option(
    "-f",
    "--filename",
    type=click.File("r"),
    required=True,
    help="Flagger manifest to convert ('-' for stdin).",
)
@output_option("yaml", "json", default="yaml")
def convert(filename: Any, output: str) -> None:
    """Convert Flagger Canaries (flagger.app/v1beta1) to kubectl-canary Canaries."""
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(filename) if d is not None]
    except yaml.YAMLError as e:
        raise CliError(f"{filename.name} is not valid YAML: {' '.join(str(e).split())}") from None
    if not docs:
        raise CliError(f"{filename.name} holds no documents")
    out, notes, invalid = convert_documents(docs)
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    if output == "json":
        click.echo(
            to_json(out[0] if len(out) == 1 else {"apiVersion": "v1", "kind": "List", "items": out})
        )
    else:
        click.echo(yaml_documents(out), nl=False)
    for problem in invalid:
        click.echo(f"error: {problem}", err=True)
    if invalid:
        raise click.exceptions.Exit(1)
