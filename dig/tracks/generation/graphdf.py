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

Property optimisation (the paper's): maximum-likelihood pre-training, then PPO fine-tuning of the generation
policy with the property oracle as the reward (``GraphDF.finetune``; its settings are ours). Constrained
optimisation (generation continued from each start molecule) is not written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.errors import TrainingError
from dig.tracks.generation.autoregressive import (
    EDGE_TYPES,
    AutoregressiveFlow,
    AutoregressiveFlowNet,
)
from dig.tracks.generation.graphs import AtomVocabulary, graph_to_mol


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
                 invalid_reward: float = -10.0, optimise_samples: int = 10_000) -> None:
        super().__init__(vocabulary, max_atoms, edge_unroll, epochs, max_steps, batch_size, lr, valid_molecules,
                         sample_batch)
        self.hparams = {"hidden": hidden, "flows": flows, "rgcn_layers": rgcn_layers}
        self.atom_temperature, self.bond_temperature = atom_temperature, bond_temperature
        self.ppo_iterations, self.ppo_batch, self.ppo_epochs = ppo_iterations, ppo_batch, ppo_epochs
        self.ppo_lr, self.ppo_clip, self.baseline_decay = ppo_lr, ppo_clip, baseline_decay
        self.invalid_reward, self.optimise_samples = invalid_reward, optimise_samples
        self.oracle_calls = 0
        self.finetune_history: list[dict[str, float]] = []

    def _build_net(self) -> GraphDFNet:
        return GraphDFNet(len(self.vocabulary), self.max_atoms, self.edge_unroll, **self.hparams)

    # ---- goal-directed: the paper's property optimisation
    def fit_goal_directed(self, train: list[str], values: Sequence[float], seed: int,
                          on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        """Maximum-likelihood pre-training, as for random generation, on the task's training molecules; every 20th
        is held out for the validation NLL (the task has no validation split). The labels are not used: the paper
        optimises with the property oracle during fine-tuning (``optimise``), whose calls are counted."""
        held_out = set(range(19, len(train), 20))
        return self.fit([s for k, s in enumerate(train) if k not in held_out], [train[k] for k in sorted(held_out)],
                        seed, on_epoch)

    def optimise(self, starts: Sequence[str], seed: int, record_every: int = 1, target: str | None = None) -> list[list[str]]:
        """Property optimisation: PPO fine-tuning with ``target`` of each generated molecule as the reward
        (``finetune``), then ``optimise_samples`` molecules from the tuned model. GraphDF generates from scratch,
        so the starts only receive the samples in equal slices (``record_every`` does not apply)."""
        if self.net is None:
            raise RuntimeError("graphdf must be fitted before optimising")
        if target is None:
            raise ValueError("graphdf optimises a named property: pass target (e.g. 'plogp')")
        self.finetune(target, seed)
        samples = [s for s in self.sample(self.optimise_samples, seed) if s]
        per_start = -(-len(samples) // max(len(starts), 1))
        return [samples[k * per_start : (k + 1) * per_start] for k in range(len(starts))]

    def finetune(self, target: str, seed: int) -> list[dict[str, float]]:
        """PPO (Schulman et al. 2017) on the generation policy, as the paper fine-tunes GraphDF: per iteration,
        ``ppo_batch`` molecules are drawn (temperature 1, so the ratios below are on-policy), rewarded with
        r = property(molecule) (``invalid_reward`` if RDKit rejects it), A = (r - b) / std(r) with b a moving
        average of the batch means (decay ``baseline_decay``); then ``ppo_epochs`` Adam steps on

            L = - sum_t min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A) / #tokens,   rho_t = p(x_t) / p_old(x_t),

        over every token t of the drawn molecules (their log-likelihoods scored in parallel, as in training;
        batch norm on its running statistics so the policy scored is the one sampled). A bond redrawn by the
        valency check is scored under the unmasked distribution. Records the oracle calls in ``oracle_calls``."""
        from dig.tracks.generation.properties import property_value

        net = self.net
        assert net is not None
        net.eval()
        optimizer = torch.optim.Adam(net.parameters(), lr=self.ppo_lr)
        generator = torch.Generator().manual_seed(seed)
        temperatures = self.atom_temperature, self.bond_temperature
        self.atom_temperature = self.bond_temperature = 1.0
        baseline, history = None, []
        try:
            for iteration in range(1, self.ppo_iterations + 1):
                graphs, _ = self._sample_batch(self.ppo_batch, generator)
                rewards = []
                for graph in graphs:
                    mol = graph_to_mol(graph, self.vocabulary)
                    rewards.append(property_value(mol, target) if mol is not None else self.invalid_reward)
                reward = torch.tensor(rewards, dtype=torch.float32)
                mean = reward.mean()
                baseline = mean if baseline is None else self.baseline_decay * baseline + (1 - self.baseline_decay) * mean
                advantage = ((reward - baseline) / (reward.std() + 1e-8)).view(-1, 1)
                atoms, bonds, sizes = self._ordered_batch(graphs)
                with torch.no_grad():
                    old, _ = net.token_log_likelihoods(atoms, bonds, sizes)
                for _ in range(self.ppo_epochs):
                    new, real = net.token_log_likelihoods(atoms, bonds, sizes)
                    ratio = torch.exp(new - old)
                    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - self.ppo_clip, 1 + self.ppo_clip) * advantage)
                    loss = -(surrogate * real).sum() / real.sum()
                    if not torch.isfinite(loss):
                        raise TrainingError(f"graphdf: PPO loss became {loss.item()} at iteration {iteration}; "
                                            f"lower ppo_lr (now {self.ppo_lr})")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                history.append({"iteration": iteration, f"mean_{target}": float(mean), f"best_{target}": float(reward.max())})
        finally:
            self.atom_temperature, self.bond_temperature = temperatures
        self.oracle_calls = self.ppo_iterations * self.ppo_batch
        self.finetune_history = history
        return history

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
