"""nnU-Net (Isensee et al., Nature Methods 2021): the network, patch, batch and normalisation that nnU-Net's own
planner chooses from the training set's fingerprint, trained in dig's loop under dig's budget.

``configure`` exports the training images in nnU-Net's raw layout (``imagesTr/case_XXX_CCCC.nii.gz``, one file
per channel, spacing 1, ``labelsTr``, ``dataset.json``), runs nnunetv2's ``DatasetFingerprintExtractor`` and
``ExperimentPlanner`` in a separate process (``nnunet_planning.py``), and reads its plans: the ``2d``
configuration for 2D data, ``3d_fullres`` for 3D. From them: the architecture (``dynamic_network_architectures``'
class and arguments, built as nnunetv2's ``get_network_from_plans`` does, without deep supervision), the patch
size, the batch size and each channel's normalisation scheme (nnunetv2's own classes, with the fingerprint's
intensity statistics for CT). Nothing of nnU-Net's rules is re-written here.
Departures, forced by dig's protocol and budget: training is dig's loop (Dice + CE on the plan's patches with a
third foreground-centred, flips and 90-degree turns instead of nnU-Net's spatial augmentation, Adam instead of
SGD with poly decay, checkpoint on validation Dice) for the budget's steps; no deep supervision; one fold, no
ensembling, no post-processing; inference on the whole image (not sliding windows with Gaussian weights).
"""

from __future__ import annotations

import json
import os
import pydoc
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from dig.tracks.segmentation.learned import LearnedSegmenter
from dig.tracks.segmentation.protocol import Split

DATASET_ID = 917
INSTALL = ("pip install --no-deps nnunetv2==2.8.1 dynamic_network_architectures==0.4.4 acvl_utils==0.2.6 "
           "batchgenerators==0.25.5 (see the README: their declared requirements pull torchvision)")


def export_raw(train: Split, classes: int, folder: Path) -> None:
    """``train`` in nnU-Net's raw layout. Arrays are written transposed, so that SimpleITK (which reverses
    NIfTI axes) hands nnU-Net dig's axis order; 2D images become one-slice volumes."""
    import nibabel

    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    for i, (image, label) in enumerate(zip(train.images, train.labels, strict=True)):
        for c, channel in enumerate(image):
            volume = channel if channel.ndim == 3 else channel[None]
            nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(volume.T, dtype=np.float32), np.eye(4)),
                         folder / "imagesTr" / f"case_{i:03d}_{c:04d}.nii.gz")
        volume = label if label.ndim == 3 else label[None]
        nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(volume.T, dtype=np.uint8), np.eye(4)),
                     folder / "labelsTr" / f"case_{i:03d}.nii.gz")
    description = {"channel_names": {str(c): f"channel{c}" for c in range(train.images[0].shape[0])},
                   "labels": {"background": 0, **{f"class{k}": k for k in range(1, classes)}},
                   "numTraining": len(train), "file_ending": ".nii.gz"}
    (folder / "dataset.json").write_text(json.dumps(description))


def nnunet_plans(train: Split, classes: int, dim: int) -> tuple[dict, dict]:
    """(the chosen configuration of nnUNetPlans.json, the whole plans) for ``train``."""
    with tempfile.TemporaryDirectory(prefix="dig-nnunet-") as root:
        name = f"Dataset{DATASET_ID}_dig"
        export_raw(train, classes, Path(root) / "raw" / name)
        environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run([sys.executable, "-m", "dig.tracks.segmentation.nnunet_planning", root, str(DATASET_ID)],
                              capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            hint = f"; install it: {INSTALL}" if "No module named" in done.stderr else ""
            raise RuntimeError(f"nnU-Net's planner failed ({' | '.join(tail)}){hint}")
        plans = json.loads((Path(root) / "preprocessed" / name / "nnUNetPlans.json").read_text())
    configuration = plans["configurations"]["2d" if dim == 2 else "3d_fullres"]
    return configuration, plans


def build_planned_network(architecture: dict, in_channels: int, classes: int) -> nn.Module:
    """The plans' ``dynamic_network_architectures`` network (as nnunetv2's ``get_network_from_plans``)."""
    kwargs = dict(architecture["arch_kwargs"])
    for key in architecture["_kw_requires_import"]:
        if kwargs[key] is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    network_class = pydoc.locate(architecture["network_class_name"])
    if network_class is None:
        raise RuntimeError(f"nnU-Net planned {architecture['network_class_name']}, which is not importable; {INSTALL}")
    network = network_class(input_channels=in_channels, num_classes=classes, deep_supervision=False, **kwargs)
    if hasattr(network, "initialize"):
        network.apply(network.initialize)
    return network


class NNUNetSegmenter(LearnedSegmenter):
    def build_network(self, dim: int, in_channels: int, classes: int, width: int, depth: int, norm: str) -> nn.Module:
        self.in_channels = in_channels
        self.plan: dict = {}
        self.normalisers: list = []
        return nn.Identity()  # replaced by the planned network in ``configure``

    def configure(self, train: Split) -> None:
        from nnunetv2.preprocessing.normalization import default_normalization_schemes as schemes

        configuration, plans = nnunet_plans(train, self.classes, self.dim)
        patch = list(configuration["patch_size"])
        self.patch = tuple(patch[-self.dim:])
        self.batch = int(configuration["batch_size"])
        self.network = build_planned_network(configuration["architecture"], self.in_channels, self.classes)
        intensities = plans.get("foreground_intensity_properties_per_channel", {})
        self.normalisers = [getattr(schemes, scheme)(use_mask_for_norm=False, intensityproperties=intensities.get(str(c), {}))
                            for c, scheme in enumerate(configuration["normalization_schemes"])]
        self.plan = {"patch_size": list(self.patch), "batch_size": self.batch,
                     "network": configuration["architecture"]["network_class_name"].rsplit(".", 1)[-1],
                     "features_per_stage": configuration["architecture"]["arch_kwargs"].get("features_per_stage"),
                     "strides": configuration["architecture"]["arch_kwargs"].get("strides"),
                     "normalization_schemes": configuration["normalization_schemes"]}

    def normalise(self, image: np.ndarray) -> np.ndarray:
        if not self.normalisers:
            raise RuntimeError("nnunet normalises as its plan says; fit it (which plans) before predicting")
        return np.stack([normaliser.run(channel.astype(np.float32, copy=True))
                         for normaliser, channel in zip(self.normalisers, image, strict=True)]).astype(np.float32)

    def fit(self, train: Split, val: Split, seed: int, on_epoch=None) -> dict:
        history = super().fit(train, val, seed, on_epoch)
        history["nnunet_plan"] = self.plan
        return history
