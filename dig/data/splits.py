"""Fixed random splits."""

from __future__ import annotations

import numpy as np


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
