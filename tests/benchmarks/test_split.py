import pytest
from cl_ssl.benchmarks.split import class_order, split

from cl_ssl.streams import StreamOptions


def test_tasks_hold_disjoint_classes_in_a_seeded_order():
    stream = split(StreamOptions(dataset="digits", tasks=5, split_seed=0))
    classes = [set(e.train.labels.tolist()) for e in stream.experiences]
    assert all(len(c) == 2 for c in classes)
    assert set().union(*classes) == set(range(10))
    assert sum(len(c) for c in classes) == 10  # disjoint
    for experience, task_classes in zip(stream.experiences, classes, strict=True):
        assert set(experience.test.labels.tolist()) <= task_classes
    again = split(StreamOptions(dataset="digits", tasks=5, split_seed=0))
    assert [e.name for e in again.experiences] == [e.name for e in stream.experiences]
    other = split(StreamOptions(dataset="digits", tasks=5, split_seed=1))
    assert [e.name for e in other.experiences] != [e.name for e in stream.experiences]
    assert class_order(list(range(10)), 3) == class_order(list(range(10)), 3)


def test_official_test_split_is_kept_and_never_leaks(fashion_mnist_root):
    stream = split(StreamOptions(dataset="fashion-mnist", tasks=2, max_images=200, image_size=16))
    assert stream.image_size == 16 and stream.experiences[0].train.images.shape[-1] == 16
    for experience in stream.experiences:
        train = {bytes(x.numpy()) for x in experience.train.images}
        assert not any(bytes(x.numpy()) in train for x in experience.test.images)


def test_needs_a_dataset_and_labels(tmp_path):
    with pytest.raises(ValueError, match="split needs --dataset"):
        split(StreamOptions())
    with pytest.raises(ValueError, match="neither a known dataset"):
        split(StreamOptions(dataset=str(tmp_path / "nope")))


@pytest.mark.parametrize("tasks", [10, 5])
def test_cifar100_tasks_keep_its_class_names_and_official_test_split(
    tmp_path, write_cifar100, tasks
):
    classes = list(range(0, 100, 5))  # 20 of the 100 classes: 2 train, 1 test image each
    names, images = write_cifar100(tmp_path, {"train": classes * 2, "test": classes})
    stream = split(StreamOptions(dataset="cifar100", data_root=tmp_path, tasks=tasks))
    groups = [set(e.train.labels.tolist()) for e in stream.experiences]
    assert len(groups) == tasks and all(len(g) == 20 // tasks for g in groups)
    assert sorted(c for g in groups for c in g) == classes  # disjoint, every class once
    test_rows = {bytes(x.tobytes()) for x in images["test"]}
    for experience, group in zip(stream.experiences, groups, strict=True):
        assert set(experience.test.labels.tolist()) == group
        assert len(experience.train) == 2 * len(group) and len(experience.test) == len(group)
        assert all(bytes(x.numpy().tobytes()) in test_rows for x in experience.test.images)
        assert set(experience.name.split("+")) == {names[c] for c in group}
    assert stream.image_size == 32
