"""Small-scale V-JEPA self-supervised pretraining (masking, EMA target encoder, mask predictor)."""
