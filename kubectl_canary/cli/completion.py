"""Shell completion: scripts for bash/zsh/fish, and Cobra's `__complete` protocol for kubectl.

kubectl (1.26+) completes `kubectl canary <TAB>` by running `kubectl_complete-canary` from PATH
with the words typed so far (the last one possibly empty) and reading Cobra's format: one
candidate per line (`value<TAB>description`), then `:<directive>`. That executable is a
two-line script calling `kubectl-canary __complete`, answered here from click's own completion
machinery, so flags, commands, choices and canary names complete the same way everywhere.
"""

from __future__ import annotations

import click

COMPLETE_VAR = "_KUBECTL_CANARY_COMPLETE"
PROG = "kubectl-canary"
# Cobra's ShellCompDirective values.
DIRECTIVE_DEFAULT = 0  # let the shell complete file names
DIRECTIVE_NO_FILE = 4

KUBECTL_SCRIPT = """#!/usr/bin/env sh
# kubectl (1.26+) runs this as `kubectl_complete-canary` to complete `kubectl canary ...`.
exec kubectl-canary __complete "$@"
"""


def cobra_complete(cli: click.Command, words: list[str], obj: object = None) -> int:
    """Print completions for `kubectl canary <words>` in Cobra's format; returns exit status.

    `obj` is the root context object (tests pass a Runtime with a fake cluster).
    """
    from click.shell_completion import ShellComplete

    args, incomplete = (words[:-1], words[-1]) if words else ([], "")
    completer = ShellComplete(cli, {"obj": obj} if obj is not None else {}, PROG, COMPLETE_VAR)
    items = completer.get_completions(args, incomplete)
    directive = DIRECTIVE_NO_FILE
    lines = []
    for item in items:
        if item.type in ("file", "dir"):
            directive = DIRECTIVE_DEFAULT
            continue
        help_text = (item.help or "").splitlines()[0] if item.help else ""
        lines.append(f"{item.value}\t{help_text}" if help_text else str(item.value))
    for line in lines:
        click.echo(line)
    click.echo(f":{directive}")
    return 0


@click.command(
    "completion",
    epilog="""\b
Examples:
  # kubectl canary <TAB> (kubectl 1.26+): put the helper script on PATH
  kubectl canary completion kubectl > ~/.local/bin/kubectl_complete-canary
  chmod +x ~/.local/bin/kubectl_complete-canary
  # kubectl-canary <TAB> in bash / zsh / fish
  source <(kubectl-canary completion bash)
""",
)
@click.argument("shell", type=click.Choice(["kubectl", "bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print a shell completion script (`kubectl` prints kubectl_complete-canary)."""
    if shell == "kubectl":
        click.echo(KUBECTL_SCRIPT, nl=False)
        return
    from click.shell_completion import get_completion_class

    # The root group this command hangs under (importing it would be an import cycle).
    root = click.get_current_context().find_root().command
    cls = get_completion_class(shell)
    assert cls is not None  # every choice above is one of click's shells
    click.echo(cls(root, {}, PROG, COMPLETE_VAR).source())
