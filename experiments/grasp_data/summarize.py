"""Pick-and-place with the predictors trained with the grasp data against the shipped model, the same
episodes -> summary.md / summary.json (in the run folder given, default this one).

    .venv/bin/python experiments/grasp_data/summarize.py [experiments/grasp_data/control]
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import paired  # noqa: E402

if __name__ == "__main__":
    folder = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE
    name = "retrained" if folder.name == "control" else "with grasp data"
    paired.summarize_pickplace(folder, name, f"Pick-and-place: predictors {name} vs the shipped ones, the same "
                                             "episodes (bf16)")
