"""A fluorescence-microscopy simulator: nuclei, optics and camera noise, in 2D and 3D, deterministic per seed.

One image (``simulate``):
1. nuclei: random non-overlapping ellipses (2D, random orientation) or axis-aligned ellipsoids (3D) with
   semi-axes drawn in ``radius``; each is an instance of the label image;
2. texture: each nucleus has a brightness drawn in [0.4, 0.8] times ``1 + 0.25 z`` with z a smoothed,
   unit-variance random field (chromatin);
3. optics: the fluorophore density is blurred by a Gaussian point-spread function of width ``psf_sigma``
   pixels and a constant ``background`` is added: that is the clean image ``y`` (relative intensity, ~[0, 1]);
4. camera: ``photons`` photons per unit intensity, shot noise ``Poisson(photons * y)`` plus Gaussian read noise
   of ``read_noise`` photo-electrons, divided back by ``photons``: the noisy image ``x`` with
   ``E[x] = y`` and ``Var[x] = y / photons + (read_noise / photons)^2``.

``fluorescence_set`` builds a set of such images, cached in dig's cache (``dig.data.cache``) with a checksum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from dig.data.cache import load_cached_arrays, save_cached_arrays


@dataclass(frozen=True)
class Camera:
    """One noise level: ``photons`` per unit intensity and Gaussian read noise (photo-electrons)."""

    name: str
    photons: float
    read_noise: float


@dataclass(frozen=True)
class Simulated:
    clean: np.ndarray  # float32, the blurred fluorophore density plus background
    noisy: np.ndarray  # float32, clean seen through the camera
    instances: np.ndarray  # int32, 0 background, 1..n nuclei


def add_camera_noise(clean: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """``(Poisson(photons * clean) + N(0, read_noise^2)) / photons`` as float32."""
    electrons = rng.poisson(np.clip(clean, 0, None) * camera.photons).astype(np.float64)
    electrons += rng.normal(0.0, camera.read_noise, size=clean.shape)
    return (electrons / camera.photons).astype(np.float32)


def _nucleus_mask(shape: tuple[int, ...], centre: np.ndarray, radii: np.ndarray, angle: float) -> np.ndarray:
    grids = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    offsets = [g - c for g, c in zip(grids, centre, strict=True)]
    if len(shape) == 2:
        cos, sin = np.cos(angle), np.sin(angle)
        offsets = [cos * offsets[0] + sin * offsets[1], -sin * offsets[0] + cos * offsets[1]]
    return sum((o / r) ** 2 for o, r in zip(offsets, radii, strict=True)) <= 1.0


def nuclei(shape: tuple[int, ...], count: int, radius: tuple[float, float], rng: np.random.Generator,
           gap: int = 2, attempts: int = 200) -> np.ndarray:
    """An instance label image of up to ``count`` non-overlapping nuclei at least ``gap`` pixels apart."""
    labels = np.zeros(shape, dtype=np.int32)
    occupied = np.zeros(shape, dtype=bool)
    placed = 0
    for _ in range(attempts):
        if placed == count:
            break
        radii = rng.uniform(radius[0], radius[1], size=len(shape))
        centre = rng.uniform(0, 1, size=len(shape)) * (np.asarray(shape) - 1)
        mask = _nucleus_mask(shape, centre, radii, float(rng.uniform(0, np.pi)))
        if mask.sum() < 4 or (mask & occupied).any():
            continue
        placed += 1
        labels[mask] = placed
        occupied |= ndimage.binary_dilation(mask, iterations=gap)
    return labels


def simulate(shape: tuple[int, ...], camera: Camera, seed: int, count: int = 12,
             radius: tuple[float, float] = (5.0, 11.0), psf_sigma: float = 1.5, background: float = 0.05,
             texture: float = 0.25) -> Simulated:
    rng = np.random.default_rng(seed)
    instances = nuclei(shape, count, radius, rng)
    brightness = np.concatenate([[0.0], rng.uniform(0.4, 0.8, size=int(instances.max()))])
    field = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    field /= field.std() + 1e-12
    density = brightness[instances] * np.clip(1.0 + texture * field, 0.0, None)
    clean = (ndimage.gaussian_filter(density, psf_sigma) + background).astype(np.float32)
    return Simulated(clean, add_camera_noise(clean, camera, rng), instances)


def fluorescence_set(name: str, shape: tuple[int, ...], cameras: tuple[Camera, ...], images: int, seed: int,
                     **options) -> dict[str, np.ndarray]:
    """``images`` scenes per camera: arrays ``clean`` [K, n, *shape], ``noisy`` [K, n, *shape],
    ``instances`` [K, n, *shape] with K = len(cameras); scene i under camera k has seed
    ``seed * 100003 + k * 1009 + i``. Cached as ``name`` (put every setting into the name)."""
    cached = load_cached_arrays(name)
    if cached is not None:
        return cached[0]
    clean, noisy, instances = [], [], []
    for k, camera in enumerate(cameras):
        sims = [simulate(shape, camera, seed * 100003 + k * 1009 + i, **options) for i in range(images)]
        clean.append(np.stack([s.clean for s in sims]))
        noisy.append(np.stack([s.noisy for s in sims]))
        instances.append(np.stack([s.instances for s in sims]))
    arrays = {"clean": np.stack(clean), "noisy": np.stack(noisy), "instances": np.stack(instances)}
    save_cached_arrays(name, arrays, {"shape": list(shape), "images": images, "seed": seed,
                                      "cameras": [c.__dict__ for c in cameras], **options})
    return arrays
