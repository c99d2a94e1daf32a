"""Daphne's HTTP server (Twisted) answers an over-long request line instead of hanging up.

Twisted reads the request line as one "line" of at most 16 KiB and, past that, closes the
connection without a word. The application's own bound (``MAX_QUERY_STRING_BYTES``, 8 KiB)
is lower, so requests up to the server's line limit reach Django and get its 414 JSON; the
server's limit is raised to 1 MiB so that ordinary mistakes (a 100 KB query string) do too,
and anything longer still gets a 414 JSON from the server itself, never silence.

Daphne also receives a request's whole body before the application sees any of it, then
queues all of it at once, so a size limit in the application comes too late to spare the
server's memory (a 300 MB upload grew it by gigabytes before its 413). The server therefore
refuses a body over :func:`max_body_bytes` itself with a 413 JSON: as soon as the headers
declare a longer ``Content-Length``, or as soon as a chunked body grows past it.

Neither answer reaches the application, so neither reaches Django's request log: each is
logged here instead, as the application logs its own 4xx answers (a warning).
"""

import json
import logging
from io import BytesIO

#: Longest request line (and header line) Daphne reads before answering 414 itself.
SERVER_MAX_LINE_BYTES = 1024 * 1024
#: After refusing a body, how long what the client still sends is read and dropped, so
#: that a client that does not wait for an answer before sending reads the 413 rather
#: than a connection reset; then the connection is cut.
REFUSED_BODY_LINGER_SECONDS = 5

logger = logging.getLogger("eventplatform.server")


def max_body_bytes() -> int:
    """The largest request body the server reads: a contacts upload (the largest body any
    view accepts) or Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``, if that is larger."""
    from django.conf import settings

    from contacts.upload import max_upload_request_bytes

    return max(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, max_upload_request_bytes())


def body_too_large(*, size: int | None, limit: int) -> dict:
    """The 413 answer to a body of ``size`` bytes (``None``: unknown, but over) or more."""
    told = f"{size:,} bytes" if size is not None else f"over {limit:,} bytes"
    return {
        "detail": f"the request body is {told}; the limit is {limit:,} bytes",
        "limit_bytes": limit,
    }


def _log_refusal(channel, status: int, reason: str, request_line: bytes, **details) -> None:
    peer = channel.transport.getPeer()
    logger.warning(
        f"{reason}: {request_line[:200].decode('latin-1')}",
        extra={
            "status_code": status,
            "client": f"{getattr(peer, 'host', '')}:{getattr(peer, 'port', '')}",
            **details,
        },
    )


def _request_line(channel) -> bytes:
    # Twisted keeps the request line on the channel until the request object takes it.
    return b" ".join([getattr(channel, "_command", b""), getattr(channel, "_path", b"")])


def _refuse_long_line(channel, line: bytes) -> None:
    if hasattr(channel, "_command"):  # the request line was read: a header is too long
        # Named by its request only: a header's value may be a credential.
        _log_refusal(
            channel,
            414,
            "Header line too long",
            _request_line(channel),
            limit_bytes=SERVER_MAX_LINE_BYTES,
        )
    else:  # cut where the limit was passed: its start says what was asked
        _log_refusal(channel, 414, "Request line too long", line, limit_bytes=SERVER_MAX_LINE_BYTES)
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


def _limit_bodies(request_class) -> None:
    """Wrap the methods by which Daphne's request receives its body, to count it."""
    got_length = request_class.gotLength
    handle_content_chunk = request_class.handleContentChunk
    request_received = request_class.requestReceived

    def gotLength(request, length):  # noqa: N802 (Twisted's names)
        request.body_limit, request.body_bytes = max_body_bytes(), 0
        request.body_refused = False
        if length is not None and length > request.body_limit:
            _refuse_body(request, size=length)
        else:
            got_length(request, length)

    def handleContentChunk(request, data):  # noqa: N802
        if request.body_refused:
            return
        request.body_bytes += len(data)
        if request.body_bytes > request.body_limit:
            _refuse_body(request, size=None)
        else:
            handle_content_chunk(request, data)

    def requestReceived(request, command, path, version):  # noqa: N802
        if not request.body_refused:  # else answered already: the application never runs
            request_received(request, command, path, version)

    request_class.gotLength = gotLength
    request_class.handleContentChunk = handleContentChunk
    request_class.requestReceived = requestReceived
    request_class.bodies_limited = True


def _refuse_body(request, *, size: int | None) -> None:
    from twisted.internet import reactor

    request.body_refused = True
    request.content = BytesIO()  # nothing of the body is kept
    # Twisted answers "Expect: 100-continue" after reading the headers: not after this.
    request.requestHeaders.removeHeader(b"Expect")
    channel = request.channel
    transport = channel.transport
    told = {"declared_bytes": size} if size is not None else {}
    _log_refusal(
        channel,
        413,
        "Content Too Large",
        _request_line(channel),
        limit_bytes=request.body_limit,
        **told,
    )
    body = json.dumps(body_too_large(size=size, limit=request.body_limit)).encode()
    transport.write(
        b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    # Half-close: the answer is complete, the rest of the body is read and dropped.
    channel.rawDataReceived = _drop
    getattr(transport, "loseWriteConnection", transport.loseConnection)()
    reactor.callLater(REFUSED_BODY_LINGER_SECONDS, transport.abortConnection)


def _drop(data: bytes) -> None:
    """Takes the place of the channel's body reader once the body was refused."""


def install() -> None:
    """Apply the limits to Twisted's HTTP channel (the class Daphne's protocol extends) and
    to Daphne's request (the body limit)."""
    from daphne.http_protocol import WebRequest
    from twisted.web.http import HTTPChannel

    HTTPChannel.MAX_LENGTH = SERVER_MAX_LINE_BYTES
    HTTPChannel.totalHeadersSize = max(
        HTTPChannel.totalHeadersSize, SERVER_MAX_LINE_BYTES + 64 * 1024
    )
    HTTPChannel.lineLengthExceeded = _refuse_long_line
    if not getattr(WebRequest, "bodies_limited", False):  # wrapped once, however often called
        _limit_bodies(WebRequest)
