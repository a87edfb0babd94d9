"""Losses against hand-computed values; gradient penalty against an independent reference."""

import math

import pytest
import torch
from torch import nn

from ganarena.gan import losses, penalties
from ganarena.gan.losses import LOSSES

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def bce_d(real, fake, real_label=1.0):
    def bce(p, t):
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    return mean(bce(sig(r), real_label) for r in real) + mean(-math.log(1 - sig(f)) for f in fake)


EXPECTED = {
    "minimax": (
        bce_d(REAL.tolist(), FAKE.tolist()),
        mean(math.log(1 - sig(f)) for f in FAKE.tolist()),
    ),
    "nonsaturating": (
        bce_d(REAL.tolist(), FAKE.tolist()),
        mean(-math.log(sig(f)) for f in FAKE.tolist()),
    ),
    # LSGAN a=0, b=1, c=1: 0.5*mean((2-1)^2, (-1-1)^2) + 0.5*mean(0.5^2, 3^2)
    "lsgan": (0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2, 0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2),
    # WGAN: E[D(fake)] - E[D(real)] = -1.25 - 0.5
    "wgan": (-1.25 - 0.5, 1.25),
    "wgan_gp": (-1.75, 1.25),
    # hinge: mean(relu(1-2), relu(1+1)) + mean(relu(1.5), relu(-2)) = 1 + 0.75; G: -E[fake]
    "hinge": (1.0 + 0.75, 1.25),
    # RpGAN, real i against fake i: D softplus(-(2 - 0.5)), softplus(-(-1 + 3)); G the reverse
    "rpgan": (
        mean(math.log(1 + math.exp(-d)) for d in (1.5, 2.0)),
        mean(math.log(1 + math.exp(d)) for d in (1.5, 2.0)),
    ),
    # RaGAN: real mean 0.5, fake mean -1.25; -log sig(r - (-1.25)) and -log(1 - sig(f - 0.5))
    "ragan": (
        mean(-math.log(sig(r + 1.25)) for r in REAL.tolist())
        + mean(-math.log(1 - sig(f - 0.5)) for f in FAKE.tolist()),
        mean(-math.log(sig(f - 0.5)) for f in FAKE.tolist())
        + mean(-math.log(1 - sig(r + 1.25)) for r in REAL.tolist()),
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_values_match_hand_computation(name):
    d_exp, g_exp = EXPECTED[name]
    assert LOSSES[name].d(REAL, FAKE).item() == pytest.approx(d_exp, rel=1e-6, abs=1e-6)
    assert LOSSES[name].g(REAL, FAKE).item() == pytest.approx(g_exp, rel=1e-6, abs=1e-6)


def test_label_smoothing_changes_only_the_real_target():
    smoothed = losses.d_bce(REAL, FAKE, real_label=0.9).item()
    assert smoothed == pytest.approx(bce_d(REAL.tolist(), FAKE.tolist(), 0.9), rel=1e-6)
    assert smoothed != pytest.approx(losses.d_bce(REAL, FAKE).item(), rel=1e-3)


def test_bce_losses_are_stable_for_extreme_logits():
    big = torch.tensor([80.0, -80.0])
    for name in ("minimax", "nonsaturating"):
        assert torch.isfinite(LOSSES[name].d(big, -big))
        assert torch.isfinite(LOSSES[name].g(big, big))
    # -log(sigmoid(-80)) is 80 to float precision: the log-sum-exp form does not saturate.
    assert losses.g_nonsaturating(torch.tensor([-80.0])).item() == pytest.approx(80.0, rel=1e-6)


def test_nonsaturating_has_strong_gradient_where_minimax_saturates():
    fake = torch.tensor([-10.0], requires_grad=True)  # D confidently rejects the fake
    (g_mm,) = torch.autograd.grad(losses.g_minimax(fake), fake)
    fake2 = torch.tensor([-10.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(losses.g_nonsaturating(fake2), fake2)
    assert abs(g_mm.item()) < 1e-4 and abs(g_ns.item()) > 0.99


class Quadratic(nn.Module):
    """D(x) = sum(w * x^2) per sample: grad = 2 w x, so the penalty has a closed form."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (self.w * x**2).flatten(1).sum(1)


def test_gradient_penalty_matches_closed_form():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    d = Quadratic(torch.randn(1, 2, 2))
    torch.manual_seed(123)
    gp = penalties.gradient_penalty(d, real, fake)
    torch.manual_seed(123)
    eps = torch.rand(6, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    grad = 2 * d.w.detach() * x_hat
    expected = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_matches_finite_differences():
    torch.manual_seed(1)
    d = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    real, fake = torch.randn(3, 4).double(), torch.randn(3, 4).double()
    d = d.double()
    torch.manual_seed(5)
    gp = penalties.gradient_penalty(d, real, fake).item()
    torch.manual_seed(5)
    eps = torch.rand(3, 1, dtype=torch.float64)
    x_hat = eps * real + (1 - eps) * fake
    h = 1e-6
    norms = []
    for i in range(3):
        g = []
        for j in range(4):
            e = torch.zeros(4, dtype=torch.float64)
            e[j] = h
            with torch.no_grad():
                g.append((d((x_hat[i] + e)[None]) - d((x_hat[i] - e)[None])).item() / (2 * h))
        norms.append(math.sqrt(sum(v * v for v in g)))
    assert gp == pytest.approx(mean((n - 1) ** 2 for n in norms), rel=1e-6)


def test_gradient_penalty_pushes_gradient_norm_toward_one():
    torch.manual_seed(0)
    d = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1), nn.Flatten(0)
    )
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(5.0)  # start with gradient norms far above 1
    real, fake = torch.randn(64, 16), torch.randn(64, 16) + 2
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    first = penalties.gradient_penalty(d, real, fake).item()
    for _ in range(200):
        opt.zero_grad()
        penalties.gradient_penalty(d, real, fake).backward()
        opt.step()
    last = penalties.gradient_penalty(d, real, fake).item()
    assert first > 10.0
    assert last < 0.05 * first


def test_clip_weights_bounds_every_parameter():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 1))
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(100)
    penalties.clip_weights(d, 0.01)
    values = torch.cat([p.flatten() for p in d.parameters()])
    assert values.abs().max().item() == pytest.approx(0.01)
    assert values.min().item() >= -0.01 and values.max().item() <= 0.01


def test_relativistic_losses_read_both_sides_and_ignore_a_shift_of_d():
    """Only logit differences enter RpGAN and RaGAN: D + c gives the same losses; G's side needs
    the real logits, and the pairing is index by index (RpGAN)."""
    for name in ("rpgan", "ragan"):
        loss = LOSSES[name]
        assert loss.g_uses_real and not loss.prob and loss.decision is None
        shifted = (loss.d(REAL + 7, FAKE + 7).item(), loss.g(REAL + 7, FAKE + 7).item())
        assert shifted == pytest.approx((loss.d(REAL, FAKE).item(), loss.g(REAL, FAKE).item()))
        with pytest.raises(ValueError, match="real batch"):
            loss.g(None, FAKE)
    swapped = LOSSES["rpgan"].d(REAL, FAKE.flip(0)).item()  # pairs (2, -3), (-1, 0.5)
    assert swapped == pytest.approx(mean(math.log(1 + math.exp(-d)) for d in (5.0, -1.5)))


def test_losses_declare_the_logit_that_decides_real_or_fake():
    """What augment=ada reads sign(D(x) - decision) against: 0 for the logistic and hinge losses,
    0.5 for LSGAN's 0-1 coding, none for WGAN's critic."""
    got = {name: loss.decision for name, loss in LOSSES.items()}
    assert got == {
        "minimax": 0.0, "nonsaturating": 0.0, "hinge": 0.0, "lsgan": 0.5,
        "wgan": None, "wgan_gp": None, "rpgan": None, "ragan": None,
    }  # fmt: skip
