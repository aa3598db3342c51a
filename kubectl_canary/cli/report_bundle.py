"""The support bundle as a file: its members, its README.txt index, and writing the zip.

A part that cannot be collected (forbidden, the agent down) is recorded in the index with the
reason and the rest goes on: half a bundle is worth much more than none to whoever reads it.
The zip is written to a temporary file beside the target and renamed into place, so a reader
never sees a half-written bundle; members are sorted and dated with the time the bundle was
taken, so the same cluster state gives the same member list.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from kubectl_canary.cli.errors import CliError, one_line
from kubectl_canary.cli.render import to_yaml
from kubectl_canary.cli.report_redact import for_bundle
from kubectl_canary.resources import KubeError

T = TypeVar("T")
Obj = dict[str, Any]

INDEX = "README.txt"


@dataclass
class Bundle:
    taken: datetime
    include_secrets: bool = False
    members: dict[str, bytes] = field(default_factory=dict)
    described: dict[str, str] = field(default_factory=dict)  # member -> what it holds
    errors: list[tuple[str, str]] = field(default_factory=list)  # (part, why it is missing)

    def add(self, path: str, text: str, what: str) -> None:
        self.members[path] = text.encode("utf-8")
        self.described[path] = what

    def add_object(self, path: str, obj: Obj, what: str) -> None:
        self.add(path, to_yaml(for_bundle(obj, self.include_secrets)), what)

    def add_objects(self, path: str, objs: list[Obj], what: str) -> None:
        """Several objects as one YAML list (Events, for one)."""
        self.add(path, to_yaml([for_bundle(o, self.include_secrets) for o in objs]), what)

    def missing(self, part: str, why: str) -> None:
        self.errors.append((part, why))

    def attempt(self, part: str, collect: Callable[[], T]) -> T | None:
        """collect(), or None with the failure recorded as `part`'s error."""
        try:
            return collect()
        except (KubeError, CliError, OSError) as e:
            self.missing(part, one_line(e))
            return None


def index_text(bundle: Bundle, header: list[str]) -> str:
    """README.txt: when and how the bundle was taken, every member, and what is missing."""
    paths = sorted(bundle.described)
    width = max((len(p) for p in paths), default=0)
    lines = [*header, "", "Contents:"]
    lines += [f"  {p.ljust(width)}  {bundle.described[p]}" for p in paths]
    if bundle.errors:
        lines += ["", "Not collected:"]
        lines += [f"  {part}: {why}" for part, why in bundle.errors]
    return "\n".join(lines) + "\n"


def write_zip(bundle: Bundle, index: str, path: str) -> int:
    """Write the bundle to `path` atomically; return its size in bytes."""
    import tempfile
    import zipfile

    directory = os.path.dirname(os.path.abspath(path))
    members = {INDEX: index.encode("utf-8"), **bundle.members}
    stamp = bundle.taken.timetuple()[:6]
    # mkstemp creates the file readable by its owner only: the bundle describes a cluster.
    fd, temp = tempfile.mkstemp(prefix=".kubectl-canary-report-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(members, key=lambda m: (m != INDEX, m)):
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                zf.writestr(info, members[name])
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return os.path.getsize(path)
