"""The segmentation track: simulator masks, real stardist files, metrics on hand-made masks, box prompts,
the MSD and image/mask loaders on canonical-format fixtures, the models, and a smoke bench through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_dig

from dig.data.fluo_sim import Camera, simulate
from dig.data.stardist_nuclei import stardist_image, stardist_instances
from dig.errors import DataError
from dig.tracks.segmentation.datasets import FluoNucleiTask, MonaiSynthetic3DTask, StardistNucleiTask
from dig.tracks.segmentation.files import FileSegmentationTask, msd_classes, read_mask_folder, read_msd_folder
from dig.tracks.segmentation.learned import standardise
from dig.tracks.segmentation.metrics import box_dice, instance_scores, instances_from_labels, semantic_scores
from dig.tracks.segmentation.monai_unet import MonaiUNetSegmenter
from dig.tracks.segmentation.otsu import OtsuThreshold
from dig.tracks.segmentation.protocol import Split
from dig.tracks.segmentation.track import instance_boxes, jitter_boxes, masks_to_maps
from dig.tracks.segmentation.unet import UNetSegmenter

BINARY = ("background", "nucleus")


def square(shape, top, left, size, value=1, out=None):
    out = np.zeros(shape, dtype=np.int64) if out is None else out
    out[top:top + size[0], left:left + size[1]] = value
    return out


# --- data --------------------------------------------------------------------------------------------------

def test_simulated_masks_match_their_images():
    scene = simulate((96, 96), Camera("C1", 12.0, 1.0), seed=5, count=8)
    inside, outside = scene.clean[scene.instances > 0], scene.clean[scene.instances == 0]
    assert 4 <= scene.instances.max() <= 8 and set(np.unique(scene.instances)) == set(range(scene.instances.max() + 1))
    # every nucleus is brighter than the background far from any nucleus (the PSF blurs only the rim)
    from scipy import ndimage
    far = ~ndimage.binary_dilation(scene.instances > 0, iterations=6)
    for k in range(1, scene.instances.max() + 1):
        assert scene.clean[scene.instances == k].mean() > scene.clean[far].mean() + 0.2
    assert inside.mean() > 3 * outside.mean()


def test_fluo_nuclei_task_labels_are_the_instances_foreground_and_splits_differ():
    task = FluoNucleiTask(2).load()
    assert (len(task.train), len(task.val), len(task.test)) == (24, 3, 9)
    for split in (task.train, task.val, task.test):
        for image, label, instance in zip(split.images, split.labels, split.instances, strict=True):
            assert image.shape == (1, 128, 128) and image.dtype == np.float32
            assert np.array_equal(label, instance > 0)
    train = {image.tobytes() for image in task.train.images}
    assert not train & {image.tobytes() for image in task.test.images + task.val.images}


def test_stardist_real_image_and_its_125_annotated_nuclei():
    image, instances = stardist_image(), stardist_instances()
    assert image.shape == instances.shape == (512, 512)
    assert len(np.unique(instances)) - 1 == 125
    task = StardistNucleiTask().load()
    assert task.external_test and len(task.test) == 1 and np.array_equal(task.test.instances[0], instances)
    # nuclei are brighter than background on the real image too
    assert image[instances > 0].mean() > 2 * image[instances == 0].mean()


def test_monai_synthetic_volumes_are_fixed_by_seed_and_hold_three_classes():
    task = MonaiSynthetic3DTask().load()
    again = MonaiSynthetic3DTask().load()
    assert np.array_equal(task.test.images[0], again.test.images[0])
    assert task.classes == ("background", "class-1", "class-2", "class-3") and task.dim == 3
    assert set(np.unique(np.concatenate([label.ravel() for label in task.train.labels]))) == {0, 1, 2, 3}


# --- metrics -----------------------------------------------------------------------------------------------

def test_dice_iou_hd95_nsd_on_hand_made_masks():
    truth = square((20, 20), 2, 2, (6, 6))
    shifted = square((20, 20), 2, 3, (6, 5))  # 30 of the 36 truth pixels, nothing outside
    scores = semantic_scores([shifted], [truth], BINARY)
    assert scores["dice_frac"] == pytest.approx(60 / 66, abs=1e-6)
    assert scores["iou_frac"] == pytest.approx(30 / 36, abs=1e-6)
    assert scores["hd95_px"] == pytest.approx(1.0)  # the left edge moved by one pixel
    assert scores["nsd2px_frac"] == pytest.approx(1.0)  # every surface point within the 2-pixel tolerance
    perfect = semantic_scores([truth], [truth], BINARY)
    assert perfect["dice_frac"] == 1.0 and perfect["hd95_px"] == 0.0


def test_an_empty_prediction_scores_zero_and_the_image_diagonal():
    truth = square((30, 40), 5, 5, (5, 5))
    scores = semantic_scores([np.zeros_like(truth)], [truth], BINARY)
    assert scores["dice_frac"] == 0.0 and scores["nsd2px_frac"] == 0.0
    assert scores["hd95_px"] == pytest.approx(50.0)  # sqrt(30^2 + 40^2)


def test_per_class_dice_and_absent_classes_are_left_out_of_the_mean():
    truth = square((20, 20), 10, 10, (5, 5), value=2, out=square((20, 20), 2, 2, (6, 6)))
    prediction = square((20, 20), 10, 10, (5, 6), value=2, out=square((20, 20), 2, 2, (6, 6)))
    scores = semantic_scores([prediction], [truth], ("background", "a", "b c", "never"))
    assert scores["dice_a_frac"] == 1.0
    assert scores["dice_b-c_frac"] == pytest.approx(50 / 55, abs=1e-6)
    assert "dice_never_frac" not in scores  # absent from every truth and prediction: no score, never NaN
    assert all(math.isfinite(value) for value in scores.values())
    assert scores["dice_frac"] == pytest.approx((1 + 50 / 55) / 2, abs=1e-6)


def test_instance_ap50_and_panoptic_quality_by_hand():
    truth = square((30, 30), 20, 20, (5, 5), value=2, out=square((30, 30), 2, 2, (6, 6)))
    prediction = square((30, 30), 2, 3, (6, 5))  # IoU 30/36 with nucleus 1; nucleus 2 missed
    scores = instance_scores([prediction], [truth])
    assert scores["ap50_frac"] == pytest.approx(1 / 2)  # TP / (TP + FP + FN) = 1 / (1 + 0 + 1)
    assert scores["pq_frac"] == pytest.approx((30 / 36) * (1 / 1.5), abs=1e-6)  # SQ x RQ, RQ = TP / (TP + FP/2 + FN/2)


def test_connected_components_number_instances_across_classes():
    labels = square((12, 12), 6, 6, (3, 3), value=2, out=square((12, 12), 0, 0, (2, 2)))
    labels[0, 5] = 1
    instances = instances_from_labels(labels)
    assert instances.max() == 3 and set(np.unique(instances[labels == 2])) == {3}


# --- box prompts -------------------------------------------------------------------------------------------

def test_box_prompts_are_the_tight_boxes_of_the_instances():
    instances = square((20, 30), 12, 20, (3, 7), value=2, out=square((20, 30), 2, 4, (5, 6)))
    ids, boxes = instance_boxes(instances)
    assert ids == [1, 2] and boxes == [(2, 4, 7, 10), (12, 20, 15, 27)]
    masks = np.stack([instances == 1, np.zeros_like(instances, dtype=bool)])
    assert box_dice(masks, instances, ids) == [1.0, 0.0]
    semantic, instance_map = masks_to_maps(masks, instances.shape)
    assert np.array_equal(semantic, instances == 1) and instance_map.max() == 1


def test_jittered_boxes_stay_in_the_image_and_within_ten_percent():
    boxes = [(0, 0, 10, 20), (40, 50, 50, 60)]
    jittered = jitter_boxes(boxes, (50, 60), np.random.default_rng(0))
    for (a0, b0, a1, b1), (j0, k0, j1, k1) in zip(boxes, jittered, strict=True):
        assert 0 <= j0 < j1 <= 50 and 0 <= k0 < k1 <= 60
        assert abs(j0 - a0) <= 1 + 0.1 * (a1 - a0) and abs(k1 - b1) <= 1 + 0.1 * (b1 - b0)
    assert jittered != boxes


# --- loaders on canonical-format fixtures ------------------------------------------------------------------

def write_msd(root, cases=4, labels=None, shape=(12, 10, 8), modalities=1):
    import nibabel

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    rng = np.random.default_rng(0)
    for i in range(cases):
        name = f"heart_{i:03d}.nii.gz"
        image = rng.normal(size=shape + ((modalities,) if modalities > 1 else ())).astype(np.float32)
        label = np.zeros(shape, dtype=np.uint8)
        label[2:6, 3:7, 1:5] = 1
        nibabel.save(nibabel.Nifti1Image(image, np.eye(4)), root / "imagesTr" / name)
        nibabel.save(nibabel.Nifti1Image(label, np.eye(4)), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {"name": "Heart", "modality": {"0": "MRI"}, "labels": labels or {"0": "background", "1": "left atrium"},
            "numTraining": cases, "training": training, "test": []}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_msd_folder_is_read_with_its_classes_and_split_by_case(tmp_path):
    classes, names, images, labels = read_msd_folder(write_msd(tmp_path / "Task02_Heart", cases=6, modalities=2))
    assert classes == ("background", "left atrium") and names[0] == "heart_000"
    assert images[0].shape == (2, 12, 10, 8) and labels[0].shape == (12, 10, 8) and labels[0].dtype == np.int64
    task = FileSegmentationTask("msd-heart", "msd")
    task.prepare(tmp_path / "Task02_Heart")
    loaded = task.load()
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (4, 1, 1) and loaded.dim == 3
    assert loaded.in_channels == 2


def test_nnunet_v2_label_dictionaries_are_read_too():
    assert msd_classes({"background": 0, "edema": 1, "tumour": 2}, "x") == ("background", "edema", "tumour")
    with pytest.raises(DataError, match="0..K-1"):
        msd_classes({"0": "background", "2": "gap"}, "x")


def test_msd_bad_files_name_themselves_and_keep_the_prepared_copy(tmp_path):
    import nibabel

    task = FileSegmentationTask("msd-heart", "msd")
    task.prepare(write_msd(tmp_path / "good"))
    before = task.load()

    wrong_shape = write_msd(tmp_path / "shape")
    nibabel.save(nibabel.Nifti1Image(np.zeros((12, 10, 7), np.uint8), np.eye(4)), wrong_shape / "labelsTr" / "heart_002.nii.gz")
    with pytest.raises(DataError, match=r"heart_002.nii.gz has shape \(12, 10, 7\)"):
        task.prepare(wrong_shape)

    outside = write_msd(tmp_path / "outside")
    label = np.zeros((12, 10, 8), np.uint8)
    label[0, 0, 0] = 3
    nibabel.save(nibabel.Nifti1Image(label, np.eye(4)), outside / "labelsTr" / "heart_001.nii.gz")
    with pytest.raises(DataError, match=r"heart_001.nii.gz holds label value\(s\) \[3\] outside the declared classes"):
        task.prepare(outside)

    broken = write_msd(tmp_path / "broken")
    (broken / "imagesTr" / "heart_003.nii.gz").write_bytes(b"not a nifti file")
    with pytest.raises(DataError, match="heart_003.nii.gz is not a readable NIfTI"):
        task.prepare(broken)

    task._task = None
    after = task.load()
    assert len(after.train) == len(before.train) and np.array_equal(after.test.images[0], before.test.images[0])


def write_mask_folder(root, count=4, instances=False, classes=None):
    import imageio.v3 as iio

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        image = np.full((16, 20), 10 * i, dtype=np.uint8)
        mask = square((16, 20), 3, 3, (4, 4), value=1)
        if instances:
            mask = square((16, 20), 10, 10, (3, 3), value=7, out=mask)
        image[mask > 0] = 200
        iio.imwrite(root / "images" / f"cell_{i}.png", image)
        iio.imwrite(root / "masks" / f"cell_{i}.png", mask.astype(np.uint8))
    if instances or classes:
        (root / "classes.json").write_text(json.dumps({"instances": True} if instances else classes))
    return root


def test_image_mask_folder_semantic_and_instance_masks(tmp_path):
    classes, names, images, masks, instances = read_mask_folder(write_mask_folder(tmp_path / "semantic"))
    assert classes == ("background", "foreground") and not instances
    assert names == ["cell_0", "cell_1", "cell_2", "cell_3"] and images[0].shape == (1, 16, 20)
    task = FileSegmentationTask("image-mask-folder", "masks")
    task.prepare(write_mask_folder(tmp_path / "objects", instances=True))
    loaded = task.load()
    assert loaded.test.instances is not None and set(np.unique(loaded.test.instances[0])) == {0, 1, 7}
    assert set(np.unique(loaded.test.labels[0])) == {0, 1}


def test_image_mask_folder_refuses_undeclared_labels_and_mismatched_pairs(tmp_path):
    import imageio.v3 as iio

    root = write_mask_folder(tmp_path / "undeclared")
    iio.imwrite(root / "masks" / "cell_2.png", np.full((16, 20), 2, np.uint8))
    with pytest.raises(DataError, match=r"cell_2.png holds label value\(s\) \[2\] outside the declared classes"):
        read_mask_folder(root)
    root = write_mask_folder(tmp_path / "shape")
    iio.imwrite(root / "masks" / "cell_1.png", np.zeros((15, 20), np.uint8))
    with pytest.raises(DataError, match=r"cell_1.png has shape \(15, 20\) but its image has \(16, 20\)"):
        read_mask_folder(root)
    root = write_mask_folder(tmp_path / "unmatched")
    (root / "masks" / "cell_3.png").unlink()
    with pytest.raises(DataError, match="cell_3 lack a counterpart in masks/"):
        read_mask_folder(root)
    with pytest.raises(DataError, match="never-prepared is not prepared: dig data prepare never-prepared --track segmentation"):
        FileSegmentationTask("never-prepared", "masks").load()


# --- models ------------------------------------------------------------------------------------------------

def blobs(count: int, seed: int, shape=(32, 32)) -> Split:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(count):
        label = square(shape, *rng.integers(2, 18, 2), (10, 10))
        images.append((label + rng.normal(0, 0.3, shape)).astype(np.float32)[None])
        labels.append(label)
    return Split(images, labels, [label.astype(np.int32) for label in labels])


def test_otsu_chooses_its_smoothing_on_validation_and_segments_clear_blobs():
    otsu = OtsuThreshold(classes=2)
    history = otsu.fit(blobs(2, 0), blobs(3, 1), seed=0)
    assert history["sigma"] in (0.0, 1.0, 2.0) and set(history["val_dice_by_sigma"]) == {"0", "1", "2"}
    test = blobs(2, 2)
    scores = semantic_scores([otsu.predict(image).labels for image in test.images], test.labels, BINARY)
    assert scores["dice_frac"] > 0.9


def test_unet_training_is_deterministic_per_seed_and_beats_chance():
    train, val = blobs(6, 0), blobs(2, 1)
    runs = []
    for _ in range(2):
        model = UNetSegmenter(dim=2, classes=2, width=8, depth=1, patch=32, batch=4, steps=30, eval_every=10, lr=3e-3)
        history = model.fit(train, val, seed=3)
        runs.append(model.predict(val.images[0]).labels)
    assert np.array_equal(runs[0], runs[1])
    assert history["best_val_dice"] > 0.8 and len(history["val_dice"]) == 3


def test_monai_unet_wrapper_accepts_sides_not_divisible_by_its_strides():
    model = MonaiUNetSegmenter(dim=2, classes=3, width=4, depth=2)
    assert model.network(torch.zeros(1, 1, 30, 27)).shape == (1, 3, 30, 27)
    model3d = MonaiUNetSegmenter(dim=3, classes=2, width=4, depth=2)
    assert model3d.network(torch.zeros(1, 1, 10, 13, 9)).shape == (1, 2, 10, 13, 9)


def test_a_nan_training_image_is_refused_by_index():
    train = blobs(3, 0)
    train.images[1][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="training image 1 holds NaN"):
        UNetSegmenter(dim=2, classes=2, width=4, depth=1, steps=1).fit(train, blobs(1, 1), seed=0)


def test_standardise_is_per_channel_and_safe_on_constant_channels():
    image = np.stack([np.arange(12, dtype=np.float32).reshape(3, 4), np.full((3, 4), 5.0, np.float32)])
    out = standardise(image)
    assert out[0].mean() == pytest.approx(0, abs=1e-6) and out[0].std() == pytest.approx(1, abs=1e-5)
    assert np.all(out[1] == 0)


# --- end to end --------------------------------------------------------------------------------------------

def test_smoke_bench_writes_records_figures_a_published_page_and_trains_shared_training_once(tmp_path):
    out = tmp_path / "results"
    done = run_dig("bench", "--track", "segmentation", "--budget", "smoke", "--seeds", "0",
                   "--datasets", "fluo-nuclei-2d,stardist-nuclei", "--models", "unet,otsu", "--out", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "hd95_px ↓" in done.stdout and "dice_frac ↑" in done.stdout
    rows = (out / "segmentation.csv").read_text().splitlines()
    metrics = {row.split(",")[7] for row in rows[1:]}
    assert {"dice_frac", "iou_frac", "hd95_px", "nsd2px_frac", "ap50_frac", "pq_frac", "inference_ms"} <= metrics
    picture = out / "figures" / "segmentation" / "stardist-nuclei" / "otsu.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(path.read_text()) for path in (out / "segmentation").glob("*.json")]
    records = {(r["dataset"], r["model"]): r for r in records}
    for model in ("unet", "otsu"):  # one of the two jobs trains (whichever takes the fit's lock first), one loads
        assert sorted(records[dataset, model]["extra"]["training_reused"]
                      for dataset in ("fluo-nuclei-2d", "stardist-nuclei")) == [False, True]
    assert records["stardist-nuclei", "unet"]["train_s"] == records["fluo-nuclei-2d", "unet"]["train_s"]
    alone = tmp_path / "alone"  # the real image scored by a U-Net trained in its own bench: the same numbers
    done = run_dig("bench", "--track", "segmentation", "--budget", "smoke", "--seeds", "0",
                   "--datasets", "stardist-nuclei", "--models", "unet", "--out", str(alone))
    assert done.returncode == 0, done.stderr + done.stdout
    [trained_alone] = [json.loads(path.read_text()) for path in (alone / "segmentation").glob("*.json")]
    assert trained_alone["extra"]["training_reused"] is False
    scores = {m["name"]: m["value"] for m in records["stardist-nuclei", "unet"]["metrics"] if m["unit"] != "ms"}
    assert scores == {m["name"]: m["value"] for m in trained_alone["metrics"] if m["unit"] != "ms"}
    board = tmp_path / "board"
    board.mkdir()
    (board / "segmentation.csv").write_text((out / "segmentation.csv").read_text())
    (board / "figures").mkdir()
    import shutil
    shutil.copytree(out / "figures" / "segmentation", board / "figures" / "segmentation")
    published = run_dig("leaderboard", "publish", "--dir", str(board))
    assert published.returncode == 0, published.stderr
    assert "![otsu](figures/segmentation/stardist-nuclei/otsu.png)" in (board / "README.md").read_text()
    assert "otsu (image · truth outlines (green) · prediction outlines (magenta)" in (board / "README.md").read_text()
    assert "src='figures/segmentation/stardist-nuclei/unet.png'" in (board / "index.html").read_text()


# --- nnU-Net's plan and MedSAM-lite ------------------------------------------------------------------------

def test_nnunet_plan_is_read_back_from_nnunets_own_planner_for_a_fixture_dataset():
    from dig.tracks.segmentation.nnunet import NNUNetSegmenter, build_planned_network, nnunet_plans

    rng = np.random.default_rng(0)
    labels = []
    for i in range(4):
        label = np.zeros((24, 40, 32), dtype=np.int64)
        label[4:14, 8 + i:20 + i, 6:18] = 1
        labels.append(label)
    train = Split([(label + rng.normal(0, 0.2, label.shape)).astype(np.float32)[None] for label in labels], labels)
    configuration, plans = nnunet_plans(train, classes=2, dim=3)
    assert plans["dataset_name"].startswith("Dataset") and configuration["normalization_schemes"] == ["ZScoreNormalization"]
    patch = configuration["patch_size"]
    assert len(patch) == 3 and all(p <= s for p, s in zip(patch, (24, 40, 32), strict=True))
    network = build_planned_network(configuration["architecture"], in_channels=1, classes=2)
    assert type(network).__name__ == configuration["architecture"]["network_class_name"].rsplit(".", 1)[-1]
    assert network(torch.zeros(1, 1, *patch)).shape == (1, 2, *patch)
    model = NNUNetSegmenter(dim=3, classes=2, steps=1, eval_every=1)
    history = model.fit(train, Split(train.images[:1], train.labels[:1]), seed=0)
    assert history["nnunet_plan"]["patch_size"] == patch and model.batch == configuration["batch_size"]
    assert model.predict(train.images[0]).labels.shape == (24, 40, 32)


def test_medsam_lite_uses_sams_decoder_without_torchvision_and_returns_one_mask_per_box():
    import sys

    from dig.tracks.segmentation.medsam_lite import MedSAMLite

    model = MedSAMLite(window=32, patch=8, embed=16, depth=1, heads=2, batch=2, boxes=2, steps=2, eval_every=1)
    assert "torchvision" not in sys.modules
    assert type(model.mask_decoder).__module__ == "segment_anything.modeling.mask_decoder"
    train = blobs(3, 0, shape=(40, 40))
    history = model.fit(train, blobs(1, 1, shape=(40, 40)), seed=0)
    assert history["steps"] == 2 and len(history["val_box_dice"]) == 2
    image = train.images[0]
    masks = model.predict_boxes(image, [(2, 2, 12, 12), (0, 0, 40, 40), (30, 30, 31, 31)])
    assert masks.shape == (3, 40, 40) and masks.dtype == bool
    again = MedSAMLite(window=32, patch=8, embed=16, depth=1, heads=2, batch=2, boxes=2, steps=2, eval_every=1)
    again.fit(train, blobs(1, 1, shape=(40, 40)), seed=0)
    assert np.array_equal(again.predict_boxes(image, [(2, 2, 12, 12)]), model.predict_boxes(image, [(2, 2, 12, 12)]))


def test_overlay_picture_shows_image_truth_and_prediction_at_a_readable_size():
    import base64
    import io

    from PIL import Image

    from dig.tracks.segmentation.overlay import overlay_png

    truth = np.zeros((48, 48, 48), dtype=np.int64)
    truth[10:30, 10:30, 10:30] = 1
    picture = Image.open(io.BytesIO(base64.b64decode(overlay_png(np.zeros((1, 48, 48, 48), np.float32), truth, truth))))
    assert picture.size == (3 * 144 + 8, 144)  # three panels of the middle slice, enlarged 3x, two 4-pixel gaps
    large = Image.open(io.BytesIO(base64.b64decode(overlay_png(np.zeros((1, 512, 512), np.float32),
                                                               np.zeros((512, 512), int), np.zeros((512, 512), int)))))
    assert large.size == (3 * 256 + 8, 256)
