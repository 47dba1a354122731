"""EGNN for dig's 3D track (example third-party plugin)."""

from dig_egnn.model import EGNN

__all__ = ["EGNN"]
