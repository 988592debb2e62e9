"""Worker processes that end with the command that started them.

`ProcessPoolExecutor` workers outlive a parent that is killed (SIGTERM, SIGKILL, a closed terminal):
they play or collect the episodes already handed to them, holding the CPU, with nobody to read the
results. `worker_pool` makes each worker watch its parent and exit as soon as it is gone.

    with worker_pool(2, initializer=_init_worker, initargs=(...)) as pool:
        futures = [pool.submit(work, i) for i in todo]
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable

PARENT_POLL_S = 1.0


def worker_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A spawn-context pool of `workers` processes that exit when this process is gone."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                               initargs=(os.getpid(), initializer, initargs))


def _start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    threading.Thread(target=_exit_without_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _exit_without_parent(parent: int, poll_s: float = PARENT_POLL_S) -> None:
    while os.getppid() == parent:  # an orphan is re-parented (to init or a subreaper)
        time.sleep(poll_s)
    os._exit(1)  # no cleanup is owed to a parent that is gone
