import torch

from cl_ssl.data.digits import load_digits_dataset


def test_digits_are_uint8_images_with_labels():
    data = load_digits_dataset().train
    assert data.images.shape == (1797, 1, 8, 8) and data.images.dtype == torch.uint8
    assert data.images.max() == 255 and set(data.labels.tolist()) == set(range(10))
