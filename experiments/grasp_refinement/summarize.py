"""Pick-and-place with grasps refined on the observed distance (`mpc.refine=grasps`) against the shipped
planning, the same episodes -> summary.md / summary.json.

    .venv/bin/python experiments/grasp_refinement/summarize.py
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import paired  # noqa: E402

if __name__ == "__main__":
    paired.summarize_pickplace(HERE, "refined", "Pick-and-place: grasps refined on the observed distance vs the "
                                                "shipped planning, the same episodes (bf16)")
