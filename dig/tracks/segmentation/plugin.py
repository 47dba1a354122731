"""Registers the segmentation track's built-in entries through the ``dig`` entry-point group."""

from __future__ import annotations

from dig.plugins import hookimpl
from dig.registry import Registry
from dig.tracks.segmentation.datasets import FluoNucleiTask, MonaiSynthetic3DTask, StardistNucleiTask
from dig.tracks.segmentation.files import MSD_TASKS, FileSegmentationTask
from dig.tracks.segmentation.gvtnet import GVTNetSegmenter
from dig.tracks.segmentation.medsam_lite import MedSAMLite
from dig.tracks.segmentation.metrics import semantic_scores
from dig.tracks.segmentation.monai_unet import MonaiUNetSegmenter
from dig.tracks.segmentation.nnunet import NNUNetSegmenter
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
# nnU-Net: network, patch, batch and normalisation come from its planner; only steps are dig's. Its planned
# networks cost 9x (2D: 20.6M parameters at 128^2) and 11x (3D) dig's U-Net per step on 2 cores (measured), so
# ``default`` gives it 100 (2D) / 30 (3D) steps: about 3x the U-Net's CPU time per job, still ~1/1000 of nnU-Net's.
NNUNET = {"smoke": {"steps": 2, "eval_every": 1},
          "default": {"steps": 100, "eval_every": 25, "3d": {"steps": 30, "eval_every": 10}},
          "paper": {"steps": 250000, "eval_every": 250}}

# MedSAM-lite from scratch: 400 steps of 4 windows x 8 boxes reach a validation box Dice of 0.89 on fluo-nuclei-2d
# (0.43 after 200 steps at lr 3e-4; measured, seed 0). ``paper``: LiteMedSAM's 256-pixel input at a ViT-B-like width.
MEDSAM_LITE = {"smoke": {"window": 64, "patch": 8, "embed": 32, "depth": 1, "heads": 2, "batch": 2, "boxes": 4,
                         "steps": 2, "eval_every": 1},
               "default": {"window": 128, "patch": 8, "embed": 64, "depth": 4, "heads": 4, "batch": 4, "boxes": 8,
                           "steps": 400, "eval_every": 50, "lr": 1e-3},
               "paper": {"window": 256, "patch": 16, "embed": 256, "depth": 12, "heads": 8, "batch": 16, "boxes": 16,
                         "steps": 100000, "eval_every": 1000, "lr": 1e-4}}


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
    registry.add_model("nnunet", NNUNetSegmenter, track="segmentation", hparams=NNUNET, relative_cost=3.0,
                       summary="nnU-Net (Isensee et al. 2021): nnunetv2's own planner picks network, patch, batch and "
                               "normalisation; trained in dig's loop",
                       departures=("dig's training loop (Adam, Dice + CE, flips and 90-degree turns, foreground-centred "
                                   "patches) instead of nnU-Net's SGD, poly schedule and spatial augmentation",
                                   "no deep supervision, one fold, no ensembling or post-processing; whole-image inference",
                                   "default budget: 100 (2D) / 30 (3D) steps instead of 250,000"))
    registry.add_model("medsam-lite", MedSAMLite, track="segmentation", hparams=MEDSAM_LITE, relative_cost=1.2,
                       prompted=True, dims=(2,),
                       summary="MedSAM-lite (Ma et al. 2024): small ViT + SAM's prompt encoder and mask decoder, from "
                               "scratch, prompted with the true instance boxes (exact and 10 % jittered)",
                       departures=("trained from scratch on the simulator (no MedSAM weights offline), a 4-block ViT of "
                                   "width 64 on 128-pixel windows instead of TinyViT on 256",))
    registry.add_model("otsu", OtsuThreshold, track="segmentation", relative_cost=0.01,
                       summary="Floor: Otsu / multi-Otsu threshold, Gaussian smoothing chosen on validation Dice")
