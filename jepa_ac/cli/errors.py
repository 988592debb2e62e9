"""The one error boundary of every `python -m jepa_ac.<command>`: the package's errors (bad input,
files, checkpoints, non-finite numbers, safety stops) become one line on stderr and a non-zero
exit, never a traceback. A bug (any other exception) still shows its traceback, and so does
everything with `JEPA_AC_TRACEBACK=1`.

    if __name__ == "__main__":
        run_cli(main)
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

EXIT_ERROR = 2  # as argparse's usage errors
EXIT_INTERRUPTED = 130


def package_errors() -> tuple[type[BaseException], ...]:
    """Exception types that carry a message meant for the user (imported lazily: light CLIs stay light)."""
    errors: list[type[BaseException]] = [ValueError, OSError, ImportError, MemoryError, KeyError]
    for module, name in (("jepa_ac.robot.safety", "SafetyStop"), ("jepa_ac.serving.client", "PlannerError")):
        mod = sys.modules.get(module)  # only if the command imported it: then it can have raised it
        if mod is not None and hasattr(mod, name):
            errors.append(getattr(mod, name))
    return tuple(errors)


def run_cli(main: Callable[[], Any]) -> None:
    """Call `main()`; exit with its int return (0 otherwise), or with a one-line error."""
    try:
        result = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as err:  # noqa: BLE001 - sorted below: package errors become one line
        if os.environ.get("JEPA_AC_TRACEBACK") or not isinstance(err, package_errors()):
            raise
        message = str(err).strip() or type(err).__name__
        if isinstance(err, KeyError):  # str(KeyError) is the quoted key alone
            message = f"missing key {message}"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)
