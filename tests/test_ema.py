import pytest
import torch

from jepa_ac.model.config import EncoderConfig
from jepa_ac.model.nn_torch.encoder import VisionTransformer
from jepa_ac.pretraining.ema import ema_momentum, ema_update, make_target_encoder, weight_decay_at

TINY = EncoderConfig(img_size=32, num_frames=4, embed_dim=48, depth=1, num_heads=2)


def test_ema_update_moves_target_towards_context():
    context = VisionTransformer(TINY)
    target = make_target_encoder(context)
    with torch.no_grad():
        for p in context.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    ema_update(target, context, momentum=0.9)
    for b, t, c in zip(before, target.parameters(), context.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * c)


def test_target_encoder_gets_no_gradient():
    context = VisionTransformer(TINY)
    target = make_target_encoder(context)
    clip = torch.randn(2, 3, 4, 32, 32)
    loss = (context(clip) - target(clip)).abs().mean()
    loss.backward()
    assert all(p.grad is None for p in target.parameters())
    assert all(p.grad is not None for p in context.parameters())
    assert not any(p.requires_grad for p in target.parameters())


def test_schedules():
    assert ema_momentum(0, 100) == pytest.approx(0.998) and ema_momentum(100, 100) == 1.0
    assert weight_decay_at(0, 100) == pytest.approx(0.04) and weight_decay_at(100, 100) == pytest.approx(0.4)
