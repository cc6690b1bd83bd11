"""Online replay buffers of raw images for unlabeled streams: FIFO, reservoir, balanced, MinRed.

Every buffer has one interface: ``add`` a batch as it arrives, ``sample`` row indices with a
caller's generator, read them with ``images_at``, hand fresh embeddings back with
``update_features`` (MinRed's lazy refresh; a no-op for the others), and ``state_dict`` /
``load_state_dict`` for bit-identical resumption. Rows live in preallocated CPU storage of
``capacity`` rows, so an add copies only the rows it writes, never the whole buffer.

Each row carries ``meta``: int64 ``(experience, arrival)``, the experience id given to
``add`` and the row's global arrival index (0 for the first row ever added).

MinRed (Purushwalkam et al., "The Challenges of Continuous Self-Supervised Learning",
ECCV 2022, https://arxiv.org/abs/2203.12710) keeps the least redundant rows of a video
stream. Measured cost of one add of 256 rows into a full MinRed buffer of 10,000 rows with
128-d features (3x32x32 uint8 images) on the 2-core CPU machine, one torch thread: 28-29 ms
(three runs; random features, ~256 evictions per add; 44 ms when each batch is 256
near-duplicates of one scene, whose neighbour lists run out and are recomputed more often).
``update_features`` of 256 rows: ~22 ms. With two threads on cores that other processes
share, the same add took 140-300 ms (thread contention, not the algorithm). Command::

    .venv/bin/python -c "import time, torch; torch.set_num_threads(1)
    from cl_ssl.kit.buffers import MinRedBuffer as M
    b = M(10000); f = lambda: torch.randn(256, 128); i = torch.zeros(256, 3, 32, 32,
    dtype=torch.uint8); [b.add(i, f()) for _ in range(40)]; t = time.perf_counter()
    [b.add(i, f()) for _ in range(20)]; print((time.perf_counter() - t) / 20 * 1e3, 'ms')"

Example:
    >>> buffer = build_buffer("minred", capacity=1000, seed=0)
    >>> buffer.add(frames, features=model(frames))
    >>> index = buffer.sample(128, generator)
    >>> buffer.update_features(index, model(augment(buffer.images_at(index))))
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

EXPERIENCE, ARRIVAL = 0, 1  # columns of ``meta``


class ReplayBuffer(ABC):
    """A buffer of at most ``capacity`` rows; subclasses decide which rows an add keeps.

    Args:
        capacity: Most rows held.
        seed: Seeds the buffer's own generator (the random choices of reservoir and balanced).
    """

    kind: ClassVar[str]
    needs_features: ClassVar[bool] = False

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed)
        self.seen = 0  # rows ever added
        self._size = 0
        self._images: Tensor | None = None  # [capacity, ...], allocated by the first add
        self._features: Tensor | None = None  # [capacity, D], MinRed only
        self._meta = torch.zeros(capacity, 2, dtype=torch.long)

    def __len__(self) -> int:
        return self._size

    @property
    def images(self) -> Tensor:
        """Stored images [N, ...] as given (an empty tensor before the first add)."""
        return torch.empty(0) if self._images is None else self._images[: self._size]

    @property
    def features(self) -> Tensor | None:
        """L2-normalised features [N, D] for buffers that need them, else None."""
        return None if self._features is None else self._features[: self._size]

    @property
    def meta(self) -> Tensor:
        """int64 [N, 2]: each row's experience and global arrival index."""
        return self._meta[: self._size]

    def add(self, images: Tensor, features: Tensor | None = None, experience: int = 0) -> None:
        """Offer a batch of rows [B, ...] in arrival order; features [B, D] if needed."""
        images = images.detach().cpu()
        count = images.shape[0]
        if self._images is not None and (
            images.shape[1:] != self._images.shape[1:] or images.dtype != self._images.dtype
        ):
            raise ValueError(
                f"images of shape {tuple(images.shape[1:])} and {images.dtype} do not match the "
                f"buffer's {tuple(self._images.shape[1:])} and {self._images.dtype}"
            )
        if self.needs_features:
            features = self._check_features(features, count)
        else:
            features = None  # ignored: this buffer picks rows without looking at them
        if count == 0:
            return
        arrival = torch.arange(self.seen, self.seen + count)
        meta = torch.stack([torch.full_like(arrival, experience), arrival], dim=1)
        self._insert(images, features, meta)
        self.seen += count

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` row indices, without repetition when ``n <= len(self)``, with it otherwise."""
        if n < 0:
            raise ValueError(f"cannot sample {n} rows: ask for 0 or more")
        if self._size == 0:
            raise ValueError("cannot sample from an empty buffer: add rows first")
        if n <= self._size:
            return torch.randperm(self._size, generator=generator)[:n]
        return torch.randint(self._size, (n,), generator=generator)

    def images_at(self, indices: Tensor) -> Tensor:
        """The stored images at ``indices``."""
        return self.images[indices]

    def update_features(self, indices: Tensor, features: Tensor) -> None:
        """Store fresh features of rows ``indices`` (no-op: this buffer ignores features)."""
        return None  # a deliberate no-op that subclasses with features override

    def state_dict(self) -> dict[str, Any]:
        """Copies of rows, counters and the generator's state: all a resume needs."""
        n = self._size
        return {
            "kind": self.kind,
            "capacity": self.capacity,
            "seen": self.seen,
            "generator": self.generator.get_state(),
            "images": None if self._images is None else self._images[:n].clone(),
            "features": None if self._features is None else self._features[:n].clone(),
            "meta": self._meta[:n].clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back :meth:`state_dict`'s output (of a buffer of the same kind and capacity)."""
        kind = state.get("kind")
        if kind != self.kind:
            raise ValueError(
                f"cannot load a {kind!r} buffer's state into a {self.kind!r} buffer: "
                f"build it with build_buffer({kind!r}, ...) instead"
            )
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"the state is of a buffer of capacity {state['capacity']}, this one has "
                f"{self.capacity}: build it with capacity={state['capacity']}"
            )
        self.seen = int(state["seen"])
        self.generator.set_state(state["generator"])
        self._size = len(state["meta"])
        self._meta[: self._size] = state["meta"]
        self._images = self._features = None
        if state["images"] is not None:
            self._images = _allocate(state["images"], self.capacity)
        if state["features"] is not None:
            self._features = _allocate(state["features"], self.capacity)

    @abstractmethod
    def _insert(self, images: Tensor, features: Tensor | None, meta: Tensor) -> None:
        """Place a non-empty batch (rows already checked)."""

    def _check_features(self, features: Tensor | None, count: int) -> Tensor:
        if features is None:
            raise ValueError(
                f"{type(self).__name__.removesuffix('Buffer')} needs features: "
                "pass add(images, features=model(images))"
            )
        features = features.detach().cpu().float()
        if features.dim() != 2 or features.shape[0] != count:
            raise ValueError(f"features must be [{count}, D], got {tuple(features.shape)}")
        if self._features is not None and features.shape[1] != self._features.shape[1]:
            raise ValueError(
                f"features have {features.shape[1]} dimensions, the buffer's "
                f"{self._features.shape[1]}"
            )
        if not torch.isfinite(features).all():
            raise ValueError("features must be finite: check the model's output for NaN/inf")
        return F.normalize(features, dim=1)

    def _write(self, slots: Tensor, images: Tensor, features: Tensor | None, meta: Tensor) -> None:
        """Rows into ``slots``; slots at or past the end must extend it without gaps."""
        if len(slots) == 0:
            return
        if self._images is None:
            self._images = _allocate(images[:0], self.capacity)
        if features is not None and self._features is None:
            self._features = _allocate(features[:0], self.capacity)
        self._images[slots] = images
        if features is not None:
            self._features[slots] = features
        self._meta[slots] = meta
        self._size = max(self._size, int(slots.max()) + 1)

    def _drop(self, slots: Tensor) -> None:
        """Remove rows at ``slots``; the last rows move into the holes to keep rows contiguous."""
        keep = torch.ones(self._size, dtype=torch.bool)
        keep[slots] = False
        size = int(keep.sum())
        holes = (~keep[:size]).nonzero().flatten()
        movers = keep[size:].nonzero().flatten() + size
        for store in (self._images, self._features, self._meta):
            if store is not None:
                store[holes] = store[movers]
        self._size = size

    def _reservoir(
        self, group: Tensor, seen: int, quota: int, images: Tensor, meta: Tensor
    ) -> None:
        """Vitter's algorithm R into a group of rows (slots ``group``) capped at ``quota``.

        Arrival t (0-based, counting the group's ``seen`` rows) fills position t while
        t < quota; later it draws j uniform in {0..t} and replaces position j if j < quota,
        so after n arrivals every one of them is held with probability quota / n.
        Needs len(group) == min(seen, quota).
        """
        t = torch.arange(seen, seen + len(images))
        position = t.clone()
        late = t >= quota
        if late.any():
            u = torch.rand(int(late.sum()), generator=self.generator, dtype=torch.float64)
            # Clamp: u * (t + 1) can round up to t + 1 for u just below 1.
            position[late] = torch.minimum((u * (t[late] + 1)).floor().long(), t[late])
        accepted = position < quota
        rows = accepted.nonzero().flatten()
        # A later arrival that lands on the same position overwrites an earlier one.
        last = torch.full((max(quota, 1),), -1, dtype=torch.long)
        last.scatter_reduce_(0, position[rows], rows, "amax")
        positions = (last >= 0).nonzero().flatten()
        rows = last[positions]
        # Positions past the group's rows are new rows, appended at the end of the buffer.
        slots = self._size + positions - len(group)
        inside = positions < len(group)
        slots[inside] = group[positions[inside]]
        self._write(slots, images[rows], None, meta[rows])


class FIFOBuffer(ReplayBuffer):
    """The last ``capacity`` rows seen: arrival a sits in slot a mod capacity."""

    kind = "fifo"

    def _insert(self, images: Tensor, features: Tensor | None, meta: Tensor) -> None:
        rows = torch.arange(max(0, len(images) - self.capacity), len(images))
        self._write(meta[rows, ARRIVAL] % self.capacity, images[rows], None, meta[rows])


class ReservoirBuffer(ReplayBuffer):
    """A uniform sample of every row seen: after n rows, each is held with probability K / n.

    Example:
        >>> buffer = ReservoirBuffer(capacity=100, seed=0)
        >>> buffer.add(torch.zeros(1000, 3, 8, 8, dtype=torch.uint8))
        >>> len(buffer)
        100
    """

    kind = "reservoir"

    def _insert(self, images: Tensor, features: Tensor | None, meta: Tensor) -> None:
        self._reservoir(torch.arange(self._size), self.seen, self.capacity, images, meta)


class BalancedBuffer(ReplayBuffer):
    """An equal share of ``capacity`` per experience seen, reservoir sampling within each.

    With m experiences seen, the k-th (in order of first arrival) gets
    capacity // m + (k < capacity % m) rows: the remainder goes to the earliest. When a new
    experience arrives, groups over their new share drop random rows (the buffer's
    generator). An experience with fewer rows than its share keeps all of them; the spare
    room is not lent to the others.

    Example:
        >>> buffer = BalancedBuffer(capacity=10, seed=0)
        >>> buffer.add(images_a, experience=0)
        >>> buffer.add(images_b, experience=1)
        >>> buffer.meta[:, 0].bincount()  # 5 rows of each, given 5 or more rows each
    """

    kind = "balanced"

    def __init__(self, capacity: int, seed: int = 0) -> None:
        super().__init__(capacity, seed)
        self.experiences: list[int] = []  # in order of first arrival
        self.experience_seen: list[int] = []  # rows seen per experience

    def quotas(self) -> list[int]:
        """Each experience's share, in order of first arrival."""
        share, rest = divmod(self.capacity, max(len(self.experiences), 1))
        return [share + (k < rest) for k in range(len(self.experiences))]

    def _insert(self, images: Tensor, features: Tensor | None, meta: Tensor) -> None:
        experience = int(meta[0, EXPERIENCE])
        if experience not in self.experiences:
            self.experiences.append(experience)
            self.experience_seen.append(0)
            self._shrink()
        k = self.experiences.index(experience)
        group = (self.meta[:, EXPERIENCE] == experience).nonzero().flatten()
        self._reservoir(group, self.experience_seen[k], self.quotas()[k], images, meta)
        self.experience_seen[k] += len(images)

    def _shrink(self) -> None:
        # Every group's drops are chosen before any row moves: _drop renumbers slots.
        drops = []
        for experience, quota in zip(self.experiences, self.quotas(), strict=True):
            group = (self.meta[:, EXPERIENCE] == experience).nonzero().flatten()
            if len(group) > quota:
                order = torch.randperm(len(group), generator=self.generator)
                drops.append(group[order[: len(group) - quota]])
        if drops:
            self._drop(torch.cat(drops))

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "experiences": torch.tensor(self.experiences, dtype=torch.long),
            "experience_seen": torch.tensor(self.experience_seen, dtype=torch.long),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.experiences = state["experiences"].tolist()
        self.experience_seen = state["experience_seen"].tolist()


class MinRedBuffer(ReplayBuffer):
    """Minimum-redundancy buffer: when full, evict the row most similar to another row.

    With L2-normalised features f_i, row i's redundancy is r_i = max_{j != i} <f_i, f_j>
    (cosine similarity to its nearest neighbour). An add appends the batch, then evicts
    (N + B) - capacity rows one at a time, each time the row of highest r_i among those
    left; exact ties go to the older row (lower arrival index). Incoming rows compete with
    each other too (a batched variant of the paper's per-row insertion). ``update_features``
    stores a row's embedding under the current model whenever it is drawn for training (the
    paper's lazy refresh), and r follows.

    Cost: each row keeps its ``neighbours`` nearest rows, so an add is one [B, N + B]
    similarity product, O(B (N + B) D), and an eviction only revisits the rows that listed
    the evicted one; a row recomputes its list in full, O(N D), only once all of it is gone.

    Example:
        >>> buffer = MinRedBuffer(capacity=2)
        >>> e = torch.eye(3)
        >>> buffer.add(torch.zeros(3, 1), features=torch.stack([e[0], e[0] + 0.01, e[1]]))
        >>> buffer.meta[:, 1]  # the older near-duplicate of e[0] went
        tensor([1, 2])
    """

    kind = "minred"
    needs_features = True
    neighbours: ClassVar[int] = 8

    def __init__(self, capacity: int, seed: int = 0) -> None:
        super().__init__(capacity, seed)
        # Each row's nearest rows: similarities (-inf pads) and slots (-1 pads). Invariant:
        # every row missing from row i's list is no closer to i than the farthest listed.
        self.knn_sim = torch.empty(0, self.neighbours)
        self.knn_idx = torch.empty(0, self.neighbours, dtype=torch.long)

    def redundancy(self) -> tuple[Tensor, Tensor]:
        """Each row's r_i and nearest neighbour's slot: [N] each (-inf and -1 when alone)."""
        # argmax, not max(1): max with a dim is slow on a CPU whose cores are shared.
        position = self.knn_sim.argmax(1, keepdim=True)
        sim, nearest = self.knn_sim.gather(1, position), self.knn_idx.gather(1, position)
        return sim.flatten(), nearest.flatten()

    def _insert(self, images: Tensor, features: Tensor | None, meta: Tensor) -> None:
        assert features is not None  # add() checked it
        n, b, k = self._size, len(images), self.neighbours
        pool = torch.cat([self.features, features]) if n else features
        sims = features @ pool.T  # the only product with the whole buffer
        sims[torch.arange(b), n + torch.arange(b)] = -torch.inf
        new_sim, new_idx = _top(sims, k)
        knn_sim = torch.cat([self.knn_sim, new_sim])
        knn_idx = torch.cat([self.knn_idx, new_idx])
        if n:
            old = knn_sim[:n], knn_idx[:n]
            _fold(*old, sims[:, :n], n + torch.arange(b), _floor(old[0]))
        arrival = torch.cat([self.meta[:, ARRIVAL], meta[:, ARRIVAL]])
        alive = _evict(pool, knn_sim, knn_idx, arrival, n + b - self.capacity)
        kept = alive[:-1].nonzero().flatten()
        knn_sim, knn_idx = _prune(pool, knn_sim[kept], knn_idx[kept], kept, alive)
        # Survivors keep their slots; new survivors take evicted slots, then the end.
        size = len(kept)
        new_rows = alive[n:-1].nonzero().flatten()
        free = torch.cat([(~alive[:n]).nonzero().flatten(), torch.arange(n, size)])
        slot_of = torch.full((n + b + 1,), -1, dtype=torch.long)  # slot_of[-1] stays -1
        slot_of[kept[kept < n]] = kept[kept < n]
        slot_of[n + new_rows] = free
        self._write(free, images[new_rows], features[new_rows], meta[new_rows])
        self.knn_sim = torch.empty(size, k)
        self.knn_idx = torch.empty(size, k, dtype=torch.long)
        self.knn_sim[slot_of[kept]] = knn_sim
        self.knn_idx[slot_of[kept]] = slot_of[knn_idx]

    def update_features(self, indices: Tensor, features: Tensor) -> None:
        """Store fresh features [k, D] of rows ``indices`` (first wins among repeats)."""
        indices = torch.as_tensor(indices, dtype=torch.long).cpu()
        if len(indices) and (indices.min() < 0 or indices.max() >= self._size):
            raise ValueError(f"indices must lie in [0, {self._size}): sample them from the buffer")
        features = self._check_features(features, len(indices))
        if len(indices) == 0:
            return
        unique, inverse = torch.unique(indices, return_inverse=True)
        first = torch.full((len(unique),), len(indices), dtype=torch.long)
        first.scatter_reduce_(0, inverse, torch.arange(len(indices)), "amin")
        indices, features = unique, features[first]
        self._features[indices] = features
        sims = features @ self.features.T
        sims[torch.arange(len(indices)), indices] = -torch.inf
        # Other rows: entries of moved rows are void, and the moved rows compete anew above
        # the list's old floor (an unlisted row may be closer than anything below it).
        updated = torch.zeros(self._size + 1, dtype=torch.bool)  # [-1]: the -1 pads
        updated[indices] = True
        moved = updated[self.knn_idx]
        floor = _floor(self.knn_sim)
        knn_sim = self.knn_sim.masked_fill(moved, -torch.inf)
        knn_idx = self.knn_idx.masked_fill(moved, -1)
        _fold(knn_sim, knn_idx, sims, indices, floor)
        knn_sim[indices], knn_idx[indices] = _top(sims, self.neighbours)
        everyone = torch.ones(self._size + 1, dtype=torch.bool)
        rows = torch.arange(self._size)
        self.knn_sim, self.knn_idx = _prune(self.features, knn_sim, knn_idx, rows, everyone)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "knn_sim": self.knn_sim.clone(),
            "knn_idx": self.knn_idx.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.knn_sim = state["knn_sim"].clone()
        self.knn_idx = state["knn_idx"].clone()


# The helpers below index ``alive`` masks of pool size + 1 whose last entry is True, so the
# -1 that pads a list reads as alive and never as "evicted".


def _evict(pool: Tensor, knn_sim: Tensor, knn_idx: Tensor, arrival: Tensor, count: int) -> Tensor:
    """Greedy eviction of ``count`` rows of ``pool``; returns the alive mask (+1 entry).

    A max-heap keyed (-r, arrival) holds upper bounds of r: a row's listed maximum stays
    an upper bound once rows it lists are evicted. A popped row is checked against the
    evicted set: if its bound still holds it is the true top (every other row's bound, hence
    its r, is no higher; equal ones are older-first in the heap) and goes; if not, it is
    pushed back with its exact r. Rows enter the heap in decreasing r, only once their bound
    could reach its top, so an add touches O(evictions) rows in Python, not O(N).
    ``knn_sim``/``knn_idx`` of relisted rows are updated in place; kept rows may still list
    evicted rows: :func:`_prune` them.
    """
    alive = torch.ones(len(pool) + 1, dtype=torch.bool)
    if count <= 0:
        return alive
    bound = knn_sim.amax(1)
    order = bound.argsort(descending=True).tolist()
    bound, stamp = bound.tolist(), arrival.tolist()
    dead: set[int] = set()
    heap: list[tuple[float, int, int]] = []
    pushed = 0
    while len(dead) < count:
        while pushed < len(order) and (not heap or bound[order[pushed]] >= -heap[0][0]):
            i = order[pushed]
            heapq.heappush(heap, (-bound[i], stamp[i], i))
            pushed += 1
        _, _, i = heapq.heappop(heap)
        listed = zip(knn_sim[i].tolist(), knn_idx[i].tolist(), strict=True)
        live = [s for s, j in listed if j >= 0 and j not in dead]
        if live and max(live) == bound[i]:
            dead.add(i)
            alive[i] = False
            continue
        if not live:  # every listed row is gone: list this one afresh
            sims = pool[i] @ pool.T
            sims.masked_fill_(~alive[:-1], -torch.inf)
            sims[i] = -torch.inf
            top, position = _top(sims[None], knn_sim.shape[1])
            knn_sim[i], knn_idx[i] = top[0], position[0]
            live = [float(top[0, 0])]
        bound[i] = max(live)
        heapq.heappush(heap, (-bound[i], stamp[i], i))
    return alive


def _prune(
    pool: Tensor, knn_sim: Tensor, knn_idx: Tensor, rows: Tensor, alive: Tensor
) -> tuple[Tensor, Tensor]:
    """Drop evicted rows from the lists of ``rows``; relist from scratch those left empty."""
    gone = ~alive[knn_idx]
    knn_sim = knn_sim.masked_fill(gone, -torch.inf)
    knn_idx = knn_idx.masked_fill(gone, -1)
    empty = (knn_idx < 0).all(1).nonzero().flatten()
    if len(empty) and int(alive[:-1].sum()) > 1:
        sims = pool[rows[empty]] @ pool.T
        sims.masked_fill_(~alive[:-1], -torch.inf)
        sims[torch.arange(len(empty)), rows[empty]] = -torch.inf
        knn_sim[empty], knn_idx[empty] = _top(sims, knn_sim.shape[1])
    return knn_sim, knn_idx


def _top(sims: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest entries of each row of ``sims`` [R, M] and their columns; pads -inf/-1."""
    sim, idx = sims.topk(min(k, sims.shape[1]), dim=1)
    pad = k - sim.shape[1]
    sim = F.pad(sim, (0, pad), value=-torch.inf)
    idx = F.pad(idx, (0, pad), value=-1)
    return sim, idx.masked_fill(sim == -torch.inf, -1)


def _floor(knn_sim: Tensor) -> Tensor:
    """Each list's lowest listed similarity (-inf for an empty list)."""
    low = knn_sim.masked_fill(knn_sim == -torch.inf, torch.inf).amin(1)
    return low.masked_fill(low == torch.inf, -torch.inf)


def _fold(knn_sim: Tensor, knn_idx: Tensor, sims: Tensor, ids: Tensor, floor: Tensor) -> None:
    """Fold candidates into lists [R, k] in place: candidate c is row ``ids[c]``, sims [C, R].

    A candidate joins only at or above the list's floor: below it an unlisted row could be
    closer, and the list would no longer hold its row's nearest rows. Only the (candidate,
    row) pairs that pass are gathered: few, away from the buffer's fill phase.
    """
    candidate, row = (sims >= floor).nonzero().T
    if len(row) == 0:
        return
    row, order = row.sort(stable=True)
    candidate = candidate[order]
    rows, at, counts = row.unique_consecutive(return_inverse=True, return_counts=True)
    # Pair p goes to column p - (first pair of its row) of a [rows, widest] block.
    column = torch.arange(len(row)) - (counts.cumsum(0) - counts)[at]
    width = int(counts.max())
    sim = torch.full((len(rows), width), -torch.inf)
    idx = torch.full((len(rows), width), -1, dtype=torch.long)
    sim[at, column] = sims[candidate, row]
    idx[at, column] = ids[candidate]
    sim = torch.cat([knn_sim[rows], sim], 1)
    idx = torch.cat([knn_idx[rows], idx], 1)
    top, position = sim.topk(knn_sim.shape[1], dim=1)
    knn_sim[rows] = top
    knn_idx[rows] = idx.gather(1, position).masked_fill(top == -torch.inf, -1)


def _allocate(rows: Tensor, capacity: int) -> Tensor:
    """Storage for ``capacity`` rows shaped like ``rows``, holding ``rows`` at the front."""
    storage = torch.empty((capacity, *rows.shape[1:]), dtype=rows.dtype)
    storage[: len(rows)] = rows
    return storage


BUFFERS: dict[str, type[ReplayBuffer]] = {
    cls.kind: cls for cls in (MinRedBuffer, ReservoirBuffer, FIFOBuffer, BalancedBuffer)
}


def build_buffer(name: str, capacity: int, seed: int = 0) -> ReplayBuffer:
    """The buffer ``name`` (a key of :data:`BUFFERS`) of ``capacity`` rows, seeded."""
    if name not in BUFFERS:
        raise ValueError(f"unknown buffer {name!r}: choose from {', '.join(BUFFERS)}")
    return BUFFERS[name](capacity, seed)
