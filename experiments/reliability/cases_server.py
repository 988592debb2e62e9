"""Server cases: abusive clients against the planning server (`server_attacks.py`, one attack per
case, each in a fresh process on loopback). An attack exits 0 when the server refused the abuse
quickly with a clear error and still served a good client, so every case but the CLI flag checks
expects "ok"."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import REPO, Case

ATTACKS = Path(__file__).resolve().parent / "server_attacks.py"
NAMES = ("many_tiny_maps", "million_nils", "deep_nesting", "huge_declared_lengths", "odd_msgpack", "half_frame_stall",
         "fragmented_stall", "slow_drip", "one_address_crowd", "bare_tcp_flood", "idle_connection", "never_reads",
         "bad_request_flood", "oversize_frame_header", "protocol_mismatch", "nan_action_policy", "nan_weights_model",
         "openpi_arrays", "cli_under_attack")


def reported(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
    """An attack that exits 0 prints what the server did; nothing printed is suspicious."""
    return None if proc.stdout.strip() else "the attack printed no summary"


CASES = [Case(name=f"server_{name}", category="server", argv=["{python}", str(ATTACKS), name], expect="ok",
              verify=reported, timeout=120.0) for name in NAMES]

DEFAULT_MODEL = str(REPO / "jepa_ac/assets/default_model")
CASES += [
    Case(name=f"server_cli_{name}", category="server", expect="error", timeout=60.0,
         argv=["{python}", "-m", "jepa_ac.serve", "--checkpoint", DEFAULT_MODEL, flag, value])
    for name, flag, value in (("zero_per_address", "--max-connections-per-address", "0"),
                              ("negative_message_timeout", "--message-timeout", "-1"),
                              ("nan_message_timeout", "--message-timeout", "nan"))
]
