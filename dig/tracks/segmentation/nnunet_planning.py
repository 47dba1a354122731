"""Run nnU-Net's own planning on a dataset in its raw layout, in a process of its own:
``python -m dig.tracks.segmentation.nnunet_planning ROOT DATASET_ID``.

nnU-Net reads its folders (``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``) from the environment
when it is first imported and extracts the fingerprint in a spawned process pool, so it runs here, never
inside a bench worker: ``ROOT/raw/DatasetNNN_*`` in, ``ROOT/preprocessed/DatasetNNN_*/nnUNetPlans.json`` out.
"""

from __future__ import annotations

import os
import sys


def plan(root: str, dataset_id: int) -> None:
    for name, folder in (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "preprocessed"), ("nnUNet_results", "results")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        os.environ[name] = os.path.join(root, folder)
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

    extractor = DatasetFingerprintExtractor(dataset_id, num_processes=1, verbose=False)
    extractor.show_progress_bar = False
    extractor.run(overwrite_existing=True)
    ExperimentPlanner(dataset_id).plan_experiment()


if __name__ == "__main__":
    plan(sys.argv[1], int(sys.argv[2]))
