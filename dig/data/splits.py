"""Fixed splits: random, by time block, or by order."""

from __future__ import annotations

import numpy as np

from dig.errors import DataError


def permuted_split(num_items: int, sizes: dict[str, int | None], seed: int) -> dict[str, np.ndarray]:
    """Shuffle ``range(num_items)`` with ``np.random.RandomState(seed)`` and cut consecutive blocks.

    This is the DimeNet / DIG convention (``sklearn.utils.shuffle(range(n), random_state=seed)`` draws the
    same permutation). A size of ``None`` takes the rest.
    """
    order = np.arange(num_items)
    np.random.RandomState(seed).shuffle(order)
    out, start = {}, 0
    for name, size in sizes.items():
        stop = num_items if size is None else start + size
        if stop > num_items:
            raise ValueError(f"split sizes {sizes} need {stop} items but only {num_items} exist")
        out[name] = order[start:stop]
        start = stop
    return out


def evenly_spaced(pool: np.ndarray, size: int | None) -> np.ndarray:
    """``size`` items of ``pool`` spread evenly over it (its first and last included); all of it for None."""
    pool = np.asarray(pool)
    if size is None or size >= len(pool):
        if size is not None and size > len(pool):
            raise ValueError(f"asked for {size} items of a pool of {len(pool)}")
        return pool.copy()
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if size == 1:
        return pool[:1].copy()
    return pool[np.round(np.linspace(0, len(pool) - 1, size)).astype(np.int64)]


def time_blocks(num_frames: int, fractions: dict[str, float], gap: int) -> dict[str, np.ndarray]:
    """Consecutive blocks of one trajectory in time order (e.g. train, valid, test), ``gap`` frames dropped
    between neighbouring blocks so that no evaluated frame is within ``gap`` steps of a training frame."""
    usable = num_frames - gap * (len(fractions) - 1)
    if usable < len(fractions):
        raise ValueError(f"{num_frames} frames cannot hold {len(fractions)} blocks {gap} frames apart")
    out, start = {}, 0
    for name, fraction in fractions.items():
        size = max(1, int(usable * fraction))
        out[name] = np.arange(start, min(start + size, num_frames))
        start += size + gap
    return out


def ordered_split(count: int) -> tuple[slice, slice, slice]:
    """Training, validation and test slices of ``count`` items in a fixed order (files sorted by name): the last
    20 % (at least one) test, the item before them validation, the rest training."""
    if count < 3:
        raise DataError(f"{count} labelled case(s); training, validation and test need at least 3")
    tests = max(1, count // 5)
    return slice(0, count - tests - 1), slice(count - tests - 1, count - tests), slice(count - tests, None)
