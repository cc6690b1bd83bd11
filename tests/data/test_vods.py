import pytest
import torch

from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.vods import MIN_AREA, VodFrames, camera_paths, make_vods, vod_frames


def test_camera_paths_keep_85_percent_and_stay_inside():
    theta = camera_paths(500, 6, torch.Generator().manual_seed(0)).view(500, 6, 2, 3)
    side, centre = theta[..., 0, 0], theta[..., :, 2]
    assert torch.equal(theta[..., 1, 1], side) and (theta[..., 0, 1] == 0).all()
    assert torch.equal(side[:, 0], torch.ones(500)) and (centre[:, 0] == 0).all()
    assert (side**2 >= MIN_AREA - 1e-6).all() and (side <= 1).all()
    assert (centre.abs() <= (1 - side)[..., None] + 1e-6).all()  # the crop is inside
    assert (side[:, 1:] <= side[:, :-1] + 1e-6).all()  # a steady zoom in, no jitter
    assert side[:, -1].min() < 0.93 and side[:, -1].max() > 0.99  # the range is used


def test_frames_of_a_flat_image_are_flat_and_a_blob_barely_moves():
    flat = torch.full((2, 3, 16, 16), 77, dtype=torch.uint8)
    assert (vod_frames(flat, 5, torch.Generator().manual_seed(0)) == 77).all()  # no black edge
    coords = torch.arange(16.0) - 7.5
    blob = (200 * torch.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / 8)).round()
    frames = vod_frames(blob.to(torch.uint8).expand(50, 1, 16, 16), 4, torch.Generator())
    weights = frames.float().squeeze(1)
    mass = weights.sum(dim=(1, 2))
    centroid_y = (weights.sum(dim=2) * coords).sum(dim=1) / mass
    centroid_x = (weights.sum(dim=1) * coords).sum(dim=1) / mass
    # A centred crop zooms, an off-centre one pans by at most (1 - s) / s of the half-width
    # (8 px): 0.68 px for s = sqrt(0.85).
    assert centroid_y.abs().max() < 0.75 and centroid_x.abs().max() < 0.75


def test_a_subset_of_frames_is_a_plain_dataset():
    data = VodFrames(torch.zeros(6, 1, 4, 4, dtype=torch.uint8), torch.zeros(6), frames=3)
    assert torch.equal(data.vod_ids, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert type(data.subset(torch.tensor([0, 4]))) is ImageTensorDataset
    with pytest.raises(ValueError, match="do not make VODs of 4 frames"):
        VodFrames(torch.zeros(6, 1, 4, 4, dtype=torch.uint8), torch.zeros(6), frames=4)


def test_make_vods_decodes_files_once_and_keeps_each_source_as_frame_0(digit_folder):
    """A disk-backed dataset is read into memory at its own size; frame 0 is each file."""
    from cl_ssl.data.image_folder import load_image_folder

    files = load_image_folder(digit_folder, max_per_class=3)
    vods = make_vods(files, files.image_size, 3, seed=0)
    sources = files.load().images
    assert type(vods) is VodFrames and vods.images.shape == (3 * len(files), *sources.shape[1:])
    assert torch.equal(vods.images[::3], sources)
    assert torch.equal(vods.labels, files.labels.repeat_interleave(3))
    assert not torch.equal(vods.images[1::3], sources)  # the camera moves
