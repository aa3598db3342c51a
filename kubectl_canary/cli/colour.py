"""Status icons and colour, for a person at a terminal only.

Three levels, decided once per command (`Style.for_session`):
- stdout is not a terminal (a pipe, a file, CI): plain text, byte for byte what scripts and
  golden files have always seen;
- a terminal with `NO_COLOR` set (any non-empty value, https://no-color.org) or `--no-color`:
  icons, no ANSI escapes (NO_COLOR asks for no colour, not for less information);
- a terminal otherwise: icons and colour.

Icons, one per kind of state (README, Commands):
  ✔ Succeeded, Initialized    ✖ Failed         ◐ Initializing, Progressing, Promoting,
  ⏸ paused                    ⚠ Invalid           Finalising, Terminating
  ○ Waiting, WaitingPromotion, not seen yet
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubectl_canary.cli.options import Session

GREEN, RED, YELLOW, BLUE, GREY = "32", "31", "33", "34", "90"
RESET = "\x1b[0m"
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# phase -> (icon, colour)
_PHASES: dict[str, tuple[str, str]] = {
    "Succeeded": ("✔", GREEN),
    "Initialized": ("✔", GREEN),
    "Failed": ("✖", RED),
    "Initializing": ("◐", BLUE),
    "Progressing": ("◐", BLUE),
    "Promoting": ("◐", BLUE),
    "Finalising": ("◐", BLUE),
    "Terminating": ("◐", GREY),
    "Waiting": ("○", GREY),
    "WaitingPromotion": ("○", GREY),
    "Invalid": ("⚠", RED),
}
PAUSED = ("⏸", YELLOW)
UNKNOWN = ("○", GREY)


def visible_len(text: str) -> int:
    """The width a terminal shows: escapes take no room."""
    return len(_ESCAPE.sub("", text))


def cut(text: str, width: int) -> str:
    """`text` cut to `width` visible characters, escapes kept and closed."""
    if visible_len(text) <= width:
        return text
    out: list[str] = []
    shown, pos = 0, 0
    while pos < len(text) and shown < width - 1:
        m = _ESCAPE.match(text, pos)
        if m:
            out.append(m.group())
            pos = m.end()
            continue
        out.append(text[pos])
        shown += 1
        pos += 1
    closing = RESET if _ESCAPE.search("".join(out)) else ""
    return "".join(out) + "…" + closing


@dataclass(frozen=True)
class Style:
    icons: bool = False
    colour: bool = False

    @classmethod
    def for_session(cls, session: Session) -> Style:
        if not session.runtime.is_terminal():
            return PLAIN
        colour = not session.no_color and not os.environ.get("NO_COLOR")
        return cls(icons=True, colour=colour)

    def paint(self, text: str, colour: str) -> str:
        return f"\x1b[{colour}m{text}{RESET}" if self.colour and text else text

    def phase(self, phase: str, paused: bool = False) -> str:
        """`phase` as a table or the detail view shows it: 'Progressing (paused)' plain."""
        text = phase + (" (paused)" if paused else "")
        if not self.icons:
            return text
        icon, colour = PAUSED if paused else _PHASES.get(phase, UNKNOWN)
        return self.paint(f"{icon} {text}", colour)

    def result(self, passed: bool) -> str:
        """A metric's verdict: 'ok' or 'FAILED'."""
        return self.paint("ok", GREEN) if passed else self.paint("FAILED", RED)

    def event_type(self, type_: str) -> str:
        return self.paint(type_, YELLOW) if type_ == "Warning" else type_


PLAIN = Style()
