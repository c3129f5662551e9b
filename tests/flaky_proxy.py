"""An HTTP proxy in front of the storage emulator that misbehaves like a real object store on a bad
day: some requests answer 503, some connections drop without an answer, some answers come late.

  proxy = FlakyProxy(emulator.url, Faults(unavailable=5, dropped=7, slow=11))
  env = client_environment(proxy.url)   # the clients talk to the proxy instead of the emulator

Which requests fail is decided by their number (request n fails with 503 when n % unavailable ==
unavailable - 1, ...), never by chance, so that a failing run fails the same way again. `counts`
says how many of each the clients met. Requests are forwarded whole (body read to its
Content-Length; chunked bodies are re-framed), answers returned whole.
"""
from __future__ import annotations

import dataclasses
import http.client
import http.server
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}


@dataclasses.dataclass(frozen=True)
class Faults:
  """Every n-th request (0: never): answered 503, dropped (connection closed, no answer), or slow."""
  unavailable: int = 0
  dropped: int = 0
  slow: int = 0
  slow_seconds: float = 0.5
  first: int = 0   # requests before this number all pass (a client's set-up, a bucket's creation)


class FlakyProxy:
  def __init__(self, upstream: str, faults: Faults):
    self.upstream = urllib.parse.urlparse(upstream)
    self.faults = faults
    self.counts = {"requests": 0, "unavailable": 0, "dropped": 0, "slow": 0}
    self.active = True  # False: a plain proxy (e.g. while a test looks at what was written)
    self._lock = threading.Lock()
    proxy = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def log_message(self, *args):  # quiet
        pass

      def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
          parts = []
          while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
              self.rfile.readline()
              return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

      def _handle(self):
        body = self._body()
        fault = proxy._next_fault()
        if fault == "dropped":
          self.close_connection = True
          self.connection.shutdown(2)  # no answer at all: the client sees a reset connection
          return
        if fault == "unavailable":
          message = b'{"error": {"code": 503, "message": "flaky proxy: unavailable"}}'
          self.send_response(503)
          self.send_header("Content-Type", "application/json")
          self.send_header("Content-Length", str(len(message)))
          self.end_headers()
          self.wfile.write(message)
          return
        if fault == "slow":
          time.sleep(proxy.faults.slow_seconds)
        connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        connection.request(self.command, self.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
          if key.lower() not in HOP_BY_HOP:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
          self.wfile.write(data)
        connection.close()

      do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    class Server(http.server.ThreadingHTTPServer):
      daemon_threads = True

      def handle_error(self, request, client_address):  # a client that hung up (a killed process): not news
        import sys
        if not isinstance(sys.exc_info()[1], ConnectionError):
          super().handle_error(request, client_address)

    self._server = Server(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
    self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
    self._thread.start()

  def _next_fault(self) -> str | None:
    with self._lock:
      number = self.counts["requests"]
      self.counts["requests"] += 1
      if not self.active or number < self.faults.first:
        return None
      for kind in ("unavailable", "dropped", "slow"):
        every = getattr(self.faults, kind)
        if every and number % every == every - 1:
          self.counts[kind] += 1
          return kind
      return None

  def stop(self) -> None:
    self._server.shutdown()
    self._server.server_close()
