"""The real fluorescence nuclei images shipped in the ``stardist`` wheel (Schmidt et al. 2018), read with
tifffile and checked by SHA-256: ``img2d.tif`` (512 x 512, uint16) with its instance mask ``mask2d.tif``
(125 annotated nuclei). dig reads the files only; stardist is installed ``--no-deps``."""

from __future__ import annotations

import numpy as np

from dig.data.package_files import package_data_file

INSTALL = "stardist==0.9.2"
IMAGE_SHA256 = "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750"
MASK_SHA256 = "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f"


def _read(name: str, sha256: str) -> np.ndarray:
    import tifffile

    return tifffile.imread(package_data_file("stardist", "data/images", name, sha256, INSTALL))


def stardist_image(low: float = 0.05, high: float = 0.85) -> np.ndarray:
    """``img2d.tif`` as float32 with its 1st and 99.8th percentiles mapped to ``low`` and ``high`` (values
    above the 99.8th stay above ``high``): the fluorescence simulator's intensity scale by default."""
    raw = _read("img2d.tif", IMAGE_SHA256).astype(np.float64)
    p_low, p_high = np.percentile(raw, (1.0, 99.8))
    return (low + (high - low) * np.clip((raw - p_low) / (p_high - p_low), 0.0, None)).astype(np.float32)


def stardist_instances() -> np.ndarray:
    """``mask2d.tif`` as int32: 0 background, 1..125 the annotated nuclei of ``img2d.tif``."""
    return _read("mask2d.tif", MASK_SHA256).astype(np.int32)
