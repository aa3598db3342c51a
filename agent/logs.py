"""Structured logs: one JSON object per line on stderr.

Every line has `ts`, `level`, `msg`; lines about a canary carry `canary: "namespace/name"` so
`kubectl canary logs NAME` is a filter, not a guess. Extra context goes in through logging's
`extra=` and is copied into the object as is.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def setup(level: str = "info", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The client library's urllib3 pool logs retries at WARNING in its own words; we log ours.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


class CanaryLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose every line carries `canary: key`, merged with the call's own `extra`."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def for_canary(logger: logging.Logger, key: str) -> CanaryLogger:
    return CanaryLogger(logger, {"canary": key})
