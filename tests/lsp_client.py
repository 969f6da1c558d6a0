"""A minimal Language Server Protocol client over a subprocess's stdin/stdout (raw JSON-RPC with
``Content-Length`` framing), for the end-to-end tests and ``bench/bench_lsp.py``. A reader thread files
responses by id and notifications in arrival order, each with the ``time.perf_counter()`` it arrived at;
requests from the server (``workspace/inlayHint/refresh``, ...) are answered with ``null``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# a spec with three mistakes (a misspelt option, a misspelt op, an undefined parameter), for the tests
THREE_MISTAKES = """\
name: three
input: [1, 28, 28]
layers:
  - conv: {out: 6, kernal: 5}
  - rellu
  - linear: {out: $num_clases}
"""


class LspClient:
    def __init__(self, *args: str, cwd: Path = ROOT) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "cnnspec", "lsp", *args], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lock = threading.Condition()
        self.responses: dict[int, tuple[float, dict[str, Any]]] = {}
        self.notifications: list[tuple[float, dict[str, Any]]] = []
        self.server_requests: list[dict[str, Any]] = []
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- wire ----------------------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(stream.read(length or 0))
            now = time.perf_counter()
            if "method" in message and "id" in message:  # a request from the server
                self.server_requests.append(message)
                self._send({"id": message["id"], "result": None})
                continue
            with self.lock:
                if "id" in message:
                    self.responses[message["id"]] = (now, message)
                else:
                    self.notifications.append((now, message))
                self.lock.notify_all()

    # -- messages ------------------------------------------------------------------------------------------
    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def send_request(self, method: str, params: Any) -> int:
        self.next_id += 1
        self._send({"id": self.next_id, "method": method, "params": params})
        return self.next_id

    def response(self, request_id: int, timeout: float = 30) -> tuple[float, Any]:
        """(arrival time, result) of a request; an error response raises."""
        with self.lock:
            if not self.lock.wait_for(lambda: request_id in self.responses, timeout):
                raise TimeoutError(f"no response to request {request_id} in {timeout} s; stderr: {self.stderr()}")
            at, message = self.responses.pop(request_id)
        if "error" in message:
            raise RuntimeError(f"server error: {message['error']}")
        return at, message.get("result")

    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        return self.response(self.send_request(method, params), timeout)[1]

    def wait_notification(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30,
                          after: int = 0) -> tuple[int, float, dict[str, Any]]:
        """The first notification from index ``after`` on that ``match``es: (its index, arrival, message)."""
        def find() -> tuple[int, float, dict[str, Any]] | None:
            for index in range(after, len(self.notifications)):
                at, message = self.notifications[index]
                if match(message):
                    return index, at, message
            return None

        with self.lock:
            if not self.lock.wait_for(lambda: find() is not None, timeout):
                raise TimeoutError(f"no matching notification in {timeout} s; stderr: {self.stderr()}")
            found = find()
        assert found is not None
        return found

    def diagnostics(self, uri: str, version: int | None = None, after: int = 0, timeout: float = 30
                    ) -> tuple[int, float, list[dict[str, Any]]]:
        """The next ``publishDiagnostics`` for ``uri`` (of ``version``, when given)."""
        def match(message: dict[str, Any]) -> bool:
            params = message.get("params") or {}
            return (message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri
                    and (version is None or params.get("version") == version))

        index, at, message = self.wait_notification(match, timeout, after)
        return index, at, message["params"]["diagnostics"]

    # -- the session ---------------------------------------------------------------------------------------
    def initialize(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.request("initialize", {"processId": os.getpid(), "rootUri": ROOT.as_uri(),
                                             "capabilities": capabilities or {}})
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str | None = None, version: int = 1) -> str:
        uri = path.resolve().as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": version,
            "text": path.read_text() if text is None else text}})
        return uri

    def change(self, uri: str, version: int, changes: list[dict[str, Any]]) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                               "contentChanges": changes})

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> int:
        """Shut the server down as an editor does; its exit status."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout=10)
                self.notify("exit", None)
            return self.proc.wait(timeout=10)
        except (TimeoutError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


def position(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


def span(line: int, start: int, end: int, end_line: int | None = None) -> dict[str, Any]:
    """An LSP range on one line (or to ``end_line``)."""
    return {"start": position(line, start), "end": position(line if end_line is None else end_line, end)}
