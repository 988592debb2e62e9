"""Files written whole or not at all: a reader, a crash or a kill mid-write sees the old content or
the new one, never a mix, and a failed write leaves no temp file behind.

    write_atomic("runs/x/results.md", text)             # str or bytes
    write_json_atomic("runs/x/summary.json", value)     # indented JSON
    with atomic_path("runs/x/plot.png") as tmp:         # for writers that want a path
        fig.savefig(tmp, format="png")

The temp file sits beside the target (same file system, so the rename is atomic), is hidden and
named `.tmp-<name>-<pid>-<random>` (the dataset writer's pattern: `data.writer.remove_unfinished`
can tell whose it is), is fsynced before the rename, and the folder after it.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TEMP_PREFIX = ".tmp-"  # hidden temp names: .tmp-<name>-<pid>-<random>


def fsync_path(path: str | Path) -> None:
    """Flush a file's bytes, or a folder's entries (a new file or a rename in it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """A hidden temp name for `name`, unique to this process and call."""
    return f"{TEMP_PREFIX}{name}-{os.getpid()}-{secrets.token_hex(4)}"


@contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """A temp path beside `path` to write; when the block ends without error it is renamed onto
    `path` (fsynced first, and the folder after, unless `fsync=False`); otherwise it is removed.
    The parent folder is created if missing. The file gets the usual permissions (0666 & ~umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temp_name(path.name))
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written to {tmp} (the temp file for {path})")
        if fsync:
            fsync_path(tmp)
        os.replace(tmp, path)
        if fsync:
            fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes, fsync: bool = True) -> Path:
    """Write `data` (text as UTF-8, or bytes) to `path` atomically -> `path`."""
    path = Path(path)
    with atomic_path(path, fsync) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return path


def write_json_atomic(path: str | Path, value: Any, indent: int | None = 2, fsync: bool = True) -> Path:
    """Write `value` as JSON (`indent` as `json.dumps`; a final newline) to `path` atomically -> `path`."""
    return write_atomic(path, json.dumps(value, indent=indent) + "\n", fsync)
