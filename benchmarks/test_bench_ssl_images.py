"""U-Net speed, in the same run: ``dig.nn.UNet`` against MONAI's ``BasicUNet`` at equal widths.

Both are 2D, depth 4 (16, 32, 64, 128, 256 channels, last decoder 16), two 3x3 convolutions per level with
instance normalisation and ReLU, transposed-convolution up-sampling, concatenated skips, one output channel
(MONAI's ``BasicUNet(features=(16, 32, 64, 128, 256, 16), act="relu", upsample="deconv")``). Reported:
training throughput (patches of 64^2 per second, batch 8, MSE loss, Adam) and inference ms per 512^2 image.
"""

from __future__ import annotations

import pytest
import torch
from conftest import RATIOS

from dig.nn.unet import UNet

BATCH, PATCH, STEPS = 8, 64, 3


def _networks():
    monai_nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    ours = UNet(dim=2, width=16, depth=4, norm="instance")
    reference = monai_nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=1,
                                     features=(16, 32, 64, 128, 256, 16), act=("relu", {"inplace": True}),
                                     norm=("instance", {"affine": True}), upsample="deconv")
    return ours, reference


def _trainer(net: torch.nn.Module):
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(BATCH, 1, PATCH, PATCH, generator=torch.Generator().manual_seed(1))
    net.train()

    def run() -> None:
        for _ in range(STEPS):
            loss = torch.mean((net(x) - x) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def test_unet_training_throughput_vs_monai_basicunet(compare):
    ours, reference = _networks()
    ours_params = sum(p.numel() for p in ours.parameters())
    reference_params = sum(p.numel() for p in reference.parameters())
    ours_s, reference_s, _ = compare(_trainer(ours), _trainer(reference), rounds=3, label="speedup_vs_monai",
                                     note=f"training, {STEPS} steps of {BATCH} x {PATCH}^2, params {ours_params:,} "
                                          f"vs {reference_params:,}")
    patches = STEPS * BATCH
    RATIOS.append(("unet_training", "dig_patches_per_s", patches / ours_s, "", "/s"))
    RATIOS.append(("unet_training", "monai_patches_per_s", patches / reference_s, "", "/s"))


def test_unet_inference_ms_per_512_image_vs_monai_basicunet(compare):
    ours, reference = _networks()
    image = torch.randn(1, 1, 512, 512, generator=torch.Generator().manual_seed(2))

    def infer(net):
        net.eval()

        def run() -> None:
            with torch.no_grad():
                net(image)

        return run

    ours_s, reference_s, _ = compare(infer(ours), infer(reference), rounds=5, label="speedup_vs_monai",
                                     note="inference, one 512^2 image")
    RATIOS.append(("unet_inference", "dig_ms_per_512_image", 1000 * ours_s, "", " ms"))
    RATIOS.append(("unet_inference", "monai_ms_per_512_image", 1000 * reference_s, "", " ms"))
