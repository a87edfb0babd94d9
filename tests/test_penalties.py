"""R1 penalty (Mescheder et al. 2018) against closed forms and an autograd reference."""

import json

import pytest
import torch
from torch import nn

from ganarena.errors import ConfigError
from ganarena.gan.penalties import r1_penalty
from ganarena.models import DCGANDiscriminator, MLPDiscriminator


class Quadratic(nn.Module):
    """D(x) = sum(w * x^2) per sample: grad_x D = 2 w x."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape))

    def forward(self, x):
        return (self.w * x**2).flatten(1).sum(1)


def test_r1_closed_form_quadratic():
    torch.manual_seed(0)
    d = Quadratic((1, 4, 4))
    x = torch.randn(5, 1, 4, 4)
    r1 = r1_penalty(d, x)
    w = d.w.detach()
    expected = ((2 * w * x) ** 2).flatten(1).sum(1).mean()
    assert r1.item() == pytest.approx(expected.item(), rel=1e-6)
    # create_graph: the penalty trains D; d/dw mean_b sum (2 w x)^2 = mean_b 8 w x^2
    r1.backward()
    assert torch.allclose(d.w.grad, (8 * w * x**2).mean(0), rtol=1e-5, atol=1e-6)
    assert not x.requires_grad  # the caller's batch is left alone


def test_r1_linear_discriminator_is_squared_weight_norm():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    r1 = r1_penalty(lambda t: d(t).view(-1), torch.randn(7, 3, 2, 2))
    assert r1.item() == pytest.approx(d[1].weight.pow(2).sum().item(), rel=1e-6)


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("cls", [MLPDiscriminator, DCGANDiscriminator])
def test_r1_matches_per_sample_autograd(cls, conditional):
    torch.manual_seed(0)
    kwargs = {"num_classes": 10} if conditional else {}
    if cls is DCGANDiscriminator:
        kwargs["width"] = 8  # small and fast; the algebra is the same
    d = cls(image_size=28, norm="layer", **kwargs)
    x = torch.randn(4, 1, 28, 28)
    y = torch.tensor([1, 5, 5, 9]) if conditional else None
    r1 = r1_penalty(d, x, y)
    # reference: one sample at a time (a per-sample D has no cross-sample terms)
    norms = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        out = d(xi) if y is None else d(xi, y[i : i + 1])
        (g,) = torch.autograd.grad(out.sum(), xi)
        norms.append(g.pow(2).sum())
    assert r1.item() == pytest.approx(torch.stack(norms).mean().item(), rel=1e-5)
    r1.backward()
    assert all(p.grad is not None for n, p in d.named_parameters() if n != "net.5.bias")


def test_r1_zero_for_constant_discriminator():
    bias = nn.Parameter(torch.tensor(0.3))
    r1 = r1_penalty(lambda t: t.flatten(1).sum(1) * 0 + bias, torch.randn(3, 1, 4, 4))
    assert r1.item() == 0.0


# -- plug-in regularisers -------------------------------------------------------------------------
def test_r2_is_r1_on_the_generated_samples_with_gamma_over_two():
    from ganarena.gan.penalties import R2, DBatch

    w = torch.tensor([1.0, -2.0, 0.5])
    real, fake = torch.randn(4, 3), torch.randn(5, 3)
    d = lambda x: (x * w).sum(1) + (x**2).sum(1)  # noqa: E731 - grad = w + 2x
    r2 = R2(gamma=10.0, interval=4)
    assert (r2.weight, r2.interval, r2.d_norm, r2.per_sample) == (5.0, 4, "none", True)
    expected = (w + 2 * fake).pow(2).sum(1).mean()
    assert r2(DBatch(d, real, fake, None)).item() == pytest.approx(expected.item(), rel=1e-6)


def test_regularizer_r2_trains_logs_its_term_and_is_recorded(tmp_path):
    from ganarena.train import train
    from tests.conftest import compose_train

    run = tmp_path / "run"
    cfg = compose_train(
        run, ["model=mlp", "regularizer=[r2]", "regularizer.r2.gamma=4", "trainer.max_steps=3",
              "eval=none"],
    )  # fmt: skip
    assert cfg.model.d_norm == "auto" or cfg.model.d_norm
    train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["config"]["regularizer"] == "r2"
    from tests.test_train import events

    values = [e.value for e in events(run).Scalars("train/r2")]
    assert values and all(v > 0 for v in values)


def test_a_per_sample_plug_in_is_refused_with_batch_norm_in_d(tmp_path):
    from ganarena.run.config import validate_train
    from tests.conftest import compose_train

    cfg = compose_train(tmp_path, ["model=dcgan", "regularizer=[r2]", "model.d_norm=batch"])
    with pytest.raises(ConfigError, match=r"regularizer.r2 \(R2\).*per-sample.*~regularizer.r2"):
        validate_train(cfg)
    with pytest.raises(ConfigError, match="Penalty subclass"):
        validate_train(
            compose_train(tmp_path, ["+regularizer.bad._target_=collections.OrderedDict"])
        )


# -- LeCam (Tseng et al. 2021) ------------------------------------------------------------------
def lecam_batch(real_logits, fake_logits):
    from ganarena.gan.penalties import DBatch

    x = torch.zeros(len(real_logits), 1)
    return DBatch(lambda t: t.sum(1), x, x, None, real_logits, fake_logits)


def test_lecam_closed_form_with_ema_anchors_updated_first():
    """a_R, a_F start at 0 and move by (1 - decay) toward this batch's means before the term:
    decay 0.5, real logits [1, 3] (mean 2), fake [-1, 0] (mean -0.5) -> a_R 1, a_F -0.25; the
    term is mean((r + 0.25)^2) + mean((1 - f)^2); one-sided keeps only r > a_F and f < a_R."""
    from ganarena.gan.penalties import LeCam

    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    lecam = LeCam(weight=0.3, decay=0.5)
    value = lecam(lecam_batch(real, fake)).item()
    assert (lecam.alpha_real.item(), lecam.alpha_fake.item()) == (1.0, -0.25)
    assert value == pytest.approx((1.25**2 + 3.25**2) / 2 + (2.0**2 + 1.0**2) / 2)
    # second batch: anchors 1 -> 1.5 (mean 2), -0.25 -> -0.375 (mean -0.5)
    second = lecam(lecam_batch(real, fake)).item()
    assert (lecam.alpha_real.item(), lecam.alpha_fake.item()) == (1.5, -0.375)
    assert second == pytest.approx((1.375**2 + 3.375**2) / 2 + (2.5**2 + 1.5**2) / 2)
    one_sided = LeCam(weight=0.3, decay=0.5, one_sided=True)
    # real [-1, 3], fake [2, 0], both mean 1: a_R = a_F = 0.5; relu(r - 0.5) = 0, 2.5 and
    # relu(0.5 - f) = 0, 0.5 (the plain squares would add 1.5^2 to each side)
    lop = one_sided(lecam_batch(torch.tensor([-1.0, 3.0]), torch.tensor([2.0, 0.0]))).item()
    assert lop == pytest.approx(2.5**2 / 2 + 0.5**2 / 2)
    assert (lecam.per_sample, lecam.double_backward, lecam.weight) == (False, False, 0.3)


def test_lecam_recomputes_the_logits_in_a_lazy_phase_and_keeps_its_anchors_in_state():
    from ganarena.gan.penalties import DBatch, LeCam

    d = lambda x: 2 * x.sum(1)  # noqa: E731
    real, fake = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [-1.0]])
    lecam = LeCam(weight=1.0, interval=4, decay=0.0)  # decay 0: the anchors are this batch's means
    value = lecam(DBatch(d, real, fake, None)).item()  # no logits given: D is called on both
    # D(real) = [2, 4] (a_R 3), D(fake) = [0, -2] (a_F -1): mean((r + 1)^2) + mean((3 - f)^2)
    assert value == pytest.approx((9 + 25) / 2 + (9 + 25) / 2)
    state = lecam.state_dict()
    assert set(state) == {"alpha_real", "alpha_fake"} and state["alpha_real"].item() == 3.0
    with pytest.raises(ConfigError, match="decay"):
        LeCam(weight=1.0, decay=1.0)


def test_a_scheduled_r2_weight_is_half_its_gamma_and_needs_a_start():
    from ganarena.gan.penalties import R2

    r2 = R2(gamma=0.05, gamma_end=0.005)
    assert (r2.weight, r2.weight_end) == (0.025, 0.0025)
    assert R2(gamma=1.0).weight_end is None
    with pytest.raises(ConfigError, match="start value"):
        R2(gamma=0.0, gamma_end=0.1)
    with pytest.raises(ConfigError, match="weight_end"):
        R2(gamma=1.0, gamma_end=-1.0)
