"""What every trained segmentation network shares, so that rows differ in their network only: the patch
sampler, the loss, the optimiser, the validation-only checkpoint choice and inference.

Training (after nnU-Net's defaults, reduced to the budget): each image is z-scored per channel by its own
mean and standard deviation; every step draws ``batch`` crops of ``patch`` voxels per side (capped by the
smallest training image), a third of them centred on a random foreground voxel (nnU-Net's foreground
oversampling, so small classes are seen), each randomly flipped along every axis and, where the last two
patch sides are equal, rotated by k x 90 degrees in them; loss Dice + cross-entropy (MONAI's ``DiceCELoss``,
softmax over the classes); Adam at ``lr``. Every ``eval_every`` steps the network segments the whole
validation images and the state with the best mean foreground Dice is kept; the test images are never seen
before the track evaluates them once. Inference: argmax of the network on the whole image, or on
overlapping tiles of side ``tile`` when set.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dig.nn.tiling import predict_tiled
from dig.nn.train_step import BestCheckpoint, optimisation_step
from dig.tracks.segmentation.protocol import EpochCallback, Prediction, Split

FOREGROUND_SHARE = 1 / 3


def standardise(image: np.ndarray) -> np.ndarray:
    """Each channel minus its mean, divided by its standard deviation (1 where the channel is constant)."""
    axes = tuple(range(1, image.ndim))
    mean = image.mean(axis=axes, keepdims=True)
    std = image.std(axis=axes, keepdims=True)
    return ((image - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def foreground_dice(prediction: np.ndarray, truth: np.ndarray, classes: int) -> float:
    """Mean over foreground classes present in either map of 2|P∩T| / (|P| + |T|): the checkpoint criterion."""
    scores = []
    for k in range(1, classes):
        p, t = prediction == k, truth == k
        total = p.sum() + t.sum()
        if total:
            scores.append(2.0 * np.logical_and(p, t).sum() / total)
    return float(np.mean(scores)) if scores else 1.0


class PatchSampler:
    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray], patch: int | tuple[int, ...],
                 generator: torch.Generator):
        self.images, self.labels, self.generator = images, labels, generator
        spatial = np.array([image.shape[1:] for image in images])
        sides = (patch,) * spatial.shape[1] if isinstance(patch, int) else tuple(patch)
        self.shape = tuple(int(min(p, side)) for p, side in zip(sides, spatial.min(axis=0), strict=True))
        volumes = torch.tensor([float(np.prod(s)) for s in spatial])
        self.weights = volumes / volumes.sum()
        self.foreground = [np.argwhere(label > 0) for label in labels]

    def _randint(self, high: int) -> int:
        return int(torch.randint(0, max(1, high), (1,), generator=self.generator))

    def sample(self, count: int) -> tuple[Tensor, Tensor]:
        picks = torch.multinomial(self.weights, count, replacement=True, generator=self.generator).tolist()
        crops, targets = [], []
        for pick in picks:
            image, label = self.images[pick], self.labels[pick]
            sides = image.shape[1:]
            centred = torch.rand(1, generator=self.generator).item() < FOREGROUND_SHARE and len(self.foreground[pick])
            if centred:
                voxel = self.foreground[pick][self._randint(len(self.foreground[pick]))]
                origin = [int(np.clip(v - s // 2, 0, side - s)) for v, s, side in zip(voxel, self.shape, sides, strict=True)]
            else:
                origin = [self._randint(side - s + 1) for s, side in zip(self.shape, sides, strict=True)]
            window = tuple(slice(o, o + s) for o, s in zip(origin, self.shape, strict=True))
            x = torch.from_numpy(np.ascontiguousarray(image[(slice(None), *window)]))
            y = torch.from_numpy(np.ascontiguousarray(label[window]))[None]
            flips = [axis + 1 for axis in range(len(sides)) if torch.rand(1, generator=self.generator).item() < 0.5]
            x, y = torch.flip(x, flips), torch.flip(y, flips)
            if self.shape[-1] == self.shape[-2]:
                turns = self._randint(4)
                x, y = torch.rot90(x, turns, dims=(-2, -1)), torch.rot90(y, turns, dims=(-2, -1))
            crops.append(x)
            targets.append(y)
        return torch.stack(crops).float(), torch.stack(targets).long()


class LearnedSegmenter(nn.Module):
    """Subclasses define ``build_network(dim, in_channels, classes, width, depth, norm) -> nn.Module`` (logits
    ``[B, classes, *spatial]`` for any input size); ``configure(train)`` may re-plan the network, patch, batch
    and normalisation from the training data before training starts (nnU-Net)."""

    prompted = False

    def __init__(self, dim: int = 2, in_channels: int = 1, classes: int = 2, width: int = 16, depth: int = 2,
                 norm: str = "batch", patch: int = 64, batch: int = 8, steps: int = 300, lr: float = 1e-3,
                 eval_every: int = 50, tile: int | None = None) -> None:
        super().__init__()
        self.dim, self.classes, self.patch, self.batch, self.steps, self.lr = dim, classes, patch, batch, steps, lr
        self.eval_every, self.tile = eval_every, tile
        self.network = self.build_network(dim, in_channels, classes, width, depth, norm)

    def build_network(self, dim: int, in_channels: int, classes: int, width: int, depth: int, norm: str) -> nn.Module:
        raise NotImplementedError

    def configure(self, train: Split) -> None:
        """Nothing to plan: the network, patch and batch are the budget's."""

    def normalise(self, image: np.ndarray) -> np.ndarray:
        return standardise(image)

    def fit(self, train: Split, val: Split, seed: int, on_epoch: EpochCallback | None = None) -> dict:
        from monai.losses import DiceCELoss

        if not len(val):
            raise ValueError(f"{type(self).__name__} selects its checkpoint on validation images; none were given")
        for index, image in enumerate(train.images):
            if not np.isfinite(image).all():
                raise ValueError(f"{type(self).__name__}: training image {index} holds NaN or inf pixels; clean or "
                                 "drop it before training")
        self.configure(train)
        torch.manual_seed(seed)
        for module in self.network.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        generator = torch.Generator().manual_seed(seed)
        sampler = PatchSampler([self.normalise(image) for image in train.images], list(train.labels), self.patch,
                               generator)
        criterion = DiceCELoss(to_onehot_y=True, softmax=True)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.lr)
        checkpoint, history, losses = BestCheckpoint(self, higher_is_better=True), {"val_dice": []}, []
        for step in range(1, self.steps + 1):
            self.train()
            x, y = sampler.sample(self.batch)
            losses.append(optimisation_step(self, optimizer, criterion(self.network(x), y), f"step {step}",
                                            inputs="images"))
            if step % self.eval_every == 0 or step == self.steps:
                dice = float(np.mean([foreground_dice(self.predict(image).labels, label, self.classes)
                                      for image, label in zip(val.images, val.labels, strict=True)]))
                history["val_dice"].append(dice)
                checkpoint.offer(dice, step)
                if on_epoch is not None:
                    on_epoch(step, self.steps, {"train_loss": float(np.mean(losses[-self.eval_every:])), "val_dice": dice})
        checkpoint.restore()
        history.update(steps=self.steps, best_step=checkpoint.step, best_val_dice=checkpoint.score, patch=list(sampler.shape),
                       train_loss_last=float(np.mean(losses[-10:])))
        return history

    @torch.no_grad()
    def probabilities(self, image: np.ndarray) -> Tensor:
        """Softmax class probabilities [classes, *spatial] of one image [C, *spatial]."""
        self.eval()
        x = torch.from_numpy(self.normalise(image))[None]
        if self.tile is not None and any(side > self.tile for side in x.shape[2:]):
            logits = predict_tiled(self.network, x, self.tile)
        else:
            logits = self.network(x)
        return torch.softmax(logits, dim=1)[0]

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(self.probabilities(image).argmax(0).numpy().astype(np.int64))
