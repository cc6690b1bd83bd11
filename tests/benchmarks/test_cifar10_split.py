from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions


def test_five_two_class_tasks_with_official_test_split(cifar10_root):
    stream = streams.get("cifar10-split")(StreamOptions(data_root=cifar10_root, max_images=90))
    assert stream.num_experiences == 5 and stream.image_size == 32
    assert stream.experiences[0].name == "airplane+automobile"
    for k, exp in enumerate(stream.experiences):
        assert set(exp.train.labels.tolist()) <= {2 * k, 2 * k + 1}
        assert len(exp.train) == 90 and len(exp.test) == 10
        assert exp.train[0][0].shape == (3, 32, 32)
