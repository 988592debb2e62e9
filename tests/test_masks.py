import numpy as np
import pytest

from jepa_ac.pretraining.masks import LONG_RANGE, SHORT_RANGE, BlockMaskSpec, sample_batch_masks, sample_target_mask

GRID = (8, 16, 16)  # 16 frames / tubelet 2, 256 px / patch 16


def test_masking_ratios_match_vjepa():
    rng = np.random.default_rng(0)
    long = np.mean([sample_target_mask(LONG_RANGE, GRID, rng).mean() for _ in range(200)])
    short = np.mean([sample_target_mask(SHORT_RANGE, GRID, rng).mean() for _ in range(200)])
    assert 0.8 <= long <= 0.92  # measured 0.84 on a 16x16 grid (V-JEPA: "about 90%")
    assert 0.55 <= short <= 0.75  # 8 overlapping blocks of 15%: measured 0.62


def test_blocks_span_full_temporal_extent():
    rng = np.random.default_rng(1)
    for spec in (SHORT_RANGE, LONG_RANGE):
        mask = sample_target_mask(spec, GRID, rng)
        assert (mask == mask[:1]).all()  # identical on every frame


def test_context_and_target_are_disjoint_and_deterministic():
    ctx, tgt = sample_batch_masks(LONG_RANGE, GRID, 4, np.random.default_rng(2))
    assert ctx.shape[0] == tgt.shape[0] == 4
    for c, t in zip(ctx, tgt):
        assert not set(c) & set(t)
        assert (np.diff(c) > 0).all() and (np.diff(t) > 0).all()
    again = sample_batch_masks(LONG_RANGE, GRID, 4, np.random.default_rng(2))
    np.testing.assert_array_equal(ctx, again[0])
    np.testing.assert_array_equal(tgt, again[1])


def test_spec_validation():
    with pytest.raises(ValueError, match="spatial_scale"):
        BlockMaskSpec(num_blocks=2, spatial_scale=1.5)
