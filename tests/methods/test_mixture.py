"""Mixed SSL objectives: the loss is the weighted sum of the components' own losses."""

import pytest
import torch
from lightly.loss import BarlowTwinsLoss, NegativeCosineSimilarity, NTXentLoss

from cl_ssl.methods import build_method
from cl_ssl.methods.distillation import contrastive_distillation
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.registry import backbones

SMALL = {
    "barlow-twins": {"hidden_dim": "32", "output_dim": "24"},
    "simsiam": {"hidden_dim": "16", "output_dim": "16", "pred_hidden_dim": "8"},
    "vicreg": {"hidden_dim": "32", "output_dim": "20"},
}


def mixed(name: str, **weights: str):
    torch.manual_seed(0)
    options = {part: dict(SMALL.get(part, {})) for part in name.split("+")}
    for part, weight in weights.items():
        options[part.replace("_", "-")]["weight"] = weight
    method = build_method(name, options)
    backbone = backbones.get("small_resnet")(8)
    model = SSLModel(backbone, method.make_head(backbone.feature_dim), method.make_predictor())
    return model, method


def test_the_loss_is_the_weighted_sum_of_each_objective_on_its_own_head():
    model, method = mixed("simclr+barlow-twins", barlow_twins="0.25")
    views = torch.randn(16, 2, 3, 8, 8)
    out = model(views)
    assert method.sizes == (128, 24) and out.projections.shape == (16, 2, 152)
    z_simclr, z_barlow = out.projections[..., :128], out.projections[..., 128:]
    expected = NTXentLoss(temperature=0.5)(z_simclr[:, 0], z_simclr[:, 1]) + 0.25 * (
        BarlowTwinsLoss(lambda_param=5e-3)(z_barlow[:, 0], z_barlow[:, 1])
    )
    assert method(out, views).item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_zero_weight_leaves_its_head_untrained():
    model, method = mixed("simclr+barlow-twins", barlow_twins="0")
    views = torch.randn(16, 2, 3, 8, 8)
    method(model(views), views).backward()
    simclr_head, barlow_head = model.head.heads
    assert all(p.grad.abs().sum() > 0 for p in simclr_head.parameters() if p.grad is not None)
    assert all(p.grad is None or not p.grad.any() for p in barlow_head.parameters())


def test_a_predictor_method_gets_its_own_slice_and_prediction():
    model, method = mixed("vicreg+simsiam")
    assert method.prediction_sizes == (0, 16)
    views = torch.randn(16, 2, 3, 8, 8)
    out = model(views)
    assert out.predictions.shape == (16, 2, 16)
    vicreg = method.components[0](out._replace(projections=out.projections[..., :20]))
    z, p = out.projections[..., 20:].detach(), out.predictions
    cosine = NegativeCosineSimilarity()
    simsiam = 0.5 * (cosine(p[:, 0], z[:, 1]) + cosine(p[:, 1], z[:, 0]))
    assert method(out, views).item() == pytest.approx((vicreg + simsiam).item(), rel=1e-6)


def barlow_per_view(p, t):
    """CaSSLe's decorrelative term in Lightly's units: the Barlow loss per view, averaged."""
    loss = BarlowTwinsLoss(lambda_param=5e-3)
    return (loss(p[:, 0], t[:, 0]) + loss(p[:, 1], t[:, 1])) / 2


def test_distillation_mixes_each_methods_own_distillation():
    """SimCLR's slice gets CaSSLe's contrastive term at the distillation temperature, never
    NT-Xent between prediction and teacher; Barlow's its per-view loss; mixed by weight."""
    _, method = mixed("simclr+barlow-twins", simclr="0.5")
    torch.manual_seed(1)
    predicted, teacher = torch.randn(8, 2, 152), torch.randn(8, 2, 152)
    for temperature in (0.2, 0.1):
        expected = 0.5 * contrastive_distillation(
            predicted[..., :128], teacher[..., :128], temperature
        ) + barlow_per_view(predicted[..., 128:], teacher[..., 128:])
        got = method.distillation_loss(predicted, teacher, temperature)
        assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    ntxent = NTXentLoss(temperature=0.5)
    fallback = 0.5 * sum(
        ntxent(predicted[:, v, :128], teacher[:, v, :128]) for v in (0, 1)
    ) / 2 + barlow_per_view(predicted[..., 128:], teacher[..., 128:])
    assert abs(method.distillation_loss(predicted, teacher).item() - fallback.item()) > 1e-3


def test_parts_are_the_components_slices_and_weights():
    _, method = mixed("vicreg+simsiam", simsiam="0.25")
    vicreg, simsiam = method.components
    assert method.parts() == ((vicreg, slice(0, 20), 1.0), (simsiam, slice(20, 36), 0.25))
    assert vicreg.parts() == ((vicreg, slice(None), 1.0),)
    with pytest.raises(RuntimeError, match="make_head"):
        build_method("simclr+vicreg").parts()


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("simclr+byol", {}, "target network of the whole model"),
        ("simclr+simclr", {}, "distinct methods"),
        ("simclr+", {}, "distinct methods"),
        ("simclr+nope", {}, "unknown method"),
        ("simclr+vicreg", {"vicreg": {"weight": "heavy"}}, "vicreg.weight='heavy'"),
        ("simclr+vicreg", {"vicreg": {"weight": "-1"}}, "must be >= 0"),
        ("simclr+vicreg", {"vicreg": {"colour": "1"}}, "unknown option 'colour' for vicreg"),
    ],
)
def test_bad_mixtures_are_one_line_errors(name, options, message):
    with pytest.raises((ValueError, KeyError), match=message) as error:
        build_method(name, options)
    assert "\n" not in str(error.value)


def test_the_views_are_the_first_methods_augmentations():
    first = build_method("barlow-twins+simclr")
    assert first.augment_config(32) == build_method("barlow-twins").augment_config(32)
    assert first.augment_config(32) != build_method("simclr").augment_config(32)
