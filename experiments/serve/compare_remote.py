"""Per-episode outcomes through the planning server vs in-process, same seeds and settings.

    python -m jepa_ac.serve --port 8801 --threads 1 &
    python -m jepa_ac.evaluate --env push --episodes 20 --server ws://127.0.0.1:8801 --out runs/remote/push
    python experiments/serve/compare_remote.py runs/remote/push runs/remote/pickplace

compares each run's `episodes/*.json` with the in-process records of the same episodes in
experiments/evaluate/episodes/ (the shipped model's 50 seeded episodes) and writes
remote_vs_in_process.{json,md} beside this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
IN_PROCESS = HERE.parent / "evaluate" / "episodes"
KEYS = ("success", "steps", "status", "final_task_distance", "stop_reason")


def main(folders: list[str]) -> None:
    rows = []
    for folder in folders:
        for path in sorted((Path(folder) / "episodes").glob("*_planner*.json")):
            remote = json.loads(path.read_text())["episodes"]
            local = {e["index"]: e for e in json.loads((IN_PROCESS / path.name).read_text())["episodes"]}
            diffs = []
            for e in remote:
                ref = local[e["index"]]
                differing = [k for k in KEYS if e[k] != ref[k]]
                if e["per_step"]["latent_distance"] != ref["per_step"]["latent_distance"]:
                    differing.append("per-step latent distances")
                if differing:
                    diffs.append({"index": e["index"], "fields": differing})
            rows.append({"run": path.stem, "episodes": len(remote), "identical": len(remote) - len(diffs),
                         "successes_remote": sum(e["success"] for e in remote),
                         "successes_in_process": sum(local[e["index"]]["success"] for e in remote),
                         "differences": diffs})
    (HERE / "remote_vs_in_process.json").write_text(json.dumps({"runs": rows}, indent=1) + "\n")
    lines = ["# Seeded episodes through the planning server vs in-process", "",
             "`python -m jepa_ac.evaluate --server ws://127.0.0.1:PORT --episodes 20` against "
             "`python -m jepa_ac.serve` (shipped model, its planning.json) on loopback, compared episode by "
             "episode with the in-process records in experiments/evaluate/episodes/ (same seeds). Compared: "
             f"{', '.join(KEYS)} and every per-step observed latent distance.", "",
             "| run | episodes | identical | successes (server / in-process) |", "|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['episodes']} | {r['identical']} | {r['successes_remote']} / "
              f"{r['successes_in_process']} |" for r in rows]
    (HERE / "remote_vs_in_process.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
