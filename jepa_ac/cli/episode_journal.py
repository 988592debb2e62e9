"""The episodes of one evaluation run as they finish, so that an interrupted run loses none and a
finished one can be extended (`python -m jepa_ac.evaluate --resume`).

While a run goes, `<task>_<policy>.partial.jsonl` beside its episodes file holds one line with the
run's settings, then one line per finished episode (flushed and synced as it lands). The finished
episodes file (`<task>_<policy>.json`) records the same settings. A resumed run takes the episodes
of whichever file was written with exactly its settings and plays only the others: episode i's
scene comes from (seed, i), so the joined run is the run that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from jepa_ac.files import write_atomic


def settings_fingerprint(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` as JSON reads it back (tuples become lists), so a fresh and a loaded one compare equal."""
    return json.loads(json.dumps(settings, sort_keys=True))


def checkpoint_stamp(path: Path | str) -> dict[str, str]:
    """{file: fingerprint} of a checkpoint file or of every file under a checkpoint folder, so that a
    checkpoint retrained in place no longer matches what an interrupted run recorded: the sha256 of
    files up to HASH_LIMIT bytes (a copy with the same bytes matches), size and mtime of larger ones."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return {(p.name if p == path else str(p.relative_to(path))): _fingerprint(p) for p in files}


HASH_LIMIT = 256 * 2**20


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    if stat.st_size > HASH_LIMIT:
        return f"{stat.st_size} bytes, mtime {stat.st_mtime_ns}"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two settings dicts differ (a key only one of them has counts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if (key in a) != (key in b):  # a setting one run did not have yet (even at its default)
                out.append(f"{prefix}{key}")
            else:
                out += differing_keys(a[key], b[key], f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".") or "(all)"]


class EpisodeJournal:
    """The partial-run file of one (env, policy) run. `recorded()` returns the episodes an earlier
    run with the same settings finished; `start(kept)` opens a fresh journal holding them; `add(record)`
    appends one episode durably; `finish()` removes the journal once the episodes file is written."""

    def __init__(self, episodes_path: Path, settings: dict[str, Any]) -> None:
        self.episodes_path = Path(episodes_path)
        self.path = self.episodes_path.with_name(self.episodes_path.stem + ".partial.jsonl")
        self.settings = settings_fingerprint(settings)
        self._handle: Any = None

    def recorded(self) -> dict[int, dict[str, Any]]:
        """{index: record} from the journal of an interrupted run, else from the finished episodes file,
        whichever was written with these settings; {} when neither exists. A file written with other
        settings is an error naming the settings that differ (joining them would mix two experiments)."""
        mismatches = []
        for source, settings, records in self._sources():
            if settings == self.settings:
                return {int(r["index"]): r for r in records}
            changed = differing_keys(settings, self.settings) if settings is not None else ["(not recorded)"]
            mismatches.append(f"{source} (settings that differ: {', '.join(changed[:8])})")
        if mismatches:
            raise SystemExit(f"error: --resume found episodes written with other settings: {'; '.join(mismatches)}. "
                             "Give the same settings as that run, another --out, or run without --resume "
                             "(which starts over)")
        return {}

    def _sources(self) -> Iterable[tuple[Path, Any, list[dict[str, Any]]]]:
        if self.path.is_file():
            lines = self.path.read_text().splitlines()
            head = _json_or_none(lines[0]) if lines else None
            records = [r for r in map(_json_or_none, lines[1:]) if isinstance(r, dict) and "index" in r]
            # a line cut short by a kill mid-write is not a record: that episode is simply played again
            yield self.path, (head or {}).get("settings"), records
        if self.episodes_path.is_file():
            saved = json.loads(self.episodes_path.read_text())
            yield self.episodes_path, saved.get("settings"), saved.get("episodes", [])

    def start(self, kept: Iterable[dict[str, Any]] = ()) -> None:
        """A fresh journal (replacing any earlier one) holding the settings and `kept` records."""
        lines = [json.dumps({"settings": self.settings}), *(json.dumps(r) for r in kept)]
        write_atomic(self.path, "".join(line + "\n" for line in lines))
        self._handle = open(self.path, "a")

    def add(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None
