"""Shared neural-network layers built on dig.ops."""

from dig.nn.radial import CosineCutoff, GaussianSmearing, ShiftedSoftplus

__all__ = ["CosineCutoff", "GaussianSmearing", "ShiftedSoftplus"]
