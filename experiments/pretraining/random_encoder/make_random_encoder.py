"""Write a randomly initialised copy of an encoder's architecture as a world-model folder.

    python experiments/pretraining/random_encoder/make_random_encoder.py runs/pretrain_xl/final runs/random_encoder/final

The weights are the same fresh initialisation the linear probe's random-init row uses
(`jepa_ac.pretraining.probe.random_init_like`, seed 1234), so the probe and this planning
comparison measure the same encoder.
"""

import argparse

import jepa_ac
from jepa_ac.pretraining.probe import random_init_like

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("encoder", help="a trained encoder folder (its architecture is copied, not its weights)")
parser.add_argument("out", help="where the random-init encoder folder goes")
parser.add_argument("--seed", type=int, default=1234)
args = parser.parse_args()
trained = jepa_ac.load_world_model(args.encoder, load_predictor=False)
print(random_init_like(trained, args.seed).save(args.out))
