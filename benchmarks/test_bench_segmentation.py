"""Segmentation speed and memory, in the same run: dig's U-Net and MONAI's ``UNet`` as the segmentation track
trains them (not the same computation: MONAI's UNet down-samples with its first, strided convolution, so it
convolves at full resolution only in its last up-sampling layer, where dig's U-Net runs two convolutions at
full resolution per side; ``test_bench_ssl_images.py`` compares dig's U-Net with the architecture-matched
``BasicUNet``) (the ``unet`` and ``monai`` rows: width 16, 2 down-samplings, batch norm, 2 classes, Dice + CE,
Adam), training throughput in patches of 64^2 per second (batch 8) and in patches of 32^3 (batch 2), and the
peak resident memory of training, each network in a fresh process; MedSAM-lite's inference ms per box prompt
(the default model: 128-pixel windows, ViT of 4 blocks x 64).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import RATIOS

from dig.tracks.segmentation.monai_unet import MonaiUNetSegmenter
from dig.tracks.segmentation.unet import UNetSegmenter

STEPS = 3
SHAPES = {2: (8, 64), 3: (2, 32)}  # dim -> (batch, patch side)

PEAK_MEMORY = """
import json, resource, sys, torch
from monai.losses import DiceCELoss
from dig.tracks.segmentation.{module} import {cls}
torch.set_num_threads(1)
dim, batch, patch = {dim}, {batch}, {patch}
net = {cls}(dim=dim, classes=2, width=16, depth=2).network
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.randn(batch, 1, *(patch,) * dim)
y = (x > 0).long()
loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
page = 4096
baseline_kb = int(open("/proc/self/statm").read().split()[1]) * page // 1024
for _ in range(3):
    loss = loss_fn(net(x), y); opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({{"peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024}}))
"""


def _trainer(model, dim: int):
    from monai.losses import DiceCELoss

    batch, patch = SHAPES[dim]
    net = model.network
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, *(patch,) * dim, generator=generator)
    y = (x > 0).long()
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    net.train()

    def run() -> None:
        for _ in range(STEPS):
            loss = loss_fn(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


@pytest.mark.parametrize("dim", [2, 3])
def test_segmentation_unet_training_throughput_vs_monai_unet(compare, dim):
    pytest.importorskip("monai")
    torch.manual_seed(0)
    ours = UNetSegmenter(dim=dim, classes=2, width=16, depth=2)
    reference = MonaiUNetSegmenter(dim=dim, classes=2, width=16, depth=2)
    batch, patch = SHAPES[dim]
    ours_s, reference_s, _ = compare(_trainer(ours, dim), _trainer(reference, dim), rounds=3, label="speedup_vs_monai",
                                     note=f"{dim}D training, {STEPS} steps of {batch} x {patch}^{dim}, params "
                                          f"{sum(p.numel() for p in ours.parameters()):,} vs "
                                          f"{sum(p.numel() for p in reference.parameters()):,}")
    patches = STEPS * batch
    RATIOS.append((f"segmentation_{dim}d_training", "dig_patches_per_s", patches / ours_s, "", "/s"))
    RATIOS.append((f"segmentation_{dim}d_training", "monai_patches_per_s", patches / reference_s, "", "/s"))


@pytest.mark.parametrize("dim", [2, 3])
def test_segmentation_unet_training_peak_memory_vs_monai_unet(benchmark, dim):
    pytest.importorskip("monai")
    batch, patch = SHAPES[dim]
    peaks = {}

    def measure() -> None:
        for name, module, cls in (("dig", "unet", "UNetSegmenter"), ("monai", "monai_unet", "MonaiUNetSegmenter")):
            script = PEAK_MEMORY.format(module=module, cls=cls, dim=dim, batch=batch, patch=patch)
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
            peaks[name] = json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"]

    benchmark.pedantic(measure, rounds=1, iterations=1)
    RATIOS.append((f"segmentation_{dim}d_training", "dig_peak_mb", peaks["dig"], "", " MB"))
    RATIOS.append((f"segmentation_{dim}d_training", "monai_peak_mb", peaks["monai"], "", " MB"))
    RATIOS.append((f"segmentation_{dim}d_training", "peak_memory_dig_over_monai", peaks["dig"] / peaks["monai"], "", "x"))
    assert peaks["dig"] > 0 and peaks["monai"] > 0


def test_medsam_lite_inference_ms_per_box(benchmark):
    from dig.tracks.segmentation.medsam_lite import MedSAMLite

    model = MedSAMLite(window=128, patch=8, embed=64, depth=4, heads=4)
    image = np.random.default_rng(0).normal(size=(1, 512, 512)).astype(np.float32)
    boxes = [(r, c, r + 18, c + 22) for r in range(20, 480, 120) for c in range(30, 480, 150)]
    benchmark.pedantic(model.predict_boxes, args=(image, boxes), rounds=3, iterations=1)
    RATIOS.append(("medsam_lite_inference", "ms_per_box", 1000 * benchmark.stats.stats.min / len(boxes), "", " ms"))
