"""Cost of one all-classes evaluation, part by part: scikit-learn against torch probe, kNN.

Builds the study's pair stream (cifar10 -> fashion-mnist -> digits at 16 px, 1,500 images
per experience, examples/study/pair.sh; ``--datasets`` picks others) and a small ResNet
(random weights, or ``--backbone``), then times, side by side in one
process (median of ``--repeats``), what :class:`~cl_ssl.evaluation.metrics.RepresentationMetrics`
does after an experience under ``--eval-protocols all --knn-k 20``: feature extraction
(capped training splits + test splits), kNN-20 (one bank chunk and 1,024-row bank chunks),
the linear probe (scikit-learn, torch), k-means and the embedding health. Prints each
part's seconds, its share of the evaluation, the torch/sklearn probe ratio, and both
probes' accuracies.

    OMP_NUM_THREADS=1 python examples/eval_speed.py --device cpu  # or cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cl_ssl.augment import AugmentConfig, BatchedTwoViewAugment
from cl_ssl.config import EvalConfig, StreamOptions
from cl_ssl.evaluation.clustering import kmeans_clusters
from cl_ssl.evaluation.features import FeatureSet, extract_features
from cl_ssl.evaluation.knn import knn_predict
from cl_ssl.evaluation.linear_probe import fit_linear_probe, fit_torch_probe
from cl_ssl.evaluation.metrics import feature_scores, global_classes
from cl_ssl.registry import backbones, streams
from cl_ssl.streams import cap_images


def seconds(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of ``run`` over ``repeats`` calls, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cifar10=../shared/data/cifar10,fashion-mnist,digits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-images", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", type=Path, help="a backbone state_dict (default: random)")
    args = parser.parse_args()
    options = StreamOptions(
        datasets=args.datasets,
        image_size=16,
        max_images=args.max_images,
    )
    stream = streams.get("pair")(options)
    config = EvalConfig(protocols=("all",), knn_k=(20,), max_train_images=2000)
    torch.manual_seed(0)
    device = torch.device(args.device)
    backbone = backbones.get("small_resnet")(stream.image_size).to(device)
    if args.backbone:
        backbone.load_state_dict(torch.load(args.backbone, map_location=device))
    augment = BatchedTwoViewAugment(AugmentConfig.for_image_size(16)).to(device)
    classes = global_classes(stream.experiences)

    def features() -> tuple[FeatureSet, FeatureSet]:
        found: dict[str, list[FeatureSet]] = {"train": [], "test": []}
        for data in stream.experiences:
            for name, split in (("train", cap_images(data.train, 2000, 0)), ("test", data.test)):
                kept = extract_features(backbone, augment, split, 256, device, keep=device)
                labels = torch.tensor([classes[(data.domain, int(y))] for y in kept.labels])
                found[name].append(FeatureSet(kept.features, labels.to(device)))
        return tuple(  # type: ignore[return-value]
            FeatureSet(torch.cat([f.features for f in sets]), torch.cat([f.labels for f in sets]))
            for sets in found.values()
        )

    parts: dict[str, float] = {}
    parts["features"], (train, test) = seconds(features, args.repeats)
    bank, labels, queries = train.features, train.labels, test.features
    cpu_bank, cpu_labels, cpu_queries = bank.cpu(), labels.cpu(), queries.cpu()
    test_labels = test.labels.cpu()
    parts["kNN-20, one bank chunk (CPU)"], _ = seconds(
        lambda: knn_predict(cpu_bank, cpu_labels, cpu_queries, 20), args.repeats
    )
    parts["kNN-20, 1,024-row bank chunks"], _ = seconds(
        lambda: knn_predict(bank, labels, queries, 20, bank_chunk=1024), args.repeats
    )
    parts["probe sklearn (CPU)"], sk = seconds(
        lambda: fit_linear_probe(cpu_bank, cpu_labels), args.repeats
    )
    parts["probe torch"], mine = seconds(lambda: fit_torch_probe(bank, labels), args.repeats)
    k = len(set(test_labels.tolist()))
    parts["k-means (CPU)"], _ = seconds(lambda: kmeans_clusters(queries, k, 0), args.repeats)
    parts["health"], _ = seconds(lambda: feature_scores([test], 0, config), args.repeats)
    predicted = torch.as_tensor(sk.predict(cpu_queries.numpy()))
    accuracy_sk = float((predicted == test_labels).float().mean())
    accuracy = float((mine.predict(queries).cpu() == test_labels).float().mean())

    old = [p for p in parts if "chunks" not in p and "torch" not in p]
    new = [p for p in parts if "one bank" not in p and "sklearn" not in p]
    total_old, total_new = sum(parts[p] for p in old), sum(parts[p] for p in new)
    print(f"bank {len(labels)} x {bank.shape[1]}, test {len(test_labels)}, {k} classes, "
          f"device {device}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print("| part | seconds | share of the sklearn evaluation |\n|---|---|---|")
    for name, value in parts.items():
        print(f"| {name} | {value:.3f} | {value / total_old:.1%} |")
    print(f"evaluation sklearn+kNN on the CPU {total_old:.2f} s, torch probe+chunked kNN on "
          f"{device} {total_new:.2f} s: {total_old / total_new:.2f}x faster")
    print(f"probe torch / sklearn time {parts['probe torch'] / parts['probe sklearn (CPU)']:.2f}; "
          f"test accuracy sklearn {accuracy_sk:.4f}, torch {accuracy:.4f}")


if __name__ == "__main__":
    main()
