"""Replay buffers: MinRed's coverage of near-duplicate frames, and what every buffer promises."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

from cl_ssl.kit.buffers import (
    BUFFERS,
    BalancedBuffer,
    MinRedBuffer,
    ReplayBuffer,
    ReservoirBuffer,
    build_buffer,
)

CAPACITY = 12


def video(sources: int, copies: int, dim: int = 16, noise: float = 1e-3):
    """``copies`` consecutive near-duplicate frames of each source; pixel value = source id."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(sources, dim, generator=g)
    features = centres.repeat_interleave(copies, 0)
    features = features + noise * torch.randn(features.shape, generator=g)
    source = torch.arange(sources).repeat_interleave(copies)
    images = source.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()
    return images, features


def feed(buffer: ReplayBuffer, images, features, batch: int) -> None:
    for start in range(0, len(images), batch):
        buffer.add(images[start : start + batch], features[start : start + batch])


def held_sources(buffer: ReplayBuffer) -> list[int]:
    return sorted(buffer.images[:, 0, 0, 0].tolist())


# The acceptance test: a video of K sources, 20 near-identical frames each, into K rows.


@pytest.mark.parametrize("batch", [1, 7, 64, 240])
def test_minred_keeps_one_frame_of_every_source(batch):
    sources = CAPACITY
    images, features = video(sources, copies=20)
    buffer = MinRedBuffer(CAPACITY)
    feed(buffer, images, features, batch)
    assert held_sources(buffer) == list(range(sources))


def test_reservoir_and_fifo_do_not_cover_the_sources():
    images, features = video(CAPACITY, copies=20)
    reservoir, fifo = ReservoirBuffer(CAPACITY, seed=0), build_buffer("fifo", CAPACITY)
    feed(reservoir, images, features, batch=7)
    feed(fifo, images, features, batch=7)
    held = held_sources(reservoir)
    assert len(held) == CAPACITY and len(set(held)) < CAPACITY  # some source twice
    assert set(held_sources(fifo)) == {CAPACITY - 1}  # 20 frames per source > 12 rows


# Shared properties, tested for every registered buffer.


def stream(rows_per_experience: int = 30, experiences: int = 3, dim: int = 8):
    """Batches (images, features, experience) of varied sizes, experiences in order."""
    g = torch.Generator().manual_seed(1)
    n = rows_per_experience * experiences
    images = torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g)
    features = torch.randn(n, dim, generator=g)
    sizes, steps, start = (5, 1, 9, 4, 13), [], 0
    for experience in range(experiences):
        end = start + rows_per_experience
        while start < end:
            stop = min(end, start + sizes[len(steps) % len(sizes)])
            steps.append((images[start:stop], features[start:stop], experience))
            start = stop
    return images, features, steps


def run(buffer: ReplayBuffer, steps, generator: torch.Generator) -> None:
    """Add each batch, then draw rows and hand back fresh features, as training would."""
    for images, features, experience in steps:
        buffer.add(images, features, experience=experience)
        index = buffer.sample(4, generator)
        buffer.update_features(
            index, torch.randn(len(index), features.shape[1], generator=generator)
        )


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("name", sorted(BUFFERS))
def test_rows_are_stream_rows_and_never_exceed_capacity(name):
    images, _, steps = stream()
    buffer = build_buffer(name, CAPACITY, seed=0)
    for batch, features, experience in steps:
        buffer.add(batch, features, experience=experience)
        assert len(buffer) <= CAPACITY
        arrival = buffer.meta[:, 1]
        assert arrival.unique().numel() == len(buffer)  # no row held twice
        assert torch.equal(buffer.images, images[arrival])
        assert torch.equal(buffer.images_at(torch.tensor([0])), images[arrival[:1]])
    assert len(buffer) == CAPACITY  # every experience has at least its share
    assert buffer.seen == len(images)
    assert (buffer.features is not None) == buffer.needs_features


@pytest.mark.parametrize("name", sorted(BUFFERS))
def test_sample_without_repetition_up_to_the_size_and_with_it_beyond(name):
    _, _, steps = stream()
    buffer = build_buffer(name, CAPACITY, seed=0)
    run(buffer, steps, torch.Generator().manual_seed(0))
    assert len(buffer.sample(0, torch.Generator())) == 0
    for n in (5, CAPACITY):
        index = buffer.sample(n, torch.Generator().manual_seed(n))
        assert len(index) == n and index.unique().numel() == n
        assert 0 <= index.min() and index.max() < len(buffer)
    many = buffer.sample(3 * CAPACITY, torch.Generator().manual_seed(0))
    assert len(many) == 3 * CAPACITY and 0 <= many.min() and many.max() < len(buffer)
    again = buffer.sample(3 * CAPACITY, torch.Generator().manual_seed(0))
    assert torch.equal(many, again)


@pytest.mark.parametrize("name", sorted(BUFFERS))
def test_same_seed_same_buffer(name):
    _, _, steps = stream()
    states = []
    for _ in range(2):
        buffer = build_buffer(name, CAPACITY, seed=5)
        run(buffer, steps, torch.Generator().manual_seed(0))
        states.append(buffer.state_dict())
    assert_same_state(*states)


@pytest.mark.parametrize("name", sorted(BUFFERS))
def test_resumed_buffer_continues_like_an_uninterrupted_one(name):
    _, _, steps = stream()
    half = len(steps) // 2
    whole = build_buffer(name, CAPACITY, seed=3)
    run(whole, steps, torch.Generator().manual_seed(0))

    first = build_buffer(name, CAPACITY, seed=3)
    generator = torch.Generator().manual_seed(0)
    run(first, steps[:half], generator)
    state, generator_state = first.state_dict(), generator.get_state()
    # The original goes on: the state must be a copy, and taking it must not disturb it.
    run(first, steps[half:], generator)
    assert_same_state(first.state_dict(), whole.state_dict())

    saved = io.BytesIO()
    torch.save(state, saved)
    saved.seek(0)
    resumed = build_buffer(name, CAPACITY, seed=99)  # the state carries the buffer's generator
    resumed.load_state_dict(torch.load(saved, weights_only=True))
    generator.set_state(generator_state)
    run(resumed, steps[half:], generator)
    assert_same_state(resumed.state_dict(), whole.state_dict())


@pytest.mark.parametrize("name", sorted(BUFFERS))
def test_loading_another_kinds_state_is_a_one_line_error(name):
    other = next(kind for kind in sorted(BUFFERS) if kind != name)
    with pytest.raises(ValueError) as error:
        build_buffer(name, CAPACITY).load_state_dict(build_buffer(other, CAPACITY).state_dict())
    message = str(error.value)
    assert repr(name) in message and repr(other) in message and "\n" not in message
    with pytest.raises(ValueError, match="capacity=12"):
        build_buffer(name, 5).load_state_dict(build_buffer(name, CAPACITY).state_dict())


@pytest.mark.parametrize("name", sorted(BUFFERS))
@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_below_one_is_refused(name, capacity):
    with pytest.raises(ValueError, match="at least 1") as error:
        build_buffer(name, capacity)
    assert "\n" not in str(error.value)


def test_unknown_name_lists_the_buffers():
    with pytest.raises(ValueError) as error:
        build_buffer("minredd", 10)
    message = str(error.value)
    assert all(name in message for name in BUFFERS) and "\n" not in message


@pytest.mark.parametrize("name", sorted(BUFFERS))
def test_sampling_an_empty_buffer_is_refused(name):
    with pytest.raises(ValueError, match="empty"):
        build_buffer(name, CAPACITY).sample(1, torch.Generator())


# Reservoir and balanced.


@pytest.mark.parametrize(
    ("name", "capacity", "experiences", "sizes"),
    [
        ("reservoir", 10, [0] * 7, (3, 7, 1, 3, 7, 7, 12)),  # later rows overwrite earlier ones
        ("reservoir", 2, [0] * 3, (1, 3, 2)),  # short: an off-by-one in j ~ U{0..t} shows
        ("balanced", 10, [0, 0, 1, 1], (8, 12, 5, 15)),  # within a share, and across a shrink
    ],
)
def test_every_row_is_held_with_equal_probability(name, capacity, experiences, sizes):
    rows, seeds = sum(sizes), 1000
    counts = torch.zeros(rows)
    images = torch.zeros(rows, 1, dtype=torch.uint8)
    for seed in range(seeds):
        buffer, start = build_buffer(name, capacity, seed=seed), 0
        for experience, size in zip(experiences, sizes, strict=True):
            buffer.add(images[start : start + size], experience=experience)
            start += size
        counts += torch.bincount(buffer.meta[:, 1], minlength=rows)
    # Each count is Binomial(seeds, capacity / rows): five standard deviations either side.
    p = capacity / rows
    assert (counts - seeds * p).abs().max() < 5 * math.sqrt(seeds * p * (1 - p))


def test_reservoir_seed_matters():
    images = torch.zeros(200, 1, dtype=torch.uint8)
    held = []
    for seed in (0, 1):
        buffer = ReservoirBuffer(10, seed=seed)
        buffer.add(images)
        held.append(set(buffer.meta[:, 1].tolist()))
    assert held[0] != held[1]


@pytest.mark.parametrize("capacity", [11, 12])
def test_balanced_gives_each_experience_an_equal_share_remainder_to_the_earliest(capacity):
    buffer = BalancedBuffer(capacity, seed=0)
    images = torch.zeros(30, 1, dtype=torch.uint8)
    before = None
    for experience in range(3):
        for start in range(0, 30, 7):
            buffer.add(images[start : start + 7], experience=experience)
        counts = torch.bincount(buffer.meta[:, 0]).tolist()
        seen = experience + 1
        assert counts == [capacity // seen + (k < capacity % seen) for k in range(seen)]
        kept = set(buffer.meta[buffer.meta[:, 0] == 0, 1].tolist())
        assert before is None or kept < before  # a shrink drops rows, brings none back
        before = kept


def test_balanced_small_experience_keeps_all_its_rows():
    buffer = BalancedBuffer(9, seed=0)
    buffer.add(torch.zeros(20, 1, dtype=torch.uint8), experience=0)
    buffer.add(torch.zeros(2, 1, dtype=torch.uint8), experience=7)
    buffer.add(torch.zeros(20, 1, dtype=torch.uint8), experience=3)
    assert torch.bincount(buffer.meta[:, 0], minlength=8)[[0, 7, 3]].tolist() == [3, 2, 3]


# MinRed against a brute-force reference, on features whose similarities are exact.


def sign_features(n: int, g: torch.Generator, dim: int = 16, centres: int = 6) -> torch.Tensor:
    """+-1 vectors near a few centres: norms are 4, so every cosine is exact and ties abound."""
    base = torch.randint(0, 2, (centres, dim), generator=g) * 2 - 1
    rows = base[torch.randint(0, centres, (n,), generator=g)]
    flips = torch.rand(n, dim, generator=g) < 0.1
    return torch.where(flips, -rows, rows).float()


def greedy_reference(pool: dict[int, torch.Tensor], capacity: int) -> dict[int, torch.Tensor]:
    """Evict the row of highest nearest-neighbour cosine, older first on ties, from scratch."""
    arrivals = sorted(pool)
    f = F.normalize(torch.stack([pool[a] for a in arrivals]), dim=1)
    sims = (f @ f.T).tolist()
    alive = list(range(len(arrivals)))
    while len(alive) > capacity:
        r = [max(sims[i][j] for j in alive if j != i) for i in alive]
        alive.remove(alive[r.index(max(r))])  # the first maximum is the oldest
    return {arrivals[i]: pool[arrivals[i]] for i in alive}


def assert_exact_redundancy(buffer: MinRedBuffer) -> None:
    f = buffer.features
    sims = f @ f.T
    sims.fill_diagonal_(-torch.inf)
    r, nearest = buffer.redundancy()
    assert torch.equal(r, sims.amax(1))
    assert torch.equal(sims[torch.arange(len(f)), nearest], r)


def test_minred_matches_a_brute_force_greedy_reference():
    g = torch.Generator().manual_seed(0)
    buffer, reference, arrival = MinRedBuffer(CAPACITY), {}, 0
    for size in [1, 3, 9, 20, 2, 1, 5, 8, 13, 1, 1, 4, 30, 6, 7] * 3:
        features = sign_features(size, g)
        buffer.add(torch.zeros(size, 1, dtype=torch.uint8), features)
        reference.update(zip(range(arrival, arrival + size), features, strict=True))
        reference = greedy_reference(reference, CAPACITY)
        arrival += size
        assert sorted(buffer.meta[:, 1].tolist()) == sorted(reference)
        assert_exact_redundancy(buffer)
        # A training step: refresh a few rows' features, in the reference too.
        index = buffer.sample(min(3, len(buffer)), g)
        fresh = sign_features(len(index), g)
        buffer.update_features(index, fresh)
        for slot, feature in zip(index.tolist(), fresh, strict=True):
            reference[int(buffer.meta[slot, 1])] = feature
        assert_exact_redundancy(buffer)
        assert torch.equal(buffer.features[index], F.normalize(fresh, dim=1))


def test_update_features_changes_which_row_minred_evicts_next():
    e, image = torch.eye(4), torch.zeros(1, 1, dtype=torch.uint8)
    held = {}
    for refresh in (False, True):
        buffer = MinRedBuffer(3)
        for feature in (e[0], e[0] + e[1], e[2]):  # arrivals 0, 1, 2 in slots 0, 1, 2
            buffer.add(image, feature[None])
        if refresh:  # the model now embeds arrival 1 next to arrival 2, away from arrival 0
            buffer.update_features(torch.tensor([1]), (e[1] + e[2])[None])
        buffer.add(image, e[3][None])
        held[refresh] = sorted(buffer.meta[:, 1].tolist())
    assert held[False] == [1, 2, 3]  # 0 and 1 were the closest pair: the older, 0, went
    assert held[True] == [0, 2, 3]  # now 1 and 2 are: 1 went


def test_minred_evicts_the_older_of_identical_rows():
    buffer = MinRedBuffer(2)
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    buffer.add(torch.zeros(3, 1, dtype=torch.uint8), features)
    assert sorted(buffer.meta[:, 1].tolist()) == [1, 2]


def test_update_features_keeps_the_first_of_repeated_rows():
    buffer = MinRedBuffer(4)
    buffer.add(torch.zeros(4, 1, dtype=torch.uint8), torch.eye(4))
    buffer.update_features(torch.tensor([2, 2]), torch.tensor([[0.0, 3, 0, 0], [1, 0, 0, 0]]))
    assert torch.equal(buffer.features[2], torch.tensor([0.0, 1, 0, 0]))
    assert_exact_redundancy(buffer)


def test_minred_feature_errors_are_one_line():
    buffer = MinRedBuffer(4)
    with pytest.raises(ValueError, match="^MinRed needs features: ") as error:
        buffer.add(torch.zeros(2, 1, dtype=torch.uint8))
    assert "\n" not in str(error.value)
    buffer.add(torch.zeros(2, 1, dtype=torch.uint8), torch.randn(2, 3))
    with pytest.raises(ValueError, match="5 dimensions, the buffer's 3"):
        buffer.add(torch.zeros(2, 1, dtype=torch.uint8), torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"\[1, D\]"):
        buffer.add(torch.zeros(1, 1, dtype=torch.uint8), torch.randn(2, 3))
    with pytest.raises(ValueError, match="finite"):
        buffer.add(torch.zeros(1, 1, dtype=torch.uint8), torch.full((1, 3), torch.nan))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        buffer.update_features(torch.tensor([2]), torch.randn(1, 3))


def test_buffers_without_features_ignore_them():
    for name in ("fifo", "reservoir", "balanced"):
        buffer = build_buffer(name, 4)
        buffer.add(torch.zeros(6, 1, dtype=torch.uint8), torch.randn(6, 3))
        before = buffer.state_dict()
        buffer.update_features(torch.tensor([0]), torch.randn(1, 3))
        assert buffer.features is None
        assert_same_state(before, buffer.state_dict())


def test_fifo_holds_the_last_rows_in_arrival_order_of_slots():
    buffer = build_buffer("fifo", 5)
    images = torch.arange(23, dtype=torch.uint8)[:, None]
    for start in range(0, 23, 4):
        buffer.add(images[start : start + 4])
        seen = min(start + 4, 23)
        assert sorted(buffer.meta[:, 1].tolist()) == list(range(max(0, seen - 5), seen))
    assert sorted(buffer.images.flatten().tolist()) == list(range(18, 23))
