"""Convert any checkpoint the package reads into our folder format, ready for MLX (or torch).

    python -m jepa_ac.convert --checkpoint vjepa2-ac-vitg.pt --encoder vit_giant \\
        --predictor vit_ac_giant --out weights/vjepa2-ac-vitg --dtype bfloat16
    python -m jepa_ac.convert --checkpoint hf/vjepa2-vitl-fpc64-256 --out weights/vitl --dtype float16
    python -m jepa_ac.convert --checkpoint vjepa2_1_vitl_dist_vitG_384.pt --encoder vjepa2_1_vit_large_384 \
        --out weights/vjepa2_1_vitl --dtype bfloat16

The source is read and checked strictly; the output folder (`config.json` + `model.safetensors`)
is written atomically. What the files hold, and BF16 without numpy support:
`jepa_ac.world_model.conversion`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jepa_ac.model.config import ENCODER_PRESETS, PREDICTOR_PRESETS
from jepa_ac.world_model.conversion import DTYPES, convert


def _arch_arg(value: str | None, part: str) -> Any:
    """A preset name, a JSON file of upstream constructor arguments, or an inline JSON object.

    A JSON object with an "encoder"/"predictor" entry (e.g. tests/fixtures/vjepa2_ac_tiny.json)
    gives that entry.
    """
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        spec = json.loads(value)
    elif value.endswith(".json"):
        spec = json.loads(Path(value).read_text())
    else:
        return value
    return spec[part] if isinstance(spec.get(part), dict) else spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jepa_ac.convert",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="upstream .pt file, Hugging Face folder or jepa_ac folder")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically if it exists)")
    parser.add_argument("--encoder", help=f"encoder architecture: preset {sorted(ENCODER_PRESETS)}, a .json file "
                                          "or inline JSON of upstream kwargs (required for upstream .pt)")
    parser.add_argument("--predictor", help=f"predictor architecture: preset {sorted(PREDICTOR_PRESETS)}, "
                                            "a .json file or inline JSON")
    parser.add_argument("--encoder-key", default=None,
                        help="upstream .pt key of the encoder (default: 'encoder'; for a V-JEPA 2.1 --encoder the "
                             "first of ema_encoder, target_encoder, encoder)")
    parser.add_argument("--no-predictor", action="store_true", help="convert the encoder only")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="weight dtype on disk. float32/float16 load everywhere; bfloat16 is real BF16 "
                             "(half size) and needs a BF16-aware reader (jepa_ac.world_model.safetensors_io.read_safetensors)")
    args = parser.parse_args(argv)
    try:
        summary = convert(args.checkpoint, args.out, _arch_arg(args.encoder, "encoder"),
                          _arch_arg(args.predictor, "predictor"),
                          args.dtype, args.encoder_key, not args.no_predictor)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
