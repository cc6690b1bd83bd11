"""The all-classes protocol: one bank/probe over every experience, scored per split and union."""

import pytest
import torch

from cl_ssl.config import EvalConfig
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.evaluation.features import FeatureSet
from cl_ssl.evaluation.metrics import global_classes, representation_scores
from cl_ssl.streams import ExperienceData


def clustered(labels: list[int], dim: int = 8, noise: float = 0.05, seed: int = 0) -> FeatureSet:
    """One tight cluster per label around a one-hot centre."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.tensor(labels)
    x = torch.nn.functional.one_hot(y, dim).float() + noise * torch.randn(
        len(labels), dim, generator=generator
    )
    return FeatureSet(x, y)


def test_union_accuracy_weights_splits_by_size_and_per_split_rows_match():
    train = clustered([0, 0, 1, 1, 2, 2, 3, 3] * 5)
    # Split 0: classes 0/1, all correct; split 1: 3 images of class 2 whose features sit on
    # class 3's cluster (wrong) and one right.
    tests = [clustered([0, 1, 0, 1], seed=1), clustered([3, 3, 3, 2], seed=2)]
    tests[1].labels[:3] = 2
    config = EvalConfig(knn_k=(5,), kmeans=False)
    scores = representation_scores(train, tests, config)
    assert len(scores) == 3
    assert scores[0]["kNN5"] == 1.0 and scores[1]["kNN5"] == 0.25
    assert scores[2]["kNN5"] == pytest.approx(5 / 8)  # not (1.0 + 0.25) / 2
    assert scores[0]["Linear"] == 1.0 and scores[2]["Linear"] == pytest.approx(5 / 8)


def test_kmeans_runs_once_on_the_union():
    train = clustered([0, 1, 2, 3] * 5)
    tests = [clustered([0, 1] * 5, seed=1), clustered([2, 3] * 5, seed=2)]
    scores = representation_scores(train, tests, EvalConfig(knn_k=(1,)))
    assert scores[2]["NMI"] == pytest.approx(1.0) and scores[0]["NMI"] == pytest.approx(1.0)


def test_labels_are_unique_per_source_dataset():
    def data(labels):
        images = torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8)
        return ImageTensorDataset(images, torch.tensor(labels))

    experiences = [
        ExperienceData("a", data([0, 1, 3]), data([0, 3]), domain="cifar10"),
        ExperienceData("b", data([0, 3]), data([3]), domain="fashion-mnist"),
    ]
    classes = global_classes(experiences)
    assert len(classes) == 5  # cifar10 {0, 1, 3} and fashion-mnist {0, 3}
    assert classes[("cifar10", 3)] != classes[("fashion-mnist", 3)]


def test_unlabeled_splits_get_no_scores():
    train = FeatureSet(torch.randn(6, 4), torch.full((6,), -1))
    scores = representation_scores(train, [clustered([0, 1])], EvalConfig())
    assert scores == [{}, {}]


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
def test_the_probe_backend_picks_the_solver(backend, monkeypatch):
    import cl_ssl.evaluation.builtin_metrics as builtin

    used = []
    for name in ("fit_linear_probe", "fit_torch_probe"):
        fit = getattr(builtin, name)
        spy = lambda *a, fit=fit, name=name: used.append(name) or fit(*a)  # noqa: E731
        monkeypatch.setattr(builtin, name, spy)
    train = clustered([0, 0, 1, 1, 2, 2, 3, 3] * 5)
    tests = [clustered([0, 1, 0, 1], seed=1), clustered([3, 3, 3, 2], seed=2)]
    tests[1].labels[:3] = 2
    scores = representation_scores(train, tests, EvalConfig(knn_k=(), probe_backend=backend))
    assert used == [f"fit_{'linear' if backend == 'sklearn' else 'torch'}_probe"]
    assert scores[0]["Linear"] == 1.0 and scores[2]["Linear"] == pytest.approx(5 / 8)
