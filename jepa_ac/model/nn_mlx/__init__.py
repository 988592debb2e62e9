"""MLX implementation of the V-JEPA 2 / 2.1 encoders and the V-JEPA 2-AC predictor (inference).

Mirrors `jepa_ac.model.nn_torch` with the same parameter names; only convolution kernels differ in
layout (channels-last), see `jepa_ac.model.nn_mlx.layers.to_mlx_layout`.
"""
