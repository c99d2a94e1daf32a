"""Over-long request lines through the real server (Daphne): always a 414 in JSON."""

import json
import socket

import pytest

from tests.helpers import serve_daphne, wait_until


@pytest.fixture
def daphne(subprocess_env, tmp_path):
    with serve_daphne(env=subprocess_env, log_path=tmp_path / "daphne.log") as port:
        yield port


def _get(port: int, query_bytes: int, *, whole: bool = True) -> tuple[str, dict]:
    """Send a GET with a query string of ``query_bytes``; ``whole=False`` stops sending
    once the line is that long (the server answers before the line ends)."""
    request = f"GET /healthz?a={'x' * query_bytes}"
    if whole:
        request += " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(request.encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return head.split(b"\r\n", 1)[0].decode(), json.loads(body)


def test_a_100_kb_query_string_gets_the_applications_414(daphne):
    status, body = _get(daphne, 100_000)
    assert status.startswith("HTTP/1.1 414")
    assert body["limit_bytes"] == 8192 and "100,002 bytes" in body["detail"]


def test_a_request_line_past_the_servers_limit_still_gets_a_414(daphne, tmp_path):
    # Nothing is sent after the limit, so the server's answer is not lost to a reset.
    status, body = _get(daphne, 1024 * 1024 + 16, whole=False)
    assert status.startswith("HTTP/1.1 414")
    assert body["limit_bytes"] == 1024 * 1024
    # The application never saw it: the server logs it as the application logs its 4xx.
    log = tmp_path / "daphne.log"
    wait_until(lambda: "Request line too long: GET /healthz?a=xxx" in log.read_text(), timeout=10)
    assert "status_code=414" in log.read_text()


def test_a_header_past_the_servers_limit_gets_a_414_logged_without_its_value(daphne, tmp_path):
    request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: secret=" + "x" * 1024 * 1024
    with socket.create_connection(("127.0.0.1", daphne), timeout=20) as connection:
        connection.sendall(request.encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 414")
    log = tmp_path / "daphne.log"
    wait_until(lambda: "Header line too long: GET /healthz" in log.read_text(), timeout=10)
    assert "secret" not in log.read_text()  # a header's value may be a credential
