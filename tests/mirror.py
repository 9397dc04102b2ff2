"""A real HTTP mirror on 127.0.0.1 (the standard library's server, in a thread) whose behaviour the tests set:
Range support on or off, a connection dropped after N body bytes, failing status codes; it records every request
and counts the body bytes it sent."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Request:
    path: str
    range: str | None
    status: int
    sent: int  # body bytes written


@dataclass
class Mirror:
    """Serves ``files`` (path -> bytes) at ``url(path)``."""

    files: dict[str, bytes]
    range_support: bool = True
    drop_after: list[int] = field(default_factory=list)  # per request, in order: close after this many body bytes
    fail_with: list[int] = field(default_factory=list)  # per request, in order: answer this status instead
    block_delay_s: float = 0.0  # a slow network: a pause before each 16 KiB block
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                mirror._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    @property
    def sent(self) -> int:
        return sum(request.sent for request in self.requests)

    def __enter__(self) -> Mirror:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.lstrip("/")
        wanted = handler.headers.get("Range")
        with self._lock:
            fail = self.fail_with.pop(0) if self.fail_with else None
            drop = self.drop_after.pop(0) if self.drop_after else None
        record = Request(path, wanted, 0, 0)
        self.requests.append(record)
        data = self.files.get(path)
        if fail is not None or data is None:
            record.status = fail or 404
            handler.send_error(record.status)
            return
        start = 0
        match = re.match(r"^bytes=(\d+)-$", wanted or "")
        if self.range_support and match:
            start = int(match.group(1))
            if start >= len(data):
                record.status = 416
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            record.status = 206
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            record.status = 200
            handler.send_response(200)
        body = data[start:]
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if drop is not None:
            body = body[:drop]
        for offset in range(0, len(body), 16384):
            time.sleep(self.block_delay_s)
            try:
                handler.wfile.write(body[offset : offset + 16384])
            except (BrokenPipeError, ConnectionResetError):  # the client went away
                return
            record.sent += len(body[offset : offset + 16384])
        if drop is not None:  # the connection dies half-way: the client sees fewer bytes than announced
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
