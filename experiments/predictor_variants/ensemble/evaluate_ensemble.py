"""`python -m jepa_ac.evaluate` with a mean-energy ensemble of AC predictors on one encoder.

    ENSEMBLE=runs/v5_export .venv/bin/python experiments/predictor_variants/ensemble/evaluate_ensemble.py \
        --env reach --episodes 20 --threads 1 --out experiments/predictor_variants/ensemble/evaluate/reach

The model given to evaluate (`--checkpoint`, default the shipped one) is the first member; the
comma-separated checkpoint folders in $ENSEMBLE are the others. CEM's cost is the mean of the
members' L1 energies; everything else (encoding, the imagined next latent, hold) is the first
member's. An experiment, not a package feature: every member adds a predictor pass per step.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import jepa_ac
import jepa_ac.evaluate as evaluate


class MeanEnergyEnsemble:
    """A WorldModel stand-in whose `rollout_energy` averages over members sharing one encoder."""

    def __init__(self, members: list[Any]) -> None:
        hashes = {m.encoder_hash() for m in members}
        if len(hashes) != 1:
            raise SystemExit(f"error: ensemble members must share one encoder, got {len(hashes)} encoder hashes")
        self.members = members

    def __getattr__(self, name: str) -> Any:
        return getattr(self.members[0], name)

    def rollout_energy(self, z_context: Any, state: Any, actions: Any, z_goal: Any, **energy_options: Any) -> Any:
        energies = [m.rollout_energy(z_context, state, actions, z_goal, **energy_options)
                    for m in self.members]  # each [S]
        return sum(energies) / len(energies)


def main(argv: list[str]) -> None:
    others = [p for p in os.environ.get("ENSEMBLE", "").split(",") if p]
    if not others:
        raise SystemExit("error: set ENSEMBLE to the other members' checkpoint folders (comma-separated)")
    load_first = evaluate.load_model_from_args

    def load_ensemble(args: Any) -> MeanEnergyEnsemble:
        first = load_first(args)
        dtype = getattr(first.backend, "dtype", None)  # every member in the first one's precision
        return MeanEnergyEnsemble([first, *(jepa_ac.load_world_model(p, dtype=dtype) for p in others)])

    evaluate.load_model_from_args = load_ensemble
    evaluate.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
