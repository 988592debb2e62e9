"""The networks and what they consume: configs, the 7-D pose layout, image preprocessing,
and the encoder/predictor in torch (`nn_torch`) and MLX (`nn_mlx`)."""
