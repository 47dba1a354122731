"""GVTNet (Wang, Xie & Ji, Nature Machine Intelligence 2021) as a supervised denoiser: Noise2True's loss
``mean (f(x) - y)^2`` on the ``dig.nn.gvto.GVTNet`` backbone (the U-Net with GVTOs at its bottom and its
deepest resampling), so that its row against ``noise2true`` compares the backbones, as the paper's table
compares GVTNet with the CARE U-Net."""

from __future__ import annotations

from dig.tracks.ssl.denoising.noise2true import Noise2True


class GVTNetDenoiser(Noise2True):
    backbone = "gvtnet"
