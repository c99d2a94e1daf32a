"""Structured log lines: the message, then every ``extra`` field as ``key=value``."""

import json
import logging

_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class StructuredFormatter(logging.Formatter):
    """Formats a record as ``time level logger message key=value ...``.

    Fields passed with ``extra=`` stay machine-readable (values JSON-encoded when they are
    not plain words), so log shippers can parse them without a custom grammar.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}
        line = (
            f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} "
            f"{record.name} {record.getMessage()}"
        )
        if fields:
            line += " " + " ".join(f"{k}={_render(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _render(value: object) -> str:
    text = str(value)
    if isinstance(value, str) and text and " " not in text and "=" not in text:
        return text
    return json.dumps(value, default=str)
