"""Where files live: one API for local folders and cloud buckets (`gs://…`).

Every file the framework reads or writes under a workdir, a prepared corpus or an export goes through
`etils.epath` — the path type Orbax, Grain and TFDS use — so a `gs://bucket/run` works wherever a
local folder does. Local paths are made absolute (relative to the current directory) before they
reach a library: Orbax refuses relative ones.

What object stores cannot do, and what we do instead:
  * no rename: a file is written whole in one upload (an object appears complete or not at all), and
    a folder is "finished" when its marker file exists (code caches) or Orbax says so (checkpoints);
  * no append: logs that grow (metrics.jsonl, TensorBoard events) are kept in memory and the whole
    object is rewritten on flush (`GrowingObject`);
  * libraries that need a local file (safetensors' memory map, a Hugging Face tokenizer folder,
    ArrayRecord's writer) get a per-host copy (`local_copy`) or write locally and upload (`upload`).

Cloud clients find their endpoints and credentials through their own environment variables
(`STORAGE_EMULATOR_HOST`, `TENSORSTORE_GCS_HTTP_URL`, …; see the README's bucket section); nothing
here reads or logs a credential.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile

from etils import epath

REMOTE_SCHEMES = ("gs://", "s3://")


class StorageError(OSError):
  """A path that cannot be used: the message names it and says what to do."""


def is_remote(path) -> bool:
  return str(path).startswith(REMOTE_SCHEMES)


def absolute(path) -> str:
  """A local path made absolute (relative to the current directory); a bucket path unchanged."""
  path = os.fspath(path)
  return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def path(location) -> epath.Path:
  return epath.Path(absolute(location))


def join(base, *parts) -> str:
  """`base/part/...` as a string, for either kind of path (os.path.join would mangle nothing here,
  but callers should not have to think about which kind they hold)."""
  return os.fspath(epath.Path(absolute(base)).joinpath(*parts))


def exists(location) -> bool:
  return path(location).exists()


def read_text(location) -> str:
  return path(location).read_text(encoding="utf-8")


def read_json(location):
  return json.loads(read_text(location))


def write_text(location, text: str) -> None:
  """Writes a whole file so that a reader sees the old content or the new, never half: a local file
  goes through a temporary name and a rename; an object store's upload is already all-or-nothing."""
  target = path(location)
  target.parent.mkdir(parents=True, exist_ok=True)
  if is_remote(target):
    target.write_text(text, encoding="utf-8")
    return
  tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
  tmp.write_text(text, encoding="utf-8")
  os.replace(tmp, target)


def write_json(location, value, indent: int | None = 1) -> None:
  write_text(location, json.dumps(value, indent=indent, ensure_ascii=False))


def write_bytes(location, data: bytes) -> None:
  target = path(location)
  target.parent.mkdir(parents=True, exist_ok=True)
  if is_remote(target):
    target.write_bytes(data)
    return
  tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
  tmp.write_bytes(data)
  os.replace(tmp, target)


def makedirs(location) -> str:
  path(location).mkdir(parents=True, exist_ok=True)
  return absolute(location)


def rmtree(location) -> None:
  target = path(location)
  if target.exists():
    target.rmtree()


class GrowingObject:
  """A file that only grows (a log), on storage that cannot append: the content is held in memory
  and the whole object is rewritten on `flush`. Opening an existing object keeps what it holds, so a
  resumed run adds to its log. Locally it is an ordinary append-mode file."""

  def __init__(self, location, binary: bool = False):
    self.path = path(location)
    self.binary = binary
    self.remote = is_remote(location)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    if self.remote:
      self.buffer = bytearray(self.path.read_bytes() if self.path.exists() else b"")
      self.dirty = False
    else:
      self.file = open(self.path, "ab" if binary else "a", encoding=None if binary else "utf-8")

  def write(self, data) -> None:
    if not self.remote:
      self.file.write(data)
      return
    self.buffer += data if isinstance(data, (bytes, bytearray)) else data.encode("utf-8")
    self.dirty = True

  def flush(self) -> None:
    if not self.remote:
      self.file.flush()
    elif self.dirty:
      self.path.write_bytes(bytes(self.buffer))
      self.dirty = False

  def close(self) -> None:
    self.flush()
    if not self.remote:
      self.file.close()


def files_under(folder) -> list[epath.Path]:
  """Every file below a folder, by listing folder by folder (bucket paths refuse `**` globs)."""
  out, pending = [], [path(folder)]
  while pending:
    for entry in pending.pop().iterdir():
      (pending if entry.is_dir() else out).append(entry)
  return sorted(out)


def copy_tree(src, dst) -> None:
  """Copies a folder's files (local or bucket) into another folder (local or bucket)."""
  if not is_remote(src) and not is_remote(dst):
    shutil.copytree(absolute(src), absolute(dst), dirs_exist_ok=True)
    return
  source, target = path(src), path(dst)
  for file_path in files_under(source):
    out = target / file_path.relative_to(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    file_path.copy(out, overwrite=True)


def upload(local_dir: str, remote_dir) -> None:
  """Copies a local folder's files into a (remote or local) folder, keeping the layout."""
  target = path(remote_dir)
  for root, _, files in os.walk(local_dir):
    relative = os.path.relpath(root, local_dir)
    folder = target if relative == "." else target / relative
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
      epath.Path(os.path.join(root, name)).copy(folder / name, overwrite=True)


@contextlib.contextmanager
def local_file_for(location):
  """A local file name to write `p` through: `p` itself when local; for a bucket path, a temporary
  file (same suffix) uploaded to `p` when the block ends without an error."""
  if not is_remote(location):
    os.makedirs(os.path.dirname(absolute(location)) or ".", exist_ok=True)
    yield absolute(location)
    return
  with tempfile.TemporaryDirectory(prefix="asl-out-") as folder:
    local = os.path.join(folder, os.path.basename(str(location)))
    yield local
    write_bytes(location, epath.Path(local).read_bytes())


def staging_root() -> str:
  return os.environ.get("ASL_STAGING_DIR", os.path.expanduser("~/.cache/asl_motiongpt/staged"))


def local_copy(location) -> str:
  """A local folder or file with the content of `p`: `p` itself when local; for a bucket path, a copy
  in this host's staging cache (`$ASL_STAGING_DIR`, default ~/.cache/asl_motiongpt/staged), keyed by
  the path and by the remote files' names and sizes (changed files get a new copy). Processes of one
  host that stage the same folder at once each copy into a private folder and move it into place;
  the first move wins and the others are discarded."""
  if not is_remote(location):
    return absolute(location)
  source = path(location)
  if not source.exists():
    raise StorageError(f"{location} does not exist (or the bucket cannot be reached)")
  files = files_under(source) if source.is_dir() else [source]
  relative = [
      os.fspath(file_path.relative_to(source)) if source.is_dir() else source.name for file_path in files
  ]
  manifest = json.dumps(sorted(zip(relative, [file_path.stat().length for file_path in files])))
  key = hashlib.sha256(f"{os.fspath(source)}\n{manifest}".encode()).hexdigest()[:20]
  target = os.path.join(staging_root(), key, source.name)
  if os.path.exists(target):
    return target
  os.makedirs(os.path.dirname(target), exist_ok=True)
  partial = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".partial-")
  for file_path, name in zip(files, relative):
    local = os.path.join(partial, name)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    file_path.copy(epath.Path(local), overwrite=True)
  staged = partial if source.is_dir() else os.path.join(partial, source.name)
  try:
    os.rename(staged, target)
  except OSError:  # another process of this host moved its copy first
    if not os.path.exists(target):
      raise
  shutil.rmtree(partial, ignore_errors=True)
  return target


def check_bucket(location) -> None:
  """Fails early, naming the path, when a bucket path's bucket does not exist or cannot be reached
  (before any training step, rather than at the first checkpoint)."""
  if not is_remote(location):
    return
  text = str(location)
  scheme, rest = text.split("://", 1)
  bucket = f"{scheme}://{rest.split('/', 1)[0]}"
  try:
    found = epath.Path(bucket).exists()
  except Exception as e:  # network, credentials: the client's own words are the useful part
    raise StorageError(f"cannot reach {bucket} (for {text}): {type(e).__name__}: {str(e)[:300]}. Check the "
                       "bucket name, the network and your credentials (`gcloud auth application-default "
                       "login`, or the VM's service account).") from e
  if not found:
    raise StorageError(f"bucket {bucket} (for {text}) does not exist or is not visible with these "
                       f"credentials; create it (`gcloud storage buckets create {bucket}`) or fix the path")
