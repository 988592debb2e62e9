"""Pick-and-place with the wrist view (front+wrist) against the shipped front view alone, the same
episodes -> summary.md / summary.json.

    .venv/bin/python experiments/wrist_view/summarize.py
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import paired  # noqa: E402

if __name__ == "__main__":
    paired.summarize_pickplace(HERE, "front + wrist", "Pick-and-place: front + wrist views vs the front view alone, "
                                                      "the same episodes (bf16)")
