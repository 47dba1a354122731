"""The image half of the ssl track: simulator, masks, losses, GVTOs, metrics, loaders and a smoke bench."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from conftest import run_dig

from dig.data.fluo_sim import Camera, add_camera_noise, simulate
from dig.errors import DataError
from dig.nn.gvto import DownSamplingGVTO, GVTNet, SizePreservingGVTO, UpSamplingGVTO
from dig.nn.unet import UNet
from dig.tracks.ssl.denoising.datasets import (
    NATURAL_TEST,
    NATURAL_TRAIN,
    NATURAL_VAL,
    CareTask,
    read_care_folder,
)
from dig.tracks.ssl.denoising.masking import (
    donut_fill,
    gaussian_fill,
    grid_mask,
    stratified_mask,
    uniform_pixel_manipulation,
)
from dig.tracks.ssl.denoising.metrics import denoising_scores
from dig.tracks.ssl.denoising.noise2same import noise2same_loss

pytest.importorskip("skimage")


@pytest.mark.parametrize("level, photons, read", [(0.5, 30.0, 1.0), (0.1, 6.0, 1.0), (0.8, 12.0, 3.0)])
def test_camera_noise_has_the_poisson_plus_gaussian_mean_and_variance(level, photons, read):
    clean = np.full((400, 500), level, dtype=np.float32)
    noisy = add_camera_noise(clean, Camera("c", photons, read), np.random.default_rng(0))
    expected_var = level / photons + (read / photons) ** 2
    standard_error = np.sqrt(expected_var / noisy.size)
    assert abs(noisy.mean() - level) < 5 * standard_error
    assert noisy.var() == pytest.approx(expected_var, rel=0.02)


@pytest.mark.parametrize("shape", [(96, 96), (16, 40, 40)])
def test_simulator_is_deterministic_and_its_masks_match_its_images(shape):
    camera = Camera("C0", 30.0, 1.0)
    a, b = simulate(shape, camera, seed=3, count=6, radius=(4.0, 8.0)), simulate(shape, camera, 3, 6, (4.0, 8.0))
    assert np.array_equal(a.noisy, b.noisy) and np.array_equal(a.instances, b.instances)
    assert not np.array_equal(a.noisy, simulate(shape, camera, 4, 6, (4.0, 8.0)).noisy)
    count = int(a.instances.max())
    assert count >= 3 and set(np.unique(a.instances)) == set(range(count + 1))
    inside, outside = a.clean[a.instances > 0].mean(), a.clean[a.instances == 0].mean()
    assert inside > 0.3 > 0.15 > outside  # nuclei 0.4..0.8 bright over a 0.05 background, blurred
    assert a.clean.min() >= 0.05 - 1e-6


def test_stratified_mask_puts_one_pixel_in_every_box():
    mask = stratified_mask((3, 1, 40, 40), percent=1.0, generator=torch.Generator().manual_seed(0))
    boxes = mask.view(3, 1, 4, 10, 4, 10).sum(dim=(3, 5))  # box side sqrt(100 / 1) = 10
    assert torch.equal(boxes, torch.ones_like(boxes))


def test_uniform_pixel_manipulation_changes_only_masked_pixels_to_a_neighbour_other_than_itself():
    x = torch.arange(2 * 30 * 30, dtype=torch.float32).view(2, 1, 30, 30)  # every value unique
    generator = torch.Generator().manual_seed(1)
    mask = stratified_mask(x.shape, 2.0, generator)
    out = uniform_pixel_manipulation(x, mask, generator)
    assert torch.equal(out[~mask], x[~mask])
    for b, _, i, j in mask.nonzero().tolist():
        source = (out[b, 0, i, j] == x[b, 0]).nonzero()
        assert len(source) == 1
        di, dj = (source[0] - torch.tensor([i, j])).abs().tolist()
        # within the 5x5 window (reflected at the border) and never the pixel itself
        assert (di, dj) != (0, 0) and max(di, dj) <= 4 and (max(di, dj) <= 2 or min(i, j, 29 - i, 29 - j) < 2)


def test_grid_masks_partition_the_image_and_donut_fill_averages_the_neighbours():
    shape = (1, 1, 12, 12)
    masks = torch.stack([grid_mask(shape, 4, phase) for phase in range(16)])
    assert torch.equal(masks.sum(0), torch.ones(shape, dtype=torch.long))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    mask = grid_mask(shape, 4, 5)  # rows = 1 mod 4, columns = 1 mod 4
    filled = donut_fill(x, mask)
    assert torch.equal(filled[~mask], x[~mask])
    window = x[0, 0, 4:7, 4:7]
    assert filled[0, 0, 5, 5].item() == pytest.approx(((window.sum() - window[1, 1]) / 8).item(), rel=1e-6)
    noise = gaussian_fill(x, mask, torch.Generator().manual_seed(3), sigma=0.2)
    assert torch.equal(noise[~mask], x[~mask]) and not torch.equal(noise[mask], x[mask])


def test_noise2same_loss_on_a_hand_computed_case():
    noisy = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    output = torch.tensor([[[[1.5, 2.0], [2.0, 4.0]]]])
    masked_output = torch.tensor([[[[0.5, 2.0], [2.0, 1.0]]]])
    mask = torch.tensor([[[[True, False], [False, True]]]])
    # reconstruction: (0.25 + 0 + 1 + 0) / 4; invariance on J = {(0,0), (1,1)}: (1 + 9) / 2
    expected = 1.25 / 4 + 2.0 * np.sqrt(5.0)
    assert noise2same_loss(output, masked_output, noisy, mask).item() == pytest.approx(expected)


@pytest.mark.parametrize("dim", [2, 3])
def test_gvto_shapes_and_their_attention_is_global(dim):
    torch.manual_seed(0)
    side = 8
    x = torch.randn(1, 4, *([side] * dim))
    assert SizePreservingGVTO(dim, 4)(x).shape == x.shape
    assert DownSamplingGVTO(dim, 4)(x).shape == (1, 8, *([side // 2] * dim))
    assert UpSamplingGVTO(dim, 4)(x).shape == (1, 2, *([side * 2] * dim))
    for block in (SizePreservingGVTO(dim, 4), DownSamplingGVTO(dim, 4), UpSamplingGVTO(dim, 4)):
        block.eval()
        changed = x.clone()
        changed[(0, slice(None), *([0] * dim))] += 5.0  # one corner voxel
        delta = (block(changed) - block(x)).abs().amax(dim=1)
        assert (delta > 0).all(), f"{type(block).__name__}: a voxel did not see the change"
    conv = torch.nn.Conv2d(4, 4, 3, padding=1) if dim == 2 else torch.nn.Conv3d(4, 4, 3, padding=1)
    corner = x.clone()
    corner[(0, slice(None), *([0] * dim))] += 5.0
    assert ((conv(corner) - conv(x)).abs().amax(dim=1) == 0).any()  # a convolution is local
    net = GVTNet(dim=dim, width=4, depth=2).eval()
    volume = torch.randn(2, 1, *([12] * dim))
    assert net(volume).shape == volume.shape and UNet(dim=dim, width=4, depth=2)(volume).shape == volume.shape


def test_psnr_and_ssim_on_known_pairs():
    reference = np.random.default_rng(0).uniform(0, 1, (64, 64))
    scores = denoising_scores([reference + 0.1], [reference], data_range=1.0)
    assert scores["psnr_dB"] == pytest.approx(20.0)  # MSE 0.01 at range 1
    assert denoising_scores([reference], [reference], 1.0)["ssim_index"] == pytest.approx(1.0)
    halved = denoising_scores([reference * 255 + 2.55 * 10], [reference * 255], data_range=255.0)
    assert halved["psnr_dB"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="shape"):
        denoising_scores([reference[:10]], [reference], 1.0)


def test_natural_gray_splits_share_no_image():
    import hashlib

    from dig.tracks.ssl.denoising.datasets import _gray

    digests = {name: hashlib.sha256(_gray(name).tobytes()).hexdigest() for name in
               (*NATURAL_TRAIN, *NATURAL_VAL, *NATURAL_TEST)}
    assert len(set(digests.values())) == len(digests)


def _write_care(root, names, shape=(20, 24), gt_shape=None):
    import tifffile

    rng = np.random.default_rng(0)
    for folder in ("low", "GT"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in names:
        clean = rng.uniform(0, 100, shape).astype(np.float32)
        tifffile.imwrite(root / "GT" / name, clean if gt_shape is None else clean[: gt_shape[0]])
        tifffile.imwrite(root / "low" / name, (clean + rng.normal(0, 10, shape)).astype(np.float32))


def test_care_loader_reads_pairs_and_names_every_fault(tmp_path):
    names = [f"img_{i:02d}.tif" for i in range(6)]
    _write_care(tmp_path / "ok", names)
    read_names, low, gt = read_care_folder(tmp_path / "ok")
    assert read_names == names and low[0].shape == gt[0].shape == (20, 24)
    task = CareTask("care-fixture")
    task.prepare(tmp_path / "ok")
    loaded = task.load()
    assert len(loaded.train_noisy) == 4 and len(loaded.val_noisy) == 1 and len(loaded.test["all"][0]) == 1
    assert np.array_equal(loaded.test["all"][1][0], gt[-1])

    _write_care(tmp_path / "shape", names[:3], gt_shape=(10, 24))
    with pytest.raises(DataError, match="img_00.tif: low/ has shape"):
        read_care_folder(tmp_path / "shape")
    _write_care(tmp_path / "missing", names[:3])
    (tmp_path / "missing" / "GT" / names[1]).unlink()
    with pytest.raises(DataError, match="img_01.tif lack a counterpart in GT/"):
        read_care_folder(tmp_path / "missing")
    _write_care(tmp_path / "broken", names[:3])
    (tmp_path / "broken" / "low" / names[2]).write_bytes(b"not a tiff")
    with pytest.raises(DataError, match="img_02.tif is not a readable TIFF"):
        read_care_folder(tmp_path / "broken")
    with pytest.raises(DataError, match="low is not a CARE folder"):
        read_care_folder(tmp_path / "broken" / "low")


def test_bench_ssl_smoke_on_an_image_dataset(tmp_path):
    out = tmp_path / "results"
    run = run_dig("bench", "--track", "ssl", "--budget", "smoke", "--seeds", "0", "--datasets",
                  "fluo-sim-2d,stardist-nuclei", "--models", "noise2same,noise2true,noisy-input", "--out", str(out),
                  "--quiet", "--workers", "1", cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [r for r in csv.DictReader(open(out / "ssl.csv")) if r["dataset"] == "fluo-sim-2d"]
    values = {(r["model"], r["metric"]): float(r["value"]) for r in rows}
    for model in ("noise2same", "noise2true", "noisy-input"):
        for metric in ("psnr_dB", "ssim_index", "psnr_C0_dB", "psnr_C2_dB"):
            assert (model, metric) in values
    # the input's own PSNR falls with the photon count: 30, 12, 6 photons
    assert values["noisy-input", "psnr_C0_dB"] > values["noisy-input", "psnr_C1_dB"] > values["noisy-input", "psnr_C2_dB"]
    records = [json.loads(path.read_text()) for path in (out / "ssl").glob("*.json")]
    assert len(records) == 6 and all(r["extra"]["inference_ms_per_image"] > 0 for r in records)
    # the real image is scored by the fluo-sim-2d fit of the same bench (one worker: fluo-sim-2d runs first)
    assert {(r["dataset"], r["extra"]["training_reused"]) for r in records} == {("fluo-sim-2d", False),
                                                                                ("stardist-nuclei", True)}
    fits = {(r["dataset"], r["model"]): r["extra"]["history"] for r in records}
    assert fits["stardist-nuclei", "noise2same"] == fits["fluo-sim-2d", "noise2same"]
    assert all(r["extra"]["figure_condition"] == "C2" for r in records)  # the noisiest camera is pictured
    picture = out / "figures" / "ssl" / "fluo-sim-2d" / "noise2same.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    published = run_dig("leaderboard", "publish", "--dir", str(out), cwd=tmp_path)  # --out is laid out as a board
    assert published.returncode == 0, published.stderr
    page = (out / "README.md").read_text()
    assert "noise2same (noisy · denoised · clean, central 128^2 crop" in page
    assert "![noise2same](figures/ssl/stardist-nuclei/noise2same.png)" in page


def test_seed_independent_rows_are_scored_once_per_bench_and_recorded_for_every_seed(tmp_path):
    out = tmp_path / "results"
    run = run_dig("bench", "--track", "ssl", "--budget", "smoke", "--seeds", "0,1", "--datasets", "fluo-sim-2d",
                  "--models", "nlm,noisy-input", "--out", str(out), "--quiet", cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(path.read_text()) for path in (out / "ssl").glob("*.json")]
    for model in ("nlm", "noisy-input"):
        pair = sorted((r for r in records if r["model"] == model), key=lambda r: r["seed"])
        assert [r["seed"] for r in pair] == [0, 1]
        assert sorted(r["extra"]["scores_reused"] for r in pair) == [False, True]
        assert pair[0]["metrics"] == pair[1]["metrics"]


def test_denoising_figure_puts_noisy_denoised_and_clean_on_one_display_range():
    import base64
    import io

    from PIL import Image

    from dig.tracks.ssl.track import denoising_figure

    clean = np.zeros((200, 300), np.float32)
    clean[:, 150:] = 1.0
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(denoising_figure(clean + 0.5, clean, clean, 2)))))
    assert picture.shape == (128, 3 * 128 + 8, 3)
    noisy_panel, clean_panel = picture[:, :128, 0], picture[:, -128:, 0]
    assert clean_panel[0, 0] == 0 and clean_panel[0, -1] == 255
    assert noisy_panel[0, 0] == 127  # 0.5 above the clean range's black: the same scale, not re-stretched


@pytest.mark.parametrize("method", ["noise2same", "noise2void", "noise2self", "gvtnet"])
def test_learned_denoisers_train_on_the_3d_simulator_and_keep_the_volume_shape(method):
    from dig.tracks.ssl.denoising.datasets import FluoSimTask
    from dig.tracks.ssl.denoising.gvtnet import GVTNetDenoiser
    from dig.tracks.ssl.denoising.noise2same import Noise2Same
    from dig.tracks.ssl.denoising.noise2self import Noise2Self
    from dig.tracks.ssl.denoising.noise2void import Noise2Void

    task = FluoSimTask(3).load()
    cls = {"noise2same": Noise2Same, "noise2void": Noise2Void, "noise2self": Noise2Self, "gvtnet": GVTNetDenoiser}[method]
    model = cls(dim=3, width=4, depth=2, patch=16, batch=2, steps=2, eval_every=1, validation_patches=2)
    extra = {"clean": task.train_clean, "val_clean": task.val_clean} if model.uses_clean else {}
    history = model.fit(task.train_noisy, 0, val_noisy=task.val_noisy, **extra)
    assert len(history["val_loss"]) == 2 and np.isfinite(history["val_loss"]).all()
    volume = task.test["C1"][0][0]
    assert volume.shape == (32, 64, 64) and model.denoise(volume).shape == volume.shape


def test_a_learned_denoiser_gives_the_same_numbers_for_the_same_seed():
    from dig.tracks.ssl.denoising.datasets import FluoSimTask
    from dig.tracks.ssl.denoising.noise2same import Noise2Same

    task = FluoSimTask(2).load()
    outputs = []
    for seed in (4, 4, 5):
        model = Noise2Same(dim=2, width=4, depth=2, patch=32, batch=2, steps=3, eval_every=3, validation_patches=2)
        model.fit(task.train_noisy[:6], seed, val_noisy=task.val_noisy[:1])
        outputs.append(model.denoise(task.test["C0"][0][0]))
    assert np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[0], outputs[2])


def test_nan_images_and_nan_losses_name_the_method_and_the_fix():
    from dig.tracks.ssl.denoising.noise2void import Noise2Void

    images = [np.ones((40, 40), dtype=np.float32), np.full((40, 40), np.nan, dtype=np.float32)]
    model = Noise2Void(dim=2, width=4, depth=1, patch=32, batch=2, steps=3, eval_every=3, validation_patches=2)
    with pytest.raises(ValueError, match="Noise2Void: training image 1 holds NaN or inf pixels"):
        model.fit(images, 0, val_noisy=images[:1])
    model.lr = float("inf")  # a diverging optimiser: the loss turns NaN inside training
    with pytest.raises(FloatingPointError, match="Noise2Void: the training loss became nan at step 2; check the images"):
        model.fit(images[:1], 0, val_noisy=images[:1])


def test_tiled_prediction_covers_every_pixel_and_matches_whole_image_prediction_for_a_local_net():
    from dig.tracks.ssl.denoising.noise2true import Noise2True

    torch.manual_seed(0)
    model = Noise2True(dim=2, width=4, depth=1, norm="none", tile=32)
    model.network = torch.nn.Conv2d(1, 1, 1)  # pointwise: tiles cannot change the result
    image = np.random.default_rng(0).normal(size=(70, 45)).astype(np.float32)
    tiled = model.denoise(image)
    model.tile = None
    assert tiled.shape == image.shape and np.allclose(tiled, model.denoise(image), atol=1e-6)
