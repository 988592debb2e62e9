"""Pool workers end with the process that started them (a killed `evaluate` or `collect`)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from jepa_ac.cli.worker_pool import worker_pool


def _pid(_: int) -> int:
    return os.getpid()


def _set_env(name: str, value: str) -> None:
    os.environ[name] = value


def _env(name: str) -> str | None:
    return os.environ.get(name)


def test_workers_run_the_initializer_and_the_work():
    with worker_pool(2, initializer=_set_env, initargs=("JEPA_AC_TEST_INIT", "ran")) as pool:
        assert os.getpid() not in set(pool.map(_pid, range(4)))
        assert set(pool.map(_env, ["JEPA_AC_TEST_INIT"] * 4)) == {"ran"}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    pids_file = tmp_path / "pids"
    script = (
        "import os, sys, time\n"
        "from jepa_ac.cli.worker_pool import worker_pool\n"
        "def busy(path):\n"
        "    with open(path, 'a') as f: f.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    pool = worker_pool(2)\n"
        f"    futures = [pool.submit(busy, {str(pids_file)!r}) for _ in range(2)]\n"
        "    time.sleep(60)\n"
    )
    (tmp_path / "parent.py").write_text(script)  # a file: spawned workers import the parent's functions from it
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pids_file.exists() or len(pids_file.read_text().split()) < 2):
        time.sleep(0.2)
    workers = [int(p) for p in pids_file.read_text().split()]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in workers if _alive(p)]
    assert not alive, f"workers {alive} outlived their killed parent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return True
