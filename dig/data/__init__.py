"""Dataset caches, checksums and splits shared by all tracks."""

from dig.data.cache import cache_dir, load_cached_arrays, load_or_build, read_npz, save_cached_arrays
from dig.data.splits import evenly_spaced, permuted_split, time_blocks

__all__ = ["cache_dir", "load_cached_arrays", "load_or_build", "evenly_spaced", "permuted_split", "read_npz",
           "save_cached_arrays", "time_blocks"]
