"""Raw-zone storage: the local filesystem by default, HDFS (through WebHDFS) when the lake is hdfs://.

Only the raw landing zone goes through here (exact bytes, manifests); Delta tables are read and
written by Spark itself, through its own filesystem client, at their ``lakehouse.tables`` locations.

Partitions are replaced atomically: files are written under a temporary sibling folder, then the
folder is swapped into place, so a reader sees the old partition or the new one, never a mix.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import threading
import urllib.parse
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import ConfigError

log = logging.getLogger(__name__)


class Storage:
    """Interface of the raw-zone backends. Paths are relative to the lake root, '/'-separated."""

    uri: str

    def check(self) -> None:
        raise NotImplementedError

    def replace_dir(self, rel_dir: str, files: dict[str, bytes], tmp_tag: str) -> None:
        raise NotImplementedError

    def read_bytes(self, rel_path: str) -> bytes:
        raise NotImplementedError

    def exists(self, rel_path: str) -> bool:
        raise NotImplementedError

    def list_dir(self, rel_dir: str) -> list[tuple[str, bool, int]]:
        """Entries of a folder as (name, is_dir, size); empty when it does not exist."""
        raise NotImplementedError

    def delete(self, rel_path: str) -> None:
        raise NotImplementedError

    def join(self, rel: str) -> str:
        return f"{self.uri}/{rel}" if rel else self.uri


class LocalStorage(Storage):
    def __init__(self, root: Path):
        self.root = root
        self.uri = root.resolve().as_uri()

    def _p(self, rel: str) -> Path:
        return self.root / rel

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # one probe per process and thread: jobs of one run check the same root side by side
            probe = self.root / f".write-probe-{os.getpid()}-{threading.get_ident()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"lake root {self.uri} is not usable: {exc.strerror or exc}") from None

    def replace_dir(self, rel_dir: str, files: dict[str, bytes], tmp_tag: str) -> None:
        final = self._p(rel_dir)
        tmp = final.parent / f".{final.name}.tmp-{tmp_tag}"
        old = final.parent / f".{final.name}.old-{tmp_tag}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)

    def read_bytes(self, rel_path: str) -> bytes:
        return self._p(rel_path).read_bytes()

    def exists(self, rel_path: str) -> bool:
        return self._p(rel_path).exists()

    def list_dir(self, rel_dir: str) -> list[tuple[str, bool, int]]:
        folder = self._p(rel_dir)
        if not folder.is_dir():
            return []
        return sorted((p.name, p.is_dir(), 0 if p.is_dir() else p.stat().st_size) for p in folder.iterdir())

    def delete(self, rel_path: str) -> None:
        p = self._p(rel_path)
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


class HdfsStorage(Storage):
    """Raw zone on HDFS through the ``hdfs`` package's WebHDFS client."""

    def __init__(self, uri: str, webhdfs_url: str, user: str | None, timeout: float = 10):
        from hdfs import InsecureClient

        self.uri = uri.rstrip("/")
        self.base = urllib.parse.urlparse(self.uri).path or "/"
        self.webhdfs_url = webhdfs_url
        self.client = InsecureClient(webhdfs_url, user=user, timeout=timeout)

    def _p(self, rel: str) -> str:
        return posixpath.join(self.base, rel) if rel else self.base

    def check(self) -> None:
        try:
            self.client.makedirs(self.base)
            self.client.status(self.base)
        except Exception as exc:  # requests' and hdfs' errors both mean "not usable"
            raise ConfigError(f"lake root {self.uri} is unreachable through WebHDFS {self.webhdfs_url}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None

    def replace_dir(self, rel_dir: str, files: dict[str, bytes], tmp_tag: str) -> None:
        final = self._p(rel_dir)
        parent, name = posixpath.split(final)
        tmp = posixpath.join(parent, f".{name}.tmp-{tmp_tag}")
        old = posixpath.join(parent, f".{name}.old-{tmp_tag}")
        self.client.delete(tmp, recursive=True)
        self.client.makedirs(tmp)
        for fname, data in files.items():
            self.client.write(posixpath.join(tmp, fname), data=data, overwrite=True)
        if self.client.status(final, strict=False):
            self.client.rename(final, old)
        self.client.rename(tmp, final)
        self.client.delete(old, recursive=True)

    def read_bytes(self, rel_path: str) -> bytes:
        with self.client.read(self._p(rel_path)) as reader:
            return reader.read()

    def exists(self, rel_path: str) -> bool:
        return self.client.status(self._p(rel_path), strict=False) is not None

    def list_dir(self, rel_dir: str) -> list[tuple[str, bool, int]]:
        path = self._p(rel_dir)
        if not self.client.status(path, strict=False):
            return []
        return sorted((n, s["type"] == "DIRECTORY", s["length"]) for n, s in self.client.list(path, status=True))

    def delete(self, rel_path: str) -> None:
        self.client.delete(self._p(rel_path), recursive=True)


def storage_for(settings: Settings) -> Storage:
    uri = settings.lake_uri
    if uri.startswith("hdfs://"):
        if not settings.lake.webhdfs_url:
            raise ConfigError("lake.root is hdfs:// but lake.webhdfs_url is not set (needed for raw uploads)")
        return HdfsStorage(uri, settings.lake.webhdfs_url, settings.lake.hdfs_user, settings.retry.timeout_s)
    return LocalStorage(Path(urllib.parse.urlparse(uri).path))

