"""`kubectl-canary`: the root command, the command registry and the process entry point.

Commands are listed here explicitly (a packaged build cannot be relied on to let them be
discovered from the file system) but imported only when invoked, so `kubectl canary status`
does not pay for `init` or `demo`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from kubectl_canary import __version__
from kubectl_canary.cli.errors import CliError, as_click_error
from kubectl_canary.cli.options import Runtime
from kubectl_canary.resources import KubeError

# name -> "module:attribute", in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "init": "kubectl_canary.cli.init:init",
    "status": "kubectl_canary.cli.status:status",
    "logs": "kubectl_canary.cli.logs:logs",
    "abort": "kubectl_canary.cli.abort:abort",
    "promote": "kubectl_canary.cli.promote:promote",
    "pause": "kubectl_canary.cli.pause:pause",
    "resume": "kubectl_canary.cli.resume:resume",
    "retry": "kubectl_canary.cli.retry:retry",
    "offboard": "kubectl_canary.cli.offboard:offboard",
    "create": "kubectl_canary.cli.create:create",
    "convert": "kubectl_canary.cli.convert:convert",
    "doctor": "kubectl_canary.cli.doctor:doctor",
    "report": "kubectl_canary.cli.report:report",
    "uninstall": "kubectl_canary.cli.uninstall:uninstall",
    "demo": "kubectl_canary.cli.demo:demo",
    "sandbox": "kubectl_canary.cli.sandbox:sandbox",
    "version": "kubectl_canary.cli.version:version",
    "completion": "kubectl_canary.cli.completion:completion",
}


class PluginGroup(click.Group):
    """Lazily imported commands; expected failures become one line and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CliError, KubeError) as e:
            raise as_click_error(e) from None


@click.group(
    cls=PluginGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
Examples:
  kubectl canary init --provider istio --metrics-server http://prometheus.istio-system:9090
  kubectl canary status -A
  kubectl canary status mhs -w
  kubectl canary promote mhs --skip-analysis
  kubectl canary offboard mhs --dry-run
  kubectl canary demo
""",
)
@click.version_option(__version__, "--version", prog_name="kubectl-canary")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Progressive delivery for Kubernetes: install, watch and steer canary releases."""
    ctx.ensure_object(Runtime)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "__complete":
        from kubectl_canary.cli.completion import cobra_complete

        sys.exit(cobra_complete(cli, args[1:]))
    from kubectl_canary.cli.completion import COMPLETE_VAR

    cli.main(args=args, prog_name="kubectl canary", complete_var=COMPLETE_VAR)


def kubectl_complete_main() -> None:
    """Entry point for a `kubectl_complete-canary` console script (a pip/pipx install)."""
    from kubectl_canary.cli.completion import cobra_complete

    sys.exit(cobra_complete(cli, sys.argv[1:]))
