"""GraphDF (Luo, Yan & Ji, ICML 2021, arXiv:2102.01189): a discrete autoregressive flow over molecular graphs.

A molecule (atoms in BFS order from a random start atom) is a sequence of discrete tokens
``a_1, a_2, b_21, a_3, b_31, b_32, ...``: an atom type per node, then a bond type (single, double, triple or
none) to each of the ``edge_unroll`` previous nodes. Each token x of t categories comes from a latent token z
through K invertible modulo shifts,

    z = (x + mu_1 + ... + mu_K) mod t,        x = (z - mu_K - ... - mu_1) mod t,

with mu_k = one_hot(argmax(MLP_k(h))) (straight-through gradient with a softmax of temperature 0.1), h the
R-GCN embedding of the graph generated so far (sum-pooled for atoms; for a bond (i, j) the concatenation of
h_i, h_j and the pooled graph). The shift is a bijection, so there is no Jacobian: log p(x) = log p_Z(z),
with p_Z a learnable categorical per position. Training maximises it over every token in parallel (one masked
partial graph per step); sampling draws z from p_Z (logits / temperature) and inverts the shifts.

Validity: an unmasked bond draw that would exceed an atom's valence is redrawn among the valid bond types
(the paper's valency check; DIG redraws z with that type removed, which is the same conditional); a molecule
that needed no redraw counts towards ``validity_without_check``. The sequence, the R-GCN trunk, training and
the batched sampling loop are shared with GraphAF (``autoregressive.py``). Departures from DIG's code, not
from the paper: padding atoms are masked out of the sum pooling (DIG's BatchNorm turns zero padding into
non-zero embeddings that enter the sum), the loss is the mean over real tokens only, and training molecules
with a bond outside the ``edge_unroll`` window are left out and counted.

Property and constrained optimisation (the paper's): maximum-likelihood pre-training, then PPO fine-tuning of
the generation policy with the property oracle as the reward (``AutoregressiveFlow.finetune``; its settings are
ours); constrained optimisation continues each start molecule's BFS prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.tracks.generation.autoregressive import (
    EDGE_TYPES,
    AutoregressiveFlow,
    AutoregressiveFlowNet,
    PolicySettings,
)
from dig.tracks.generation.graphs import AtomVocabulary


def modulo_shift(tokens: Tensor, shift: Tensor, sign: int = 1) -> Tensor:
    """``(x + sign * s) mod t`` in one-hot space: out[k] = sum_j x[j] s[(sign * (k - j)) mod t]. Soft inputs
    give the weighted mixture of shifts (how the straight-through gradient reaches the shift networks)."""
    t = tokens.shape[-1]
    k = torch.arange(t, device=tokens.device)
    index = (sign * (k.view(-1, 1) - k.view(1, -1))) % t  # [k, j]
    shift_matrix = shift[..., index]  # [..., k, j] = s[(sign*(k - j)) mod t]
    return torch.einsum("...j,...kj->...k", tokens, shift_matrix)


def straight_through_argmax(logits: Tensor, temperature: float = 0.1) -> Tensor:
    """One-hot of the argmax forward, gradient of softmax(logits / temperature) backward (Hoogeboom / Tran
    et al.'s discrete flows)."""
    hard = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    soft = torch.softmax(logits / temperature, dim=-1)
    return soft + (hard - soft).detach()


class ShiftNet(nn.Module):
    """mu_k: Linear -> tanh -> Linear -> straight-through one-hot argmax (DIG's ST_Dis)."""

    def __init__(self, in_dim: int, categories: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, categories))

    def forward(self, h: Tensor) -> Tensor:
        return straight_through_argmax(self.net(h))


class GraphDFNet(AutoregressiveFlowNet):
    """The shared R-GCN trunk with ``flows`` shift networks per token kind and a learnable categorical base
    distribution per token position."""

    def __init__(self, atom_types: int, max_atoms: int, edge_unroll: int, hidden: int, flows: int,
                 rgcn_layers: int) -> None:
        super().__init__(atom_types, max_atoms, edge_unroll, hidden, rgcn_layers)
        self.atom_shifts = nn.ModuleList(ShiftNet(hidden, atom_types, hidden) for _ in range(flows))
        self.bond_shifts = nn.ModuleList(ShiftNet(3 * hidden, EDGE_TYPES, hidden) for _ in range(flows))
        self.atom_base = nn.Parameter(torch.randn(max_atoms, atom_types))
        self.bond_base = nn.Parameter(torch.randn(self.bond_positions, EDGE_TYPES))

    def token_terms(self, atoms: Tensor, bonds: Tensor, sizes: Tensor, generator: torch.Generator | None = None):
        """log p_Z(z) of every atom and bond token (no noise is drawn: the shifts are bijections of the discrete
        tokens). Shapes as ``contexts``."""
        c = self.contexts(atoms, bonds, sizes)
        z = F.one_hot(atoms[:, c.atom_row].clamp(min=0), self.atom_types).to(torch.float32)  # [B, Sa, T]
        for net in self.atom_shifts:
            z = modulo_shift(z, net(c.atom))
        atom_ll = (z * torch.log_softmax(self.atom_base[c.atom_slot], -1)).sum(-1)
        z = F.one_hot(bonds[:, c.bond_row, c.bond_col], EDGE_TYPES).to(torch.float32)  # [B, Sb, 4]
        for net in self.bond_shifts:
            z = modulo_shift(z, net(c.bond))
        bond_ll = (z * torch.log_softmax(self.bond_base[c.bond_slot], -1)).sum(-1)
        return c, atom_ll, bond_ll

    def total_shift(self, nets: nn.ModuleList, h: Tensor, categories: int) -> Tensor:
        """sum_k argmax(mu_k) mod t, as integers [G]."""
        return torch.stack([net.net(h).argmax(-1) for net in nets]).sum(0) % categories


class GraphDF(AutoregressiveFlow):
    """The ``graphdf`` generator (training, selection and the sampling loop in ``AutoregressiveFlow``): tokens
    drawn from the base distributions at the sampling temperatures, shifts inverted."""

    name = "graphdf"

    def __init__(self, vocabulary: AtomVocabulary, max_atoms: int, hidden: int = 128, flows: int = 12,
                 rgcn_layers: int = 3, edge_unroll: int = 12, epochs: int = 10, max_steps: int | None = None,
                 batch_size: int = 32, lr: float = 1e-3,
                 atom_temperature: float = 1 / 0.35, bond_temperature: float = 0.23, valid_molecules: int = 1000,
                 sample_batch: int = 500, ppo_iterations: int = 50, ppo_batch: int = 32, ppo_epochs: int = 3,
                 ppo_lr: float = 1e-4, ppo_clip: float = 0.2, baseline_decay: float = 0.9,
                 invalid_reward: float = -10.0, optimise_samples: int = 10_000, optimise_rollouts: int = 20,
                 modify_size: int = 5) -> None:
        policy = PolicySettings(ppo_iterations, ppo_batch, ppo_epochs, ppo_lr, ppo_clip, baseline_decay, invalid_reward,
                                optimise_samples, optimise_rollouts, modify_size)
        super().__init__(vocabulary, max_atoms, edge_unroll, epochs, max_steps, batch_size, lr, valid_molecules,
                         sample_batch, policy)
        self.hparams = {"hidden": hidden, "flows": flows, "rgcn_layers": rgcn_layers}
        self.atom_temperature, self.bond_temperature = atom_temperature, bond_temperature

    def _build_net(self) -> GraphDFNet:
        return GraphDFNet(len(self.vocabulary), self.max_atoms, self.edge_unroll, **self.hparams)

    @contextlib.contextmanager
    def _on_policy(self) -> Iterator[None]:
        temperatures = self.atom_temperature, self.bond_temperature
        self.atom_temperature = self.bond_temperature = 1.0
        try:
            yield
        finally:
            self.atom_temperature, self.bond_temperature = temperatures

    def _draw_atoms(self, pooled: Tensor, i: int, generator: torch.Generator) -> Tensor:
        """x = (z - shift) mod t with z ~ softmax(base_i / temperature)."""
        net = self.net
        shift = net.total_shift(net.atom_shifts, pooled, net.atom_types)
        z = torch.multinomial(torch.softmax(net.atom_base[i] / self.atom_temperature, -1).expand(len(pooled), -1), 1,
                              generator=generator).squeeze(1)
        return (z - shift) % net.atom_types

    def _draw_bonds(self, context: Tensor, i: int, j: int, allowed: Tensor,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """p(x = c) = p_Z((c + shift) mod 4); a draw the valences forbid is redrawn from p restricted to the
        allowed tokens."""
        net = self.net
        shift = net.total_shift(net.bond_shifts, context, EDGE_TYPES)
        base = torch.softmax(net.bond_base[net.edge_slot[i, j]] / self.bond_temperature, -1)
        probs = base[(torch.arange(EDGE_TYPES).view(1, -1) + shift.view(-1, 1)) % EDGE_TYPES]
        first_draw = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        ok = allowed.gather(1, first_draw.view(-1, 1)).squeeze(1)
        masked = (probs + 1e-12) * allowed
        redraw = torch.multinomial(masked / masked.sum(1, keepdim=True), 1, generator=generator).squeeze(1)
        return torch.where(ok, first_draw, redraw), ok


def build_graphdf(vocabulary: AtomVocabulary, max_atoms: int, **hparams) -> GraphDF:
    return GraphDF(vocabulary, max_atoms, **hparams)
