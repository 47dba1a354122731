"""GraphAF (Shi, Xu, Zhu, Zhang, Zhang & Tang, ICLR 2020, arXiv:2001.09382): a continuous autoregressive flow
over molecular graphs, GraphDF's continuous counterpart.

The token sequence, the R-GCN over the partial graph and the conditioning are GraphDF's (``autoregressive.py``).
Each one-hot token x (t categories: atom types, or single / double / triple / none for a bond) is dequantized,
x~ = x + c u with u ~ U[0, 1)^t, and mapped to a latent z in R^t by K affine layers

    z_0 = x~,    z_k = (z_{k-1} + t_k) * exp(s_k),    (s_k, t_k) = ST_k(h),    s_k = exp(rho_k) tanh(a_k),

with h the pooled partial graph (atoms) or [h_i, h_j, pooled] (bonds), ST_k a Linear -> tanh -> Linear network
whose last layer starts at zero (every layer starts as the identity) and rho_k a learnable log-scale (DIG's
"exp" coupling). The Jacobian is diagonal, so

    log p(x~) = log N(z_K; 0, I) + sum_k sum_d s_k,d,

and training maximises it over every token of a batch in parallel (the loss is its mean per token; it is a
density of the dequantized tokens, so it can be negative). Sampling draws z ~ N(0, T^2 I), inverts the layers,
z_{k-1} = z_k exp(-s_k) - t_k, and takes the argmax category. Valency check (the paper's): a bond whose argmax
would exceed an atom's valence is drawn again from a fresh z, up to ``bond_resamples`` times, after which it is
"no bond"; a molecule that needed no redraw counts towards ``validity_without_check``.

Property and constrained optimisation (the paper's section 4.3): maximum-likelihood pre-training, then PPO
fine-tuning of the generation policy with the property oracle as the reward (``AutoregressiveFlow.finetune``,
shared with GraphDF; its settings are ours). The policy's log-likelihood of a drawn token is the flow's density of
that token dequantized, old and new policy scored on the same noise.

Configuration: the constructor's defaults are DIG's published GraphAF configuration (R-GCN 3 x 128, 12 flow
layers, edge_unroll 12, c = 0.9, Adam 1e-3, batches of 32, sampling temperature 0.75, 50 redraws); its training
epochs are ours (10, as GraphDF here), with the epoch of lowest validation NLL kept.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.tracks.generation.autoregressive import (
    EDGE_TYPES,
    NO_BOND,
    AutoregressiveFlow,
    AutoregressiveFlowNet,
    PolicySettings,
)
from dig.tracks.generation.graphs import AtomVocabulary

LOG_2PI = math.log(2 * math.pi)


class AffineCoupling(nn.Module):
    """(s, t) = ST(h) of one affine layer: Linear -> tanh -> Linear (zero-initialised), s = exp(rho) tanh(a)."""

    def __init__(self, in_dim: int, categories: int, hidden: int) -> None:
        super().__init__()
        self.categories = categories
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * categories))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)
        self.log_rescale = nn.Parameter(torch.zeros(1))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.net(h)
        return self.log_rescale.exp() * torch.tanh(raw[..., : self.categories]), raw[..., self.categories :]


def affine_forward(x: Tensor, layers: nn.ModuleList, h: Tensor) -> tuple[Tensor, Tensor]:
    """z_K and sum_k sum_d s_k,d for data x [..., t] given the conditioning h [..., d]."""
    z, log_det = x, torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for layer in layers:
        s, t = layer(h)
        z = (z + t) * torch.exp(s)
        log_det = log_det + s.sum(-1)
    return z, log_det


def affine_inverse(z: Tensor, scales: list[tuple[Tensor, Tensor]]) -> Tensor:
    """x from z_K given every layer's (s_k, t_k): the layers undone in reverse order, z_{k-1} = z_k exp(-s_k) - t_k."""
    x = z
    for s, t in reversed(scales):
        x = x * torch.exp(-s) - t
    return x


def standard_normal_log_density(z: Tensor) -> Tensor:
    """sum_d log N(z_d; 0, 1) over the last axis."""
    return -0.5 * (z ** 2 + LOG_2PI).sum(-1)


class GraphAFNet(AutoregressiveFlowNet):
    """The shared R-GCN trunk with ``flows`` affine layers per token kind."""

    def __init__(self, atom_types: int, max_atoms: int, edge_unroll: int, hidden: int, flows: int,
                 rgcn_layers: int, dequantization: float) -> None:
        super().__init__(atom_types, max_atoms, edge_unroll, hidden, rgcn_layers)
        self.dequantization = dequantization
        self.atom_flows = nn.ModuleList(AffineCoupling(hidden, atom_types, hidden) for _ in range(flows))
        self.bond_flows = nn.ModuleList(AffineCoupling(3 * hidden, EDGE_TYPES, hidden) for _ in range(flows))

    def token_terms(self, atoms: Tensor, bonds: Tensor, sizes: Tensor, generator: torch.Generator | None = None):
        """log p(x~) of every dequantized atom and bond token; the dequantization noise comes from ``generator``
        (the global RNG when None)."""
        c = self.contexts(atoms, bonds, sizes)
        atom_x = F.one_hot(atoms[:, c.atom_row].clamp(min=0), self.atom_types).to(torch.float32)
        bond_x = F.one_hot(bonds[:, c.bond_row, c.bond_col], EDGE_TYPES).to(torch.float32)
        atom_x = atom_x + self.dequantization * torch.rand(atom_x.shape, generator=generator)
        bond_x = bond_x + self.dequantization * torch.rand(bond_x.shape, generator=generator)
        z, log_det = affine_forward(atom_x, self.atom_flows, c.atom)
        atom_ll = standard_normal_log_density(z) + log_det
        z, log_det = affine_forward(bond_x, self.bond_flows, c.bond)
        bond_ll = standard_normal_log_density(z) + log_det
        return c, atom_ll, bond_ll


class GraphAF(AutoregressiveFlow):
    """The ``graphaf`` generator (training, selection and the sampling loop in ``AutoregressiveFlow``)."""

    name = "graphaf"

    def __init__(self, vocabulary: AtomVocabulary, max_atoms: int, hidden: int = 128, flows: int = 12,
                 rgcn_layers: int = 3, edge_unroll: int = 12, epochs: int = 10, max_steps: int | None = None,
                 batch_size: int = 32, lr: float = 1e-3, dequantization: float = 0.9, temperature: float = 0.75,
                 bond_resamples: int = 50, valid_molecules: int = 1000, sample_batch: int = 500,
                 ppo_iterations: int = 50, ppo_batch: int = 32, ppo_epochs: int = 3, ppo_lr: float = 1e-4,
                 ppo_clip: float = 0.2, baseline_decay: float = 0.9, invalid_reward: float = -10.0,
                 optimise_samples: int = 10_000, optimise_rollouts: int = 20, modify_size: int = 5) -> None:
        policy = PolicySettings(ppo_iterations, ppo_batch, ppo_epochs, ppo_lr, ppo_clip, baseline_decay, invalid_reward,
                                optimise_samples, optimise_rollouts, modify_size)
        super().__init__(vocabulary, max_atoms, edge_unroll, epochs, max_steps, batch_size, lr, valid_molecules,
                         sample_batch, policy)
        self.hparams = {"hidden": hidden, "flows": flows, "rgcn_layers": rgcn_layers, "dequantization": dequantization}
        self.temperature, self.bond_resamples = temperature, bond_resamples

    def _build_net(self) -> GraphAFNet:
        return GraphAFNet(len(self.vocabulary), self.max_atoms, self.edge_unroll, **self.hparams)

    @contextlib.contextmanager
    def _on_policy(self) -> Iterator[None]:
        temperature, self.temperature = self.temperature, 1.0
        try:
            yield
        finally:
            self.temperature = temperature

    def _latent(self, rows: int, categories: int, generator: torch.Generator) -> Tensor:
        return self.temperature * torch.randn((rows, categories), generator=generator)

    def _draw_atoms(self, pooled: Tensor, i: int, generator: torch.Generator) -> Tensor:
        net = self.net
        z = self._latent(len(pooled), net.atom_types, generator)
        return affine_inverse(z, [layer(pooled) for layer in net.atom_flows]).argmax(-1)

    def _draw_bonds(self, context: Tensor, i: int, j: int, allowed: Tensor,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """argmax of the inverted latent; rows whose bond the valences forbid draw a fresh latent, up to
        ``bond_resamples`` times, then take "no bond"."""
        net = self.net
        scales = [layer(context) for layer in net.bond_flows]

        def draw() -> Tensor:
            return affine_inverse(self._latent(len(context), EDGE_TYPES, generator), scales).argmax(-1)

        token = draw()
        first_ok = allowed.gather(1, token.view(-1, 1)).squeeze(1)
        pending = ~first_ok
        for _ in range(self.bond_resamples):
            if not bool(pending.any()):
                break
            token = torch.where(pending, draw(), token)
            pending = ~allowed.gather(1, token.view(-1, 1)).squeeze(1)
        return torch.where(pending, NO_BOND, token), first_ok


def build_graphaf(vocabulary: AtomVocabulary, max_atoms: int, **hparams) -> GraphAF:
    return GraphAF(vocabulary, max_atoms, **hparams)
