"""ExclusionLoss against a hand computation, and its symmetry and zero cases."""

from __future__ import annotations

import math

import pytest
import torch

from napari_doubledip.core.losses import ExclusionLoss


def test_matches_hand_computation_at_one_scale():
    # T has one X step of 1; R has one X step of 2 at the same place; no Y gradients.
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])[None, None]
    r = torch.tensor([[0.0, 2.0], [0.0, 2.0]])[None, None]
    loss = ExclusionLoss(scales=1, eps=0.0)(t, r)
    # X: |grad T| = [1, 1], ||grad T|| = sqrt(2); |grad R| = [2, 2], ||grad R|| = sqrt(8)
    lam_t = math.sqrt(math.sqrt(8) / math.sqrt(2))  # sqrt(2)
    phi_x = math.tanh(lam_t * 1) * math.tanh(2 / lam_t)
    rms_x = phi_x  # both pixels equal
    # Y: both gradients are zero -> phi = 0 (lam = 1 once eps guards 0/0)
    expected = (rms_x + 0.0) / 2
    loss_eps = ExclusionLoss(scales=1, eps=1e-12)(t, r)
    assert loss_eps.item() == pytest.approx(expected, rel=1e-5)
    assert torch.isfinite(loss_eps)
    del loss


def test_zero_when_one_layer_is_constant():
    torch.manual_seed(0)
    t = torch.rand(2, 3, 32, 32)
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert ExclusionLoss()(t, flat).item() < 1e-3
    assert ExclusionLoss()(flat, t).item() < 1e-3


def test_symmetric_and_larger_for_shared_edges():
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    loss = ExclusionLoss()
    assert loss(a, b).item() == pytest.approx(loss(b, a).item(), rel=1e-6)
    # vertical stripes share every edge with a fainter copy of themselves, and none with
    # horizontal stripes (their gradients point in the other direction)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    vertical = ((xx // 4) % 2)[None, None]
    horizontal = ((yy // 4) % 2)[None, None]
    assert loss(vertical, horizontal).item() < 1e-3
    assert loss(vertical, 0.5 * vertical).item() > 0.1


def test_gradients_flow_and_stay_finite_for_flat_layers():
    t = torch.full((1, 1, 16, 16), 0.5, requires_grad=True)
    r = torch.rand(1, 1, 16, 16, requires_grad=True)
    ExclusionLoss()(t, r).backward()
    assert torch.isfinite(t.grad).all() and torch.isfinite(r.grad).all()


def test_scales_must_be_positive():
    with pytest.raises(ValueError, match="scales"):
        ExclusionLoss(scales=0)


def test_cross_entropies_match_hand_computation():
    from napari_doubledip.core.losses import labelled_cross_entropy, soft_cross_entropy, sum_of_squares

    mask = torch.tensor([0.8, 0.3, 0.5])
    positive, negative = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert labelled_cross_entropy(mask, positive, negative, 2).item() == pytest.approx(expected, rel=1e-6)
    target, weight = torch.tensor([1.0, 0.25, 0.5]), torch.tensor([1.0, 2.0, 0.0])
    soft = -(math.log(0.8) + 2 * (0.25 * math.log(0.3) + 0.75 * math.log(0.7))) / 3
    assert soft_cross_entropy(mask, target, weight, 3).item() == pytest.approx(soft, rel=1e-6)
    # a saturated mask is clamped: finite, not inf
    assert math.isfinite(labelled_cross_entropy(torch.tensor([0.0]), torch.ones(1), torch.zeros(1), 1).item())
    assert sum_of_squares(mask, target, weight).item() == pytest.approx(0.2**2 + 2 * 0.05**2, rel=1e-5)
