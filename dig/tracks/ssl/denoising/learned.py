"""What every learned denoiser shares, so that rows differ in their loss only: the backbone (``dig.nn`` U-Net,
or GVTNet for ``gvtnet``), the patch sampler, the optimiser and the validation-only checkpoint choice.

Training: images are normalised by the mean and standard deviation of the training noisy images (Noise2Same's
bound assumes a normalised input); every step draws ``batch`` random ``patch``-sided crops with random flips
and 90-degree rotations, seeded by the job's seed; Adam at ``lr``. Every ``eval_every`` steps the method's own
loss is computed on fixed validation patches (fixed masks) and the best state is kept: self-supervised
methods select on noisy validation images with their own objective, supervised ones on clean targets. The test
images are never seen in training or selection. Prediction is the network on the whole normalised image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dig.nn.gvto import GVTNet
from dig.nn.tiling import predict_tiled
from dig.nn.train_step import BestCheckpoint, optimisation_step
from dig.nn.unet import UNet
from dig.tracks.ssl.methods import EpochCallback

VALIDATION_SEED = 12345


def _crop_origin(shape: tuple[int, ...], patch: int, generator: torch.Generator) -> tuple[int, ...]:
    return tuple(int(torch.randint(0, max(1, side - patch + 1), (1,), generator=generator)) for side in shape)


def sample_patches(images: Sequence[np.ndarray], targets: Sequence[np.ndarray] | None, count: int, patch: int,
                   generator: torch.Generator, augment: bool = True) -> tuple[Tensor, Tensor | None]:
    """``count`` crops [count, 1, *patch] from images picked in proportion to their area (the same crop of
    ``targets`` when given), each randomly flipped along every axis and rotated by k x 90 degrees in its last
    two axes."""
    areas = torch.tensor([float(np.prod(image.shape)) for image in images])
    picks = torch.multinomial(areas / areas.sum(), count, replacement=True, generator=generator)
    crops, target_crops = [], []
    for pick in picks.tolist():
        image = images[pick]
        side = min(patch, *image.shape)
        origin = _crop_origin(image.shape, side, generator)
        window = tuple(slice(o, o + side) for o in origin)
        pair = [torch.from_numpy(np.ascontiguousarray(image[window]))]
        if targets is not None:
            pair.append(torch.from_numpy(np.ascontiguousarray(targets[pick][window])))
        if augment:
            flips = [axis for axis in range(image.ndim) if torch.rand(1, generator=generator).item() < 0.5]
            turns = int(torch.randint(0, 4, (1,), generator=generator))
            pair = [torch.rot90(torch.flip(p, flips), turns, dims=(-2, -1)) for p in pair]
        crops.append(pair[0])
        if targets is not None:
            target_crops.append(pair[1])
    batch = torch.stack(crops).unsqueeze(1).float()
    return batch, (torch.stack(target_crops).unsqueeze(1).float() if targets is not None else None)


class LearnedDenoiser(nn.Module):
    """Subclasses define ``loss(noisy, clean, generator)`` on a normalised batch; ``uses_clean`` methods get
    clean training and validation targets, the others ``clean=None``."""

    uses_clean = False
    backbone = "unet"

    def __init__(self, dim: int = 2, width: int = 32, depth: int = 2, norm: str = "batch", patch: int = 64,
                 batch: int = 16, steps: int = 400, lr: float = 4e-4, eval_every: int = 50,
                 validation_patches: int = 32, tile: int | None = None) -> None:
        super().__init__()
        self.tile = tile
        network = GVTNet if self.backbone == "gvtnet" else UNet
        self.network = network(dim=dim, width=width, depth=depth, norm=norm)
        self.dim, self.patch, self.batch, self.steps, self.lr = dim, patch, batch, steps, lr
        self.eval_every, self.validation_patches = eval_every, validation_patches
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def loss(self, noisy: Tensor, clean: Tensor | None, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def fit(self, noisy: Sequence[np.ndarray], seed: int, on_epoch: EpochCallback | None = None,
            clean: Sequence[np.ndarray] | None = None, val_noisy: Sequence[np.ndarray] = (),
            val_clean: Sequence[np.ndarray] | None = None) -> dict:
        if self.uses_clean and (clean is None or val_clean is None):
            raise ValueError(f"{type(self).__name__} is supervised: it needs clean training and validation images")
        if not self.uses_clean:
            clean = val_clean = None
        for index, image in enumerate(noisy):
            if not np.isfinite(image).all():
                raise ValueError(f"{type(self).__name__}: training image {index} holds NaN or inf pixels; clean or drop "
                                 "it before training (denoisers expect finite intensities)")
        values = np.concatenate([image.ravel() for image in noisy])
        self.mean.fill_(float(values.mean()))
        self.std.fill_(float(values.std()) or 1.0)
        torch.manual_seed(seed)
        for module in self.network.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        generator = torch.Generator().manual_seed(seed)
        validation = self._validation_set(val_noisy, val_clean)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.lr)
        checkpoint, history, losses = BestCheckpoint(self, higher_is_better=False), {"val_loss": []}, []
        for step in range(1, self.steps + 1):
            self.train()
            x, y = sample_patches(noisy, clean, self.batch, self.patch, generator)
            loss = self.loss(self._normalise(x), None if y is None else self._normalise(y), generator)
            losses.append(optimisation_step(self, optimizer, loss, f"step {step}", inputs="images"))
            if step % self.eval_every == 0 or step == self.steps:
                val = self._validation_loss(validation)
                history["val_loss"].append(val)
                checkpoint.offer(val, step)
                if on_epoch is not None:
                    on_epoch(step, self.steps, {"train_loss": float(np.mean(losses[-self.eval_every:])),
                                                "val_loss": val})
        checkpoint.restore()
        history.update(steps=self.steps, best_step=checkpoint.step, best_val_loss=checkpoint.score, train_loss_last=float(np.mean(losses[-10:])))
        return history

    def _normalise(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def _validation_set(self, noisy: Sequence[np.ndarray], clean: Sequence[np.ndarray] | None):
        if not len(noisy):
            raise ValueError(f"{type(self).__name__} selects its checkpoint on validation images; none were given")
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        x, y = sample_patches(noisy, clean, self.validation_patches, self.patch, generator, augment=False)
        return self._normalise(x), None if y is None else self._normalise(y)

    @torch.no_grad()
    def _validation_loss(self, validation) -> float:
        self.eval()
        x, y = validation
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        total = 0.0
        for start in range(0, x.size(0), self.batch):
            part = slice(start, start + self.batch)
            total += self.loss(x[part], None if y is None else y[part], generator).item() * x[part].size(0)
        return total / x.size(0)

    @torch.no_grad()
    def denoise(self, noisy: np.ndarray) -> np.ndarray:
        """The network on the whole image, or with ``tile`` on overlapping tiles of that side (overlap a
        quarter tile, outputs averaged where tiles overlap): GVTNet's attention is global over its input, so
        whole-image inference costs (pixels / 16)^2 at its bottom level; tiles bound it."""
        self.eval()
        x = self._normalise(torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))[None, None])
        if self.tile is None or all(side <= self.tile for side in x.shape[2:]):
            return (self.network(x) * self.std + self.mean)[0, 0].numpy()
        return (predict_tiled(self.network, x, self.tile) * self.std + self.mean)[0, 0].numpy()
