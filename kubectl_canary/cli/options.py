"""Options every command shares, defined once, and the context object commands receive.

`Runtime` holds what tests replace (how to connect, the clock, sleeping); `Session` is one
command's view of the cluster: the kube client (connected lazily, so `--help`, `--dry-run` and
`convert` never need a cluster) and the namespace resolved the way kubectl resolves it
(`-n`, else the context's namespace, else `default`).
"""

from __future__ import annotations

import functools
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubectl_canary.api.durations import format_duration
from kubectl_canary.cli.durations import DURATION

if TYPE_CHECKING:
    from kubectl_canary.kube import Kube

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class KubeFlags:
    """The flags that choose the cluster and the identity, as kubectl spells them."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    as_user: str | None = None  # --as
    as_groups: tuple[str, ...] = ()  # --as-group, repeatable
    # --request-timeout in seconds: None leaves the client's defaults, 0 means no limit.
    request_timeout: float | None = None


def _connect(flags: KubeFlags) -> Kube:
    from kubectl_canary import kube

    return kube.connect(
        flags.kubeconfig,
        flags.context,
        flags.namespace,
        flags.as_user,
        flags.as_groups,
        request_timeout=flags.request_timeout,
    )


def _terminal_size() -> tuple[int, int]:
    """(columns, lines) of the terminal, or 80x24 when there is none."""
    size = shutil.get_terminal_size()
    return size.columns, size.lines


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Process-wide collaborators; tests pass their own as `obj=` to CliRunner.invoke."""

    connect: Callable[[KubeFlags], Kube] = _connect
    clock: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # Colour, icons and `-w`'s fitting depend on the terminal; tests pretend to be one.
    is_terminal: Callable[[], bool] = lambda: sys.stdout.isatty()
    terminal_size: Callable[[], tuple[int, int]] = lambda: _terminal_size()


@dataclass
class Session:
    runtime: Runtime
    flags: KubeFlags
    all_namespaces: bool = False
    no_color: bool = False
    _kube: Kube | None = None

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = self.runtime.connect(self.flags)
        return self._kube

    @property
    def namespace_flag(self) -> str | None:
        return self.flags.namespace

    @property
    def context(self) -> str | None:
        return self.flags.context

    @property
    def kubeconfig(self) -> str | None:
        return self.flags.kubeconfig

    @property
    def namespace(self) -> str:
        if self.flags.namespace:
            return self.flags.namespace
        return self.kube.default_namespace

    @property
    def list_namespace(self) -> str | None:
        """The namespace to list in; None means every namespace (-A)."""
        return None if self.all_namespaces else self.namespace

    def now(self) -> datetime:
        return self.runtime.clock()


def current_runtime() -> Runtime:
    ctx = click.get_current_context()
    return ctx.ensure_object(Runtime)


def kube_options(listing: bool = False, namespace_help: str | None = None) -> Callable[[F], F]:
    """-n/--namespace, --context, --kubeconfig, --as, --as-group, --request-timeout, --no-color
    (and -A when the command lists).

    The decorated function receives `session: Session` instead of those options.
    """

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flags = KubeFlags(
                kubeconfig=kwargs.pop("kubeconfig"),
                context=kwargs.pop("context"),
                namespace=kwargs.pop("namespace"),
                as_user=kwargs.pop("as_user"),
                as_groups=tuple(kwargs.pop("as_groups")),
                request_timeout=kwargs.pop("request_timeout"),
            )
            session = Session(
                runtime=current_runtime(),
                flags=flags,
                all_namespaces=kwargs.pop("all_namespaces", False),
                no_color=kwargs.pop("no_color"),
            )
            return f(*args, session=session, **kwargs)

        if listing:
            wrapper = click.option(
                "-A",
                "--all-namespaces",
                is_flag=True,
                help="List across all namespaces.",
            )(wrapper)
        wrapper = no_color_option(wrapper)
        wrapper = click.option(
            "--request-timeout",
            type=DURATION,
            default=None,
            help="How long to wait for each API request (e.g. 10s; 0: no limit). "
            "Default: 10s to connect, 30s for an answer.",
        )(wrapper)
        wrapper = click.option(
            "--as-group",
            "as_groups",
            metavar="GROUP",
            multiple=True,
            help="Group to impersonate (repeat for several); needs --as.",
        )(wrapper)
        wrapper = click.option(
            "--as", "as_user", metavar="USER", help="User to impersonate for this command."
        )(wrapper)
        wrapper = click.option(
            "--kubeconfig",
            metavar="PATH",
            envvar=None,
            help="Kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config).",
        )(wrapper)
        wrapper = click.option("--context", metavar="NAME", help="Kubeconfig context to use.")(
            wrapper
        )
        wrapper = click.option(
            "-n",
            "--namespace",
            metavar="NS",
            help=namespace_help or "Namespace (default: the context's namespace).",
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def no_color_option(f: F) -> F:
    """`--no-color`: on a terminal, icons without colour (as with NO_COLOR set)."""
    return click.option(
        "--no-color",
        is_flag=True,
        help="No colour on a terminal (also: NO_COLOR set to anything).",
    )(f)


def output_option(*choices: str, default: str | None = None) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices),
        default=default,
        help="Output format: " + ", ".join(choices) + ".",
    )


def timeout_option(default: float, what: str) -> Callable[[F], F]:
    """--timeout as a duration; the command receives seconds (`default` is in seconds too)."""
    return click.option(
        "--timeout",
        type=DURATION,
        default=format_duration(default),
        show_default=True,
        help=f"How long to wait for {what} (e.g. 240s, 5m, or seconds).",
    )


def complete_canary_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of canary names in the namespace given so far."""
    from click.shell_completion import CompletionItem

    from kubectl_canary.api.model import API_VERSION
    from kubectl_canary.resources import KubeError

    runtime = ctx.find_object(Runtime) or Runtime()
    try:
        flags = KubeFlags(
            kubeconfig=ctx.params.get("kubeconfig"),
            context=ctx.params.get("context"),
            namespace=ctx.params.get("namespace"),
            as_user=ctx.params.get("as_user"),
            as_groups=tuple(ctx.params.get("as_groups") or ()),
            request_timeout=ctx.params.get("request_timeout"),
        )
        kube = runtime.connect(flags)
        items, _ = kube.list(API_VERSION, "Canary", kube.default_namespace)
    except KubeError:
        return []
    names = sorted(i["metadata"]["name"] for i in items)
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def name_argument(required: bool = True) -> Callable[[F], F]:
    return click.argument(
        "name",
        required=required,
        shell_complete=complete_canary_names,
        metavar="NAME" if required else "[NAME]",
    )
