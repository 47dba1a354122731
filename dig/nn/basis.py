"""Radial and spherical bases of directional message passing (DimeNet, Gasteiger et al. ICLR 2020; SphereNet).

- Envelope u(d) (p = exponent + 1): 1 - (p+1)(p+2)/2 x^p + p(p+2) x^{p+1} - p(p+1)/2 x^{p+2}, x = d / c,
  zero with its first two derivatives at the cutoff.
- Radial Bessel basis: e_n(d) = sqrt(2/c) sin(n pi d / c) / d * u(d), n = 1..N.
- Spherical basis: a_ln(d, theta) = N_ln j_l(z_ln d / c) Y_l^0(theta) * u(d), with z_ln the n-th positive root of
  the spherical Bessel function j_l and N_ln = sqrt(2 / c^3) / |j_{l+1}(z_ln)|.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import spherical_jn
from torch import Tensor, nn


def envelope(x: Tensor, exponent: int) -> Tensor:
    p = exponent + 1
    a, b, c = -(p + 1) * (p + 2) / 2, p * (p + 2), -p * (p + 1) / 2
    value = 1 + a * x.pow(p) + b * x.pow(p + 1) + c * x.pow(p + 2)
    return torch.where(x < 1, value, torch.zeros_like(x))


def spherical_bessel(order: int, x: Tensor) -> Tensor:
    """j_l(x) by upward recurrence from j_0 = sin x / x and j_1 = sin x / x^2 - cos x / x (x > 0)."""
    sin, cos = torch.sin(x), torch.cos(x)
    j_prev, j = sin / x, sin / x.pow(2) - cos / x
    if order == 0:
        return j_prev
    for degree in range(1, order):
        j_prev, j = j, (2 * degree + 1) / x * j - j_prev
    return j


def legendre(order: int, x: Tensor) -> Tensor:
    """P_l(x) by Bonnet's recurrence."""
    p_prev, p = torch.ones_like(x), x
    if order == 0:
        return p_prev
    for degree in range(1, order):
        p_prev, p = p, ((2 * degree + 1) * x * p - degree * p_prev) / (degree + 1)
    return p


def spherical_bessel_roots(num_spherical: int, num_radial: int) -> np.ndarray:
    """[L, N] first N positive roots of j_l for l < L (roots of j_l interlace those of j_{l-1})."""
    roots = np.zeros((num_spherical, num_radial + num_spherical))
    roots[0] = np.arange(1, num_radial + num_spherical + 1) * np.pi
    for degree in range(1, num_spherical):
        for n in range(num_radial + num_spherical - degree):
            roots[degree, n] = brentq(lambda x, order=degree: spherical_jn(order, x), roots[degree - 1, n], roots[degree - 1, n + 1])
    return roots[:, :num_radial]


class BesselBasis(nn.Module):
    def __init__(self, num_radial: int, cutoff: float, envelope_exponent: int = 5) -> None:
        super().__init__()
        self.cutoff, self.exponent = cutoff, envelope_exponent
        self.frequencies = nn.Parameter(torch.arange(1, num_radial + 1, dtype=torch.float32) * math.pi)

    def forward(self, distance: Tensor) -> Tensor:
        x = (distance / self.cutoff).unsqueeze(-1)
        return math.sqrt(2 / self.cutoff) * envelope(x, self.exponent) * torch.sin(self.frequencies * x) / (x * self.cutoff)


class SphericalBasis(nn.Module):
    """a_ln(d_kj, theta_kji) for every triplet: [T, num_spherical * num_radial]."""

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int = 5) -> None:
        super().__init__()
        self.num_spherical, self.num_radial = num_spherical, num_radial
        self.cutoff, self.exponent = cutoff, envelope_exponent
        roots = spherical_bessel_roots(num_spherical, num_radial)
        norm = np.stack([np.sqrt(2 / cutoff**3) / np.abs(spherical_jn(degree + 1, roots[degree])) for degree in range(num_spherical)])
        self.register_buffer("roots", torch.tensor(roots, dtype=torch.float32))
        self.register_buffer("norm", torch.tensor(norm, dtype=torch.float32))

    def radial(self, distance: Tensor) -> Tensor:
        """[E, L, N]: N_ln j_l(z_ln d / c) u(d / c), per edge."""
        x = (distance / self.cutoff).clamp(min=1e-6)
        parts = [spherical_bessel(degree, self.roots[degree] * x.unsqueeze(-1)) for degree in range(self.num_spherical)]
        return torch.stack(parts, dim=1) * self.norm * envelope(x, self.exponent).view(-1, 1, 1)

    def forward(self, distance: Tensor, angle: Tensor, edge_kj: Tensor) -> Tensor:
        radial = self.radial(distance)[edge_kj]  # [T, L, N]
        cos = torch.cos(angle)
        angular = torch.stack(
            [math.sqrt((2 * degree + 1) / (4 * math.pi)) * legendre(degree, cos) for degree in range(self.num_spherical)], dim=1
        )
        return (radial * angular.unsqueeze(-1)).reshape(-1, self.num_spherical * self.num_radial)


def associated_legendre(degree: int, order: int, cos: Tensor, sin: Tensor) -> Tensor:
    """P_l^m(cos theta) for 0 <= m <= l without the Condon-Shortley phase, from cos theta and sin theta >= 0:
    P_m^m = (2m-1)!! sin^m theta, P_{m+1}^m = cos theta (2m+1) P_m^m and
    (l-m+1) P_{l+1}^m = (2l+1) cos theta P_l^m - (l+m) P_{l-1}^m. Taking sin theta as given (not
    sqrt(1 - cos^2)) keeps the gradient finite at the poles."""
    double_factorial = float(np.prod(np.arange(2 * order - 1, 0, -2))) if order > 0 else 1.0
    p_mm = double_factorial * sin.pow(order) if order > 0 else torch.ones_like(cos)
    if degree == order:
        return p_mm
    p_prev, p = p_mm, cos * (2 * order + 1) * p_mm
    for current in range(order + 1, degree):
        p_prev, p = p, ((2 * current + 1) * cos * p - (current + order) * p_prev) / (current - order + 1)
    return p


def real_spherical_harmonics(num_degrees: int, theta: Tensor, phi: Tensor) -> Tensor:
    """[T, num_degrees^2] real Y_l^m(theta, phi) for l < num_degrees, m = -l..l (orthonormal on the sphere),
    theta in [0, pi]."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    columns = []
    for degree in range(num_degrees):
        for order in range(-degree, degree + 1):
            m = abs(order)
            norm = math.sqrt((2 * degree + 1) / (4 * math.pi) * math.factorial(degree - m) / math.factorial(degree + m))
            value = norm * associated_legendre(degree, m, cos, sin)
            if order > 0:
                value = math.sqrt(2) * value * torch.cos(m * phi)
            elif order < 0:
                value = math.sqrt(2) * value * torch.sin(m * phi)
            columns.append(value)
    return torch.stack(columns, dim=-1)


class TorsionBasis(SphericalBasis):
    """SphereNet's torsion basis: N_ln j_l(z_ln d / c) u(d) Y_l^m(theta, phi) for l < L, m = -l..l, n < N:
    [T, L^2 * N] for every triplet with distance d_kj, angle theta_kji and torsion phi."""

    def forward(self, distance: Tensor, angle: Tensor, torsion: Tensor, edge_kj: Tensor) -> Tensor:
        radial = self.radial(distance)[edge_kj]  # [T, L, N]
        repeats = torch.tensor([2 * degree + 1 for degree in range(self.num_spherical)], device=radial.device)
        radial = torch.repeat_interleave(radial, repeats, dim=1)  # [T, L^2, N]: each Y_lm with its j_l
        harmonics = real_spherical_harmonics(self.num_spherical, angle, torsion)
        return (radial * harmonics.unsqueeze(-1)).reshape(radial.size(0), -1)
