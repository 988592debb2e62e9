"""`jepa_ac.files`: a file is written whole or not at all, with no temp file left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jepa_ac.data.writer import remove_unfinished
from jepa_ac.files import TEMP_PREFIX, atomic_path, temp_name, write_atomic, write_json_atomic


def test_text_bytes_and_json_are_written_whole(tmp_path):
    assert write_atomic(tmp_path / "a" / "b.md", "héllo\n") == tmp_path / "a" / "b.md"  # folder made
    assert (tmp_path / "a" / "b.md").read_text(encoding="utf-8") == "héllo\n"
    write_atomic(tmp_path / "c.bin", b"\x00\xff")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\xff"
    write_json_atomic(tmp_path / "d.json", {"x": [1, 2]})
    assert (tmp_path / "d.json").read_text() == '{\n  "x": [\n    1,\n    2\n  ]\n}\n'
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.md", "c.bin", "d.json"]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "results.json"
    write_atomic(target, "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("disk full")
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(target):
            pass
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_the_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "x.txt", "x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_killed_writers_temp_file_is_recognised_and_removed(tmp_path):
    name = temp_name("info.json")
    assert name.startswith(f"{TEMP_PREFIX}info.json-{os.getpid()}-")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / name.replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-")  # as a killed writer leaves it
    left.write_text("{")
    assert remove_unfinished(tmp_path) == [left.name]
    assert list(tmp_path.iterdir()) == []


def test_importing_it_does_not_load_torch():  # commands write files before they pick torch's threads
    code = "import sys, jepa_ac.files; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
