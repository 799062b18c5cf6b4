"""The ledger archive: files in a directory or any object store, through fsspec (the only
module that talks to it, at the store's level).

Layout under the archive URL (LEDGER_ARCHIVE_URL), one set per instance per UTC day:

    <instance_id>/<YYYY-MM-DD>.ledger.jsonl.gz   the day's ledger entries, in id order
    <instance_id>/<YYYY-MM-DD>.wins.jsonl.gz     the win records archived with that day
    <instance_id>/<YYYY-MM-DD>.manifest.json     what the two hold (app/services/ledger.py)

A `.jsonl.gz` file is gzip members concatenated (a valid gzip file: `zcat` reads it whole),
one member per chunk of at most CHUNK lines, so a page of the admin export decompresses one
chunk, not the day; the manifest lists each chunk's first id, byte offset, length and line
count. Members are written with mtime 0, so the same entries always make the same bytes.
A ledger line is `{"id": "<entry id>", "fields": {<field>: <value>, ...}}` with the fields in
the stream's order and every value the string Redis holds; a wins line is
`{"win_id": ..., "record": "<the record JSON text as stored>"}`.

Every call here is blocking I/O: callers run them in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import posixpath
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec

CHUNK = 10_000  # lines per gzip member
LEDGER = "ledger.jsonl.gz"
WINS = "wins.jsonl.gz"
MANIFEST = "manifest.json"


class ArchiveError(Exception):
    """The archive cannot be read or written (one line for the operator)."""


def ledger_line(entry_id: str, fields: dict[str, str]) -> bytes:
    return (
        json.dumps({"id": entry_id, "fields": fields}, ensure_ascii=False, separators=(",", ":"))
        + "\n"
    ).encode()


def parse_ledger_line(line: bytes) -> tuple[str, dict[str, str]]:
    data = json.loads(line)
    return str(data["id"]), {str(k): str(v) for k, v in data["fields"].items()}


def win_line(win_id: str, record: str) -> bytes:
    return (
        json.dumps({"win_id": win_id, "record": record}, ensure_ascii=False, separators=(",", ":"))
        + "\n"
    ).encode()


def parse_win_line(line: bytes) -> tuple[str, str]:
    data = json.loads(line)
    return str(data["win_id"]), str(data["record"])


@dataclass
class Written:
    """What a file writer wrote: its sha256, size and chunks (first id, offset, length, count)."""

    sha256: str = ""
    size: int = 0
    chunks: list[dict[str, Any]] = field(default_factory=list)


class FileWriter:
    """Writes one archive file chunk by chunk (each a gzip member)."""

    def __init__(self, fs: Any, path: str) -> None:
        self._file = fs.open(path, "wb")
        self._hash = hashlib.sha256()
        self.written = Written()

    def chunk(self, first_key: str, lines: list[bytes]) -> None:
        data = gzip.compress(b"".join(lines), compresslevel=6, mtime=0)
        self._file.write(data)
        self._hash.update(data)
        self.written.chunks.append(
            {
                "first": first_key,
                "offset": self.written.size,
                "length": len(data),
                "count": len(lines),
            }
        )
        self.written.size += len(data)

    def close(self) -> Written:
        self._file.close()
        self.written.sha256 = self._hash.hexdigest()
        return self.written

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the next run writes the file again anyway
            self._file.close()


class LedgerArchive:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as error:  # e.g. s3:// without s3fs installed
            raise ArchiveError(f"LEDGER_ARCHIVE_URL {url!r} cannot be used: {error}") from None
        self.root = self.root.rstrip("/") or "/"

    # -- names --------------------------------------------------------------------------
    def path(self, instance_id: str, day: str, kind: str) -> str:
        return posixpath.join(self.root, instance_id, f"{day}.{kind}")

    def name(self, instance_id: str, day: str, kind: str) -> str:
        """The file's name relative to the archive root (what a manifest records)."""
        return f"{instance_id}/{day}.{kind}"

    # -- listing ------------------------------------------------------------------------
    def instances(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return sorted(
            posixpath.basename(entry.rstrip("/"))
            for entry in self.fs.ls(self.root, detail=False)
            if self.fs.isdir(entry)
        )

    def days(self, instance_id: str) -> list[str]:
        """The days of the instance that have a manifest, oldest first."""
        folder = posixpath.join(self.root, instance_id)
        if not self.fs.exists(folder):
            return []
        suffix = "." + MANIFEST
        names = (posixpath.basename(p) for p in self.fs.ls(folder, detail=False))
        return sorted(n.removesuffix(suffix) for n in names if n.endswith(suffix))

    # -- files --------------------------------------------------------------------------
    def writer(self, instance_id: str, day: str, kind: str) -> FileWriter:
        folder = posixpath.join(self.root, instance_id)
        self.fs.makedirs(folder, exist_ok=True)
        return FileWriter(self.fs, self.path(instance_id, day, kind))

    def exists(self, instance_id: str, day: str, kind: str) -> bool:
        return bool(self.fs.exists(self.path(instance_id, day, kind)))

    def read_manifest(self, instance_id: str, day: str) -> dict[str, Any] | None:
        """The day's manifest, or None when there is none (or it is not a JSON object: a
        write cut short, which the archive job writes again)."""
        path = self.path(instance_id, day, MANIFEST)
        if not self.fs.exists(path):
            return None
        try:
            data = json.loads(self.fs.cat_file(path))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def write_manifest(self, instance_id: str, day: str, manifest: dict[str, Any]) -> None:
        """Written whole under a temporary name, then moved in place: a reader sees the old
        manifest, none, or the new one."""
        path = self.path(instance_id, day, MANIFEST)
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        self.fs.pipe_file(temporary, text.encode())
        self.fs.mv(temporary, path)

    def file_sha256(self, instance_id: str, day: str, kind: str) -> tuple[str, int]:
        """(sha256, size) of a file, read in 1 MiB blocks."""
        digest, size = hashlib.sha256(), 0
        with self.fs.open(self.path(instance_id, day, kind), "rb") as source:
            while block := source.read(1 << 20):
                digest.update(block)
                size += len(block)
        return digest.hexdigest(), size

    def lines(self, instance_id: str, day: str, kind: str) -> Iterator[bytes]:
        """Every line of a .jsonl.gz file (all its members), streamed."""
        path = self.path(instance_id, day, kind)
        try:
            with self.fs.open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as lines:
                yield from lines
        except (OSError, EOFError, zlib.error) as error:
            raise ArchiveError(f"{path}: {error}") from None

    def chunk_lines(
        self, instance_id: str, day: str, kind: str, chunk: dict[str, Any]
    ) -> list[bytes]:
        """The lines of one chunk (one gzip member), read by its byte range."""
        path = self.path(instance_id, day, kind)
        start = int(chunk["offset"])
        try:
            data = self.fs.cat_file(path, start=start, end=start + int(chunk["length"]))
            return gzip.decompress(data).splitlines(keepends=True)
        except (OSError, EOFError, zlib.error) as error:
            raise ArchiveError(f"{path}: {error}") from None
