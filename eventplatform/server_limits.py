"""Daphne's HTTP server (Twisted) answers an over-long request line instead of hanging up.

Twisted reads the request line as one "line" of at most 16 KiB and, past that, closes the
connection without a word. The application's own bound (``MAX_QUERY_STRING_BYTES``, 8 KiB)
is lower, so requests up to the server's line limit reach Django and get its 414 JSON; the
server's limit is raised to 1 MiB so that ordinary mistakes (a 100 KB query string) do too,
and anything longer still gets a 414 JSON from the server itself, never silence.
"""

import json

#: Longest request line (and header line) Daphne reads before answering 414 itself.
SERVER_MAX_LINE_BYTES = 1024 * 1024


def _refuse_long_line(channel, line: bytes) -> None:
    body = json.dumps(
        {
            "detail": f"the request line is over the server's limit of {SERVER_MAX_LINE_BYTES:,} "
            "bytes",
            "limit_bytes": SERVER_MAX_LINE_BYTES,
        }
    ).encode()
    channel.transport.write(
        b"HTTP/1.1 414 URI Too Long\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    channel.loseConnection()


def install() -> None:
    """Apply the limits to Twisted's HTTP channel (the class Daphne's protocol extends)."""
    from twisted.web.http import HTTPChannel

    HTTPChannel.MAX_LENGTH = SERVER_MAX_LINE_BYTES
    HTTPChannel.totalHeadersSize = max(
        HTTPChannel.totalHeadersSize, SERVER_MAX_LINE_BYTES + 64 * 1024
    )
    HTTPChannel.lineLengthExceeded = _refuse_long_line
