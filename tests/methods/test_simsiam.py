import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cl_ssl.methods import build_method
from cl_ssl.methods.simsiam import SimSiam, SimSiamOptions
from cl_ssl.models.ssl_model import SSLModel, SSLOutput
from cl_ssl.registry import backbones


def d(p, z):
    return -F.cosine_similarity(p, z, dim=-1).mean()


def test_loss_is_the_papers_symmetric_negative_cosine():
    torch.manual_seed(0)
    z, p = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    loss = SimSiam()(SSLOutput(torch.randn(8, 2, 4), z, p))
    expected = 0.5 * d(p[:, 0], z[:, 1]) + 0.5 * d(p[:, 1], z[:, 0])
    assert torch.allclose(loss, expected, atol=1e-6)


def test_no_gradient_flows_into_the_projections():
    """Stop-gradient: z only serves as the target; the gradient reaches p alone."""
    z = torch.randn(8, 2, 16, requires_grad=True)
    p = torch.randn(8, 2, 16, requires_grad=True)
    SimSiam()(SSLOutput(torch.randn(8, 2, 4), z, p)).backward()
    assert z.grad is None
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_in_a_model_the_projector_learns_through_the_predictor_only():
    """With p = h(z), dL/dz equals the gradient through h with z frozen as the target."""
    torch.manual_seed(0)
    method = SimSiam(SimSiamOptions(hidden_dim=32, output_dim=16, pred_hidden_dim=8))
    predictor = method.make_predictor()
    z = torch.randn(8, 2, 16, requires_grad=True)
    p = predictor(z.flatten(0, 1)).view(8, 2, 16)
    method(SSLOutput(torch.randn(8, 2, 4), z, p)).backward()
    through_method = z.grad.clone()

    z.grad = None
    p = predictor(z.flatten(0, 1)).view(8, 2, 16)
    target = z.detach()
    (0.5 * d(p[:, 0], target[:, 1]) + 0.5 * d(p[:, 1], target[:, 0])).backward()
    assert torch.allclose(through_method, z.grad)


def test_pair_loss_stops_the_gradient_of_the_second_row():
    pair = torch.randn(8, 2, 16, requires_grad=True)
    loss = SimSiam().loss(pair)
    assert torch.allclose(loss, d(pair[:, 0], pair[:, 1]))
    loss.backward()
    assert pair.grad[:, 0].abs().sum() > 0
    assert torch.equal(pair.grad[:, 1], torch.zeros(8, 16))


def predictive(p, z):
    """The reference's byol_loss_func (CaSSLe's predictive distiller): 2 - 2 * mean cosine."""
    return 2 - 2 * F.cosine_similarity(p, z, dim=-1).mean()


def test_distillation_is_cassles_predictive_term_averaged_over_views():
    torch.manual_seed(0)
    predicted = torch.randn(8, 3, 16, requires_grad=True)
    teacher = torch.randn(8, 3, 16, requires_grad=True)
    term = SimSiam().distillation_loss(predicted, teacher)
    per_view = torch.stack([predictive(predicted[:, v], teacher[:, v]) for v in range(3)])
    assert torch.allclose(term, per_view.mean())
    term.backward()
    assert teacher.grad is None
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        SimSiam().distillation_loss(predicted, teacher[:, :2])
    # Analytic: orthogonal predictions cost 2, opposite ones 4.
    e = torch.eye(4).view(2, 2, 4)
    assert SimSiam().distillation_loss(e.roll(1, -1), e).item() == pytest.approx(2)
    assert SimSiam().distillation_loss(-e, e).item() == pytest.approx(4)


def test_ssl_and_distillation_are_the_references_in_value():
    """CaSSLe's SimSiam: simsiam_loss_func(p1, z2) / 2 + simsiam_loss_func(p2, z1) / 2, plus
    the predictive distiller's (byol_loss_func(q1, t1) + byol_loss_func(q2, t2)) / 2 at
    distill_lamb 1: SSL : distillation is 1 : 2 per cosine."""
    torch.manual_seed(1)
    z, p = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    q, t = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    method = SimSiam()
    ours = method(SSLOutput(torch.randn(8, 2, 4), z, p)) + method.distillation_loss(q, t)
    reference = d(p[:, 0], z[:, 1]) / 2 + d(p[:, 1], z[:, 0]) / 2
    reference = reference + (predictive(q[:, 0], t[:, 0]) + predictive(q[:, 1], t[:, 1])) / 2
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)


def test_pnr_negative_is_byol_pnrs_predictive_term():
    torch.manual_seed(2)
    q, negatives = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    expected = 0.5 * (predictive(q[:, 0], negatives[:, 0]) + predictive(q[:, 1], negatives[:, 1]))
    assert SimSiam().pnr_negative(q, negatives).item() == pytest.approx(expected.item() / 2)


def test_heads_follow_the_paper():
    method = build_method("simsiam", {"simsiam": {"output-dim": "24"}})
    head = method.make_head(16)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (16, 2048),
        (2048, 2048),
        (2048, 24),
    ]
    norms = [m for m in head.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 3 and not norms[-1].affine  # BN on the output fc, no affine
    predictor = method.make_predictor()
    linears = [m for m in predictor.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(24, 512), (512, 24)]


def test_model_gives_predictions_and_a_missing_predictor_is_an_error():
    method = SimSiam(SimSiamOptions(hidden_dim=32, output_dim=16, pred_hidden_dim=8))
    backbone = backbones.get("small_resnet")(8)
    model = SSLModel(backbone, method.make_head(backbone.feature_dim), method.make_predictor())
    output = model(torch.randn(4, 2, 3, 8, 8))
    assert output.predictions.shape == (4, 2, 16)
    assert torch.isfinite(method(output))
    with pytest.raises(ValueError, match="predictor"):
        method(output._replace(predictions=None))


def test_augmentations_follow_the_paper():
    config = SimSiam().augment_config(32)
    assert config.jitter() == (0.4, 0.4, 0.4, 0.1)
    assert config.min_scale == 0.2
