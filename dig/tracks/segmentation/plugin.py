"""Registers the segmentation track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.segmentation.datasets import FluoNucleiTask, MonaiSynthetic3DTask, StardistNucleiTask
from dig.tracks.segmentation.files import MSD_TASKS, FileSegmentationTask
from dig.tracks.segmentation.gvtnet import GVTNetSegmenter
from dig.tracks.segmentation.metrics import semantic_scores
from dig.tracks.segmentation.monai_unet import MonaiUNetSegmenter
from dig.tracks.segmentation.otsu import OtsuThreshold
from dig.tracks.segmentation.track import SegmentationTrack
from dig.tracks.segmentation.unet import UNetSegmenter

# One budget for every trained network, so that rows differ in the network only. ``default`` fits 2 cores:
# far below nnU-Net's 1,000 epochs x 250 iterations; ``paper`` keeps nnU-Net's schedule at a U-Net of its size.
# Keys "2d" / "3d" override the shared settings on datasets of that dimension.
NETWORK = {"smoke": {"width": 8, "depth": 2, "patch": 32, "batch": 2, "steps": 4, "eval_every": 2,
                     "3d": {"patch": 16, "batch": 1}},
           "default": {"width": 16, "depth": 2, "patch": 64, "batch": 8, "steps": 300, "eval_every": 50,
                       "3d": {"patch": 32, "batch": 2, "steps": 150}},
           "paper": {"width": 32, "depth": 4, "patch": 128, "batch": 12, "steps": 250000, "eval_every": 250,
                     "3d": {"patch": 96, "batch": 2}}}
GVTNET = {budget: {**settings, "tile": 128} for budget, settings in NETWORK.items()}


@hookimpl
def dig_register(registry: Registry) -> None:
    registry.add_track("segmentation", SegmentationTrack(),
                       summary="Biomedical image segmentation: Dice, IoU, HD95, NSD (MONAI) and instance AP50 / PQ")
    registry.add_evaluator("segmentation-scores", semantic_scores, track="segmentation",
                           summary="MONAI Dice, IoU, HD95 (px), NSD at 2 px; stardist matching AP50 and PQ of instances")
    for dim in (2, 3):
        registry.add_dataset(f"fluo-nuclei-{dim}d", FluoNucleiTask(dim), track="segmentation",
                             evaluator="segmentation-scores",
                             summary=f"Simulated {dim}D fluorescence nuclei (3 cameras), semantic + instance masks")
    registry.add_dataset("stardist-nuclei", StardistNucleiTask(), track="segmentation", evaluator="segmentation-scores",
                         summary="Trained on fluo-nuclei-2d; tested on the real stardist image (125 nuclei)")
    registry.add_dataset("monai-synthetic-3d", MonaiSynthetic3DTask(), track="segmentation",
                         evaluator="segmentation-scores",
                         summary="MONAI create_test_image_3d: 48^3 volumes, 3 sphere classes, fixed seeds")
    for short, folder in MSD_TASKS.items():
        registry.add_dataset(f"msd-{short}", FileSegmentationTask(f"msd-{short}", "msd"), track="segmentation",
                             evaluator="segmentation-scores",
                             summary=f"Medical Segmentation Decathlon {folder} (dig data prepare msd-{short} "
                                     "--track segmentation --from DIR)")
    registry.add_dataset("image-mask-folder", FileSegmentationTask("image-mask-folder", "masks"), track="segmentation",
                         evaluator="segmentation-scores",
                         summary="images/ + masks/ PNG or TIFF pairs (dig data prepare image-mask-folder --track "
                                 "segmentation --from DIR)")
    registry.add_model("unet", UNetSegmenter, track="segmentation", hparams=NETWORK, relative_cost=1.0,
                       summary="U-Net (Ronneberger et al. 2015), dig.nn, 2D/3D")
    registry.add_model("gvtnet", GVTNetSegmenter, track="segmentation", hparams=GVTNET, relative_cost=1.3,
                       summary="GVTNet (Wang et al. 2021): the U-Net with global voxel transformer operators")
    registry.add_model("monai", MonaiUNetSegmenter, track="segmentation", hparams=NETWORK, relative_cost=0.4,
                       summary="Reference: MONAI's UNet (residual units) at the same width, depth and budget")
    registry.add_model("otsu", OtsuThreshold, track="segmentation", relative_cost=0.01,
                       summary="Floor: Otsu / multi-Otsu threshold, Gaussian smoothing chosen on validation Dice")
