"""MedSAM-lite: box-prompted segmentation after MedSAM (Ma et al., Nature Communications 2024) and its
LiteMedSAM variant (a small image encoder in place of SAM's ViT-H), trained here from scratch: no pre-trained
weights are reachable offline.

- Image encoder: a small ViT (patch ``patch``, ``depth`` pre-norm transformer blocks of width ``embed``, learned
  position embeddings) with SAM's neck (1x1 and 3x3 convolutions, each with ``LayerNorm2d``) on ``window``-sided
  inputs: a ``window / patch``-sided grid of image embeddings.
- Prompt encoder and mask decoder: the ``segment-anything`` package's ``PromptEncoder`` and ``MaskDecoder`` with
  its ``TwoWayTransformer`` (depth 2), at width ``embed``; one mask per box (``multimask_output=False``),
  up-sampled bilinearly from the decoder's 4x grid to the window.
- Training (MedSAM's recipe, on dig's budget): per step ``batch`` training images, up to ``boxes`` instances
  each, prompted with their boxes moved by up to 10 % of their size on each side; loss Dice + binary
  cross-entropy of each box's mask against its instance; Adam at ``lr``; checkpoint on the mean box Dice of the
  validation images (exact boxes).
- Inference: the image is z-scored once; each box is segmented in a ``window``-sided crop centred on it (a box
  larger than 0.8 window gets a crop of 1.25x its side, resized to the window), as MedSAM segments a resized
  region of interest.
``segment_anything``'s package ``__init__`` imports torchvision (its predictor's transforms), which does not
import beside the CPU torch; only its pure-torch ``modeling`` package is loaded (``sam_modeling``).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dig.nn.train_step import BestCheckpoint, optimisation_step
from dig.tracks.segmentation.learned import standardise
from dig.tracks.segmentation.metrics import box_dice, instance_boxes
from dig.tracks.segmentation.protocol import EpochCallback, Split

JITTER = 0.1


def sam_modeling() -> types.ModuleType:
    """``segment_anything.modeling`` without running ``segment_anything/__init__.py`` (which imports torchvision)."""
    if "segment_anything.modeling" in sys.modules:
        return sys.modules["segment_anything.modeling"]
    spec = importlib.util.find_spec("segment_anything")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("medsam-lite needs the segment-anything package: pip install --no-deps "
                                  "segment-anything==1.0 (dig uses its PromptEncoder and MaskDecoder; no weights)")
    if "segment_anything" not in sys.modules:
        package = types.ModuleType("segment_anything")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["segment_anything"] = package
    return importlib.import_module("segment_anything.modeling")


class TinyViTEncoder(nn.Module):
    def __init__(self, in_channels: int, window: int, patch: int, embed: int, depth: int, heads: int) -> None:
        super().__init__()
        sam_modeling()
        from segment_anything.modeling.common import LayerNorm2d as layer_norm
        self.grid = window // patch
        self.patchify = nn.Conv2d(in_channels, embed, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, embed, self.grid, self.grid))
        block = nn.TransformerEncoderLayer(embed, heads, 4 * embed, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.neck = nn.Sequential(nn.Conv2d(embed, embed, 1, bias=False), layer_norm(embed),
                                  nn.Conv2d(embed, embed, 3, padding=1, bias=False), layer_norm(embed))
        nn.init.trunc_normal_(self.position, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patchify(x) + self.position
        b, c, h, w = tokens.shape
        tokens = self.blocks(tokens.flatten(2).transpose(1, 2))
        return self.neck(tokens.transpose(1, 2).reshape(b, c, h, w))


class MedSAMLite(nn.Module):
    prompted = True

    def __init__(self, dim: int = 2, in_channels: int = 1, classes: int = 2, window: int = 128, patch: int = 8,
                 embed: int = 64, depth: int = 4, heads: int = 4, batch: int = 4, boxes: int = 8, steps: int = 300,
                 lr: float = 3e-4, eval_every: int = 50) -> None:
        super().__init__()
        if dim != 2:
            raise ValueError(f"medsam-lite segments 2D images; got dim={dim}")
        if window % patch:
            raise ValueError(f"window {window} must be a multiple of patch {patch}")
        self.settings = dict(in_channels=in_channels, window=window, patch=patch, embed=embed, depth=depth, heads=heads)
        self.window, self.batch, self.boxes, self.steps, self.lr, self.eval_every = window, batch, boxes, steps, lr, eval_every
        self._build(0)

    def _build(self, seed: int) -> None:
        """Every part, initialised from ``seed`` (SAM's prompt encoder draws a random Fourier basis at init)."""
        torch.manual_seed(seed)
        modeling = sam_modeling()
        s = self.settings
        grid = s["window"] // s["patch"]
        self.encoder = TinyViTEncoder(s["in_channels"], s["window"], s["patch"], s["embed"], s["depth"], s["heads"])
        self.prompt_encoder = modeling.PromptEncoder(embed_dim=s["embed"], image_embedding_size=(grid, grid),
                                                     input_image_size=(s["window"], s["window"]), mask_in_chans=16)
        transformer = modeling.TwoWayTransformer(depth=2, embedding_dim=s["embed"], mlp_dim=4 * s["embed"],
                                                 num_heads=s["heads"])
        self.mask_decoder = modeling.MaskDecoder(transformer_dim=s["embed"], transformer=transformer,
                                                 num_multimask_outputs=3, iou_head_hidden_dim=s["embed"])

    def _masks(self, windows: Tensor, boxes: list[Tensor]) -> list[Tensor]:
        """Mask logits [n_i, window, window] for each window [B, C, w, w] and its boxes [n_i, 4] (x0, y0, x1, y1)."""
        embeddings = self.encoder(windows)
        out = []
        for embedding, window_boxes in zip(embeddings, boxes, strict=True):
            sparse, dense = self.prompt_encoder(points=None, boxes=window_boxes, masks=None)
            low, _ = self.mask_decoder(image_embeddings=embedding[None], image_pe=self.prompt_encoder.get_dense_pe(),
                                       sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                       multimask_output=False)
            out.append(F.interpolate(low, size=windows.shape[-2:], mode="bilinear", align_corners=False)[:, 0])
        return out

    @staticmethod
    def _xyxy(box: Sequence[int]) -> list[float]:
        r0, c0, r1, c1 = box
        return [float(c0), float(r0), float(c1), float(r1)]

    def _training_batch(self, images: list[np.ndarray], instances: list[np.ndarray], generator: np.random.Generator):
        windows, boxes, targets = [], [], []
        for index in generator.choice(len(images), size=self.batch):
            image, instance_map = images[index], instances[index]
            top = generator.integers(0, image.shape[1] - self.window + 1)
            left = generator.integers(0, image.shape[2] - self.window + 1)
            crop = instance_map[top:top + self.window, left:left + self.window]
            ids = [i for i in np.unique(crop) if i]
            if not ids:
                continue
            chosen = generator.permutation(ids)[: self.boxes]
            window_boxes, masks = [], []
            for instance_id in chosen:
                mask = crop == instance_id
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                box = np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1], float)
                extent = np.tile([box[2] - box[0], box[3] - box[1]], 2)
                box = np.clip(box + generator.uniform(-JITTER, JITTER, 4) * extent, 0, self.window)
                window_boxes.append(self._xyxy(box))
                masks.append(mask)
            windows.append(image[:, top:top + self.window, left:left + self.window])
            boxes.append(torch.tensor(window_boxes))
            targets.append(torch.from_numpy(np.stack(masks)).float())
        return torch.from_numpy(np.stack(windows)), boxes, targets

    @staticmethod
    def _loss(logits: list[Tensor], targets: list[Tensor]) -> Tensor:
        logit, target = torch.cat(logits), torch.cat(targets)
        probability = torch.sigmoid(logit)
        dice = 1 - (2 * (probability * target).flatten(1).sum(1) + 1) / (probability.flatten(1).sum(1)
                                                                           + target.flatten(1).sum(1) + 1)
        return dice.mean() + F.binary_cross_entropy_with_logits(logit, target)

    def fit(self, train: Split, val: Split, seed: int, on_epoch: EpochCallback | None = None) -> dict:
        if train.instances is None or val.instances is None:
            raise ValueError("medsam-lite is trained with box prompts of instances; the dataset has no instance maps")
        small = [image.shape for image in train.images if min(image.shape[1:]) < self.window]
        if small:
            raise ValueError(f"medsam-lite trains on {self.window}-pixel windows; training images of shape {small[0]} "
                             "are smaller (lower window)")
        self._build(seed)
        images = [standardise(image) for image in train.images]
        generator = np.random.default_rng(seed)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        checkpoint, history, losses = BestCheckpoint(self, higher_is_better=True), {"val_box_dice": []}, []
        for step in range(1, self.steps + 1):
            self.train()
            windows, boxes, targets = self._training_batch(images, list(train.instances), generator)
            if boxes:  # a batch of windows without any instance has nothing to learn from
                losses.append(optimisation_step(self, optimizer, self._loss(self._masks(windows, boxes), targets),
                                                f"step {step}", inputs="images"))
            if step % self.eval_every == 0 or step == self.steps:
                score = self._validation_dice(val)
                history["val_box_dice"].append(score)
                checkpoint.offer(score, step)
                if on_epoch is not None:
                    on_epoch(step, self.steps, {"train_loss": float(np.mean(losses[-self.eval_every:] or [0.0])),
                                                "val_box_dice": score})
        checkpoint.restore()
        history.update(steps=self.steps, best_step=checkpoint.step, best_val_box_dice=checkpoint.score, train_loss_last=float(np.mean(losses[-10:] or [0.0])))
        return history

    def _validation_dice(self, val: Split) -> float:
        scores = []
        for image, instance_map in zip(val.images, val.instances, strict=True):
            ids, boxes = instance_boxes(instance_map)
            scores += box_dice(self.predict_boxes(image, boxes), instance_map, ids)
        return float(np.mean(scores)) if scores else 0.0

    @torch.no_grad()
    def predict_boxes(self, image: np.ndarray, boxes: Sequence[tuple[int, ...]]) -> np.ndarray:
        """One boolean mask [H, W] per box ``(row0, col0, row1, col1)`` (stops exclusive)."""
        self.eval()
        normalised = torch.from_numpy(standardise(image))
        height, width = image.shape[1:]
        masks = np.zeros((len(boxes), height, width), dtype=bool)
        for k, (r0, c0, r1, c1) in enumerate(boxes):
            side = max(self.window, math.ceil(1.25 * max(r1 - r0, c1 - c0)))
            top = int(np.clip((r0 + r1) // 2 - side // 2, 0, max(0, height - side)))
            left = int(np.clip((c0 + c1) // 2 - side // 2, 0, max(0, width - side)))
            crop = normalised[:, top:top + side, left:left + side]
            shape = crop.shape[1:]
            crop = F.pad(crop, (0, side - shape[1], 0, side - shape[0]))  # images smaller than a window
            scale = self.window / side
            window = F.interpolate(crop[None], size=(self.window, self.window), mode="bilinear",
                                   align_corners=False) if side != self.window else crop[None]
            box = torch.tensor([[(c0 - left) * scale, (r0 - top) * scale, (c1 - left) * scale, (r1 - top) * scale]])
            logits = self._masks(window, [box])[0]
            if side != self.window:
                logits = F.interpolate(logits[None], size=(side, side), mode="bilinear", align_corners=False)[0]
            masks[k, top:top + shape[0], left:left + shape[1]] = (logits[0, : shape[0], : shape[1]] > 0).numpy()
        return masks
