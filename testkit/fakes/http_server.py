"""HTTP plumbing shared by the in-process fakes (``FakeShopify``, ``FakeStripe``).

A fake answers requests with one function, ``respond(method, target, headers, body) -> Outcome``;
this module serves it over real HTTP/1.1 (keep-alive) on a background thread:

* ``FakeServer`` is a ``ThreadingHTTPServer`` that tracks its live connections, so ``stop()`` can
  close them (a held or keep-alive connection would otherwise outlive the fake), and records
  exceptions that escape a connection in a ``ServerErrors`` list.
* ``FakeHandler`` reads the body (``Content-Length`` or chunked), passes the request to the fake
  and writes its ``Outcome``: a response (whole or streamed in chunks), a dropped connection, or a
  request held until the client gives up (``hold``).

Subclass ``FakeHandler`` to name the server (``server_version``) or to accept more methods.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the handler does with a request: answer, stream, drop the connection or hold it."""

    response: Response | None = None
    stream: Iterator[bytes] | None = None
    """Body chunks sent with ``Transfer-Encoding: chunked`` after ``response``'s headers."""
    drop: bool = False
    hold: float | None = None
    """Seconds to sit on the request (until the client hangs up) before closing unanswered."""


Respond = Callable[[str, str, dict[str, str], bytes], Outcome]
"""``respond(method, target, headers, body)``; header names are lower-cased."""


class ServerErrors:
    """Tracebacks of exceptions inside a fake, collected from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[str] = []

    def note(self, exc: BaseException | None) -> None:
        text = "".join(traceback.format_exception(exc)) if exc else "unknown error"
        with self._lock:
            self._errors.append(text)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on keep-alive
    sys_version = ""
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.respond(method, self.path, headers, body)
        if outcome.hold is not None:
            self._hold(outcome.hold)
            self.close_connection = True
            return
        if outcome.drop or outcome.response is None:
            self.close_connection = True
            return
        response = outcome.response
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if outcome.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in outcome.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(response.body)))
        # headers and body in one write (BaseHTTPRequestHandler keeps headers in this buffer)
        self._headers_buffer.append(b"\r\n" + response.body)  # type: ignore[attr-defined]
        self.flush_headers()

    def _hold(self, seconds: float) -> None:
        """Sit on the request until the client hangs up, the delay passes, or the fake stops."""
        deadline = time.monotonic() + seconds
        stopping = self.server.stopping
        conn = self.connection
        while not stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                try:
                    if not conn.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                stopping.wait(0.05)


class FakeServer(ThreadingHTTPServer):
    """Serves ``respond`` on ``host:port`` (0: any free port) once ``start()`` is called.

    ``stopping`` is the fake's event: set it before ``stop()`` to release held requests.
    ``name`` prefixes the thread names (``<name>-server``, ``<name>-connection``).
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        host: str,
        port: int,
        handler: type[FakeHandler],
        *,
        respond: Respond,
        errors: ServerErrors,
        stopping: threading.Event,
        name: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.respond = respond
        # Serves HTTPS with this server-side context (the handshake runs in the connection's
        # thread, so a client that never completes it holds up nobody else).
        self.tls = tls
        self.errors = errors
        self.stopping = stopping
        self.name = name
        self._serve_thread: threading.Thread | None = None
        self._active: dict[socket.socket, threading.Thread] = {}
        self._active_lock = threading.Lock()
        super().__init__((host, port), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._serve_thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{self.name}-server",
            daemon=True,
        )
        self._serve_thread.start()

    def stop(self) -> None:
        """Stop accepting, close the live connections, and wait for the serving thread."""
        self.shutdown()
        self.close_connections()
        self.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(5)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would do a reverse DNS lookup (socket.getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"{self.name}-connection",
            daemon=True,
        )
        with self._active_lock:
            self._active[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        served = request
        try:
            if self.tls is not None:
                try:
                    served = self.tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # a client that refused our certificate
            self.finish_request(served, client_address)
        except Exception:
            self.handle_error(served, client_address)
        finally:
            self.shutdown_request(served)
            with self._active_lock:
                self._active.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away
            return
        self.errors.note(exc)

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._active_lock:
            active = list(self._active.items())
        for sock, _ in active:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in active:
            thread.join(timeout)
