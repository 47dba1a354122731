"""What GraphDF and GraphAF share: a molecule as a sequence of atom and bond tokens in BFS order, an R-GCN over
the partial graph that conditions every token, training on all tokens of a batch in parallel, and batched
sampling with valency masks as tensors.

A molecule (atoms in BFS order from a random start atom) is the sequence ``a_1, a_2, b_21, a_3, b_31, b_32, ...``:
an atom type per node, then a bond type (single, double, triple or none) to each of the ``edge_unroll`` previous
nodes. The token of atom i is conditioned on the sum-pooled embedding of the graph before it; the token of the
bond (i, j) on [h_i, h_j, pooled] of the graph with atom i and the bonds (i, j' < j) already decided. The two
models differ only in how a token relates to its latent variable (``AutoregressiveFlowNet.token_terms``) and
how a token is drawn (``AutoregressiveFlow._draw_atoms`` / ``_draw_bonds``).

Sampling: a new atom that bonds to nothing ends the molecule and is dropped (as both papers' code). A bond
draw that would exceed an atom's valence is the model's to handle (its valency check); a molecule that needed
no check counts towards ``validity_without_check``. Training molecules with a bond outside the ``edge_unroll``
window are left out and counted (DIG drops such bonds silently, training on a different molecule).

Goal-directed use (both papers' section on optimisation): maximum-likelihood pre-training, then PPO fine-tuning
of the generation policy with the property oracle as the reward (``AutoregressiveFlow.finetune``). Property
optimisation generates from scratch; constrained optimisation continues each start molecule's BFS prefix
(``AutoregressiveFlow.continue_from``), as GraphAF's and GraphDF's code do.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.data.smiles import ParseReport, iter_molecules
from dig.errors import DataError, TrainingError
from dig.ops import scatter
from dig.tracks.generation.graphs import (
    BOND_ORDERS,
    AtomVocabulary,
    MolGraph,
    canonical_smiles,
    graph_to_mol,
    mol_to_graph,
)
from dig.tracks.generation.selection import BestValidationEpoch

NO_BOND = len(BOND_ORDERS)  # edge token 3
EDGE_TYPES = len(BOND_ORDERS) + 1
VALIDATION_NOISE_SEED = 0  # models whose likelihood draws noise (GraphAF's dequantization) score validation with it
MAX_LOG_RATIO = 20.0  # PPO: log p / p_old is capped here before exp (beyond it the dual clip has already cut the term)


@dataclass(frozen=True)
class PolicySettings:
    """PPO fine-tuning of the generation policy (Schulman et al. 2017; the papers' optimisation, our settings):
    ``iterations`` rounds of ``batch`` rollouts, ``epochs`` Adam steps of ``lr`` on the clipped surrogate (clip
    ``clip``, dual clip ``dual_clip`` for negative advantages) per round, a moving reward baseline of decay ``baseline_decay``, ``invalid_reward`` for a molecule
    RDKit rejects. After tuning: property optimisation draws ``samples`` molecules; constrained optimisation
    draws ``rollouts`` continuations of each start, each from the start's BFS order with its last
    0..``modify_size`` - 1 atoms dropped (GraphAF's ``modify_size``: half the rollouts keep the whole start)."""

    iterations: int = 50
    batch: int = 32
    epochs: int = 3
    lr: float = 1e-4
    clip: float = 0.2
    baseline_decay: float = 0.9
    invalid_reward: float = -10.0
    samples: int = 10_000
    rollouts: int = 20
    modify_size: int = 5
    dual_clip: float = 3.0


@dataclass(frozen=True)
class Prefixes:
    """Start graphs in generation order that sampling must reproduce before it draws: ``atoms`` [G, N] (-1
    absent), ``bonds`` [G, N, N], ``keep`` [G] (how many leading atoms are fixed; 0: generate from scratch)."""

    atoms: Tensor
    bonds: Tensor
    keep: Tensor


def max_valences(vocabulary: AtomVocabulary) -> list[int]:
    """Largest valence RDKit allows each (element, charge) token: that of the isoelectronic element
    (N+ like C: 4, O- like F: 1, C- like N: 3)."""
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    out = []
    for symbol, charge in vocabulary.tokens:
        valences = [v for v in table.GetValenceList(table.GetAtomicNumber(symbol) - charge) if v >= 0]
        if not valences:
            raise DataError(f"no valence known for {symbol}{charge:+d}")
        out.append(max(valences))
    return out


def bfs_order(graph: MolGraph, start: int) -> np.ndarray:
    """Atom indices in breadth-first order from ``start`` (neighbours in index order)."""
    neighbours: list[list[int]] = [[] for _ in range(graph.num_atoms)]
    for i, j, _ in graph.bonds.tolist():
        neighbours[i].append(j)
        neighbours[j].append(i)
    seen, order, queue = {start}, [], deque([start])
    while queue:
        node = queue.popleft()
        order.append(node)
        for other in sorted(neighbours[node]):
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return np.array(order, dtype=np.int64)


def generation_steps(max_atoms: int, edge_unroll: int) -> tuple[np.ndarray, np.ndarray]:
    """Every token position in generation order: rows (kind, i, j, slot) with kind 0 an atom i, kind 1 the
    bond (i, j); ``slot`` indexes the per-position parameters of its kind. Also the edge slot of each (i, j)
    pair (-1 outside the window)."""
    rows, edge_slot, slot = [], -np.ones((max_atoms, max_atoms), dtype=np.int64), 0
    for i in range(max_atoms):
        rows.append((0, i, i, i))
        for j in range(max(0, i - edge_unroll), i):
            rows.append((1, i, j, slot))
            edge_slot[i, j] = slot
            slot += 1
    return np.array(rows, dtype=np.int64), edge_slot


class RelationalGCN(nn.Module):
    """R-GCN (Schlichtkrull et al. 2018): h'_v = sum_r act(h_v W_r + sum_{u: bond(u, v) = r} h_u W_r), one
    relation per bond type, each existing atom's self loop in every relation (as DIG's dense form), ReLU after
    every layer but the last. Messages run along the bonds with ``dig.ops.scatter`` rather than as dense
    [N, N] products: molecules have about one bond per atom, so that is far less work."""

    def __init__(self, in_dim: int, hidden: int, out: int, layers: int, relations: int = len(BOND_ORDERS)) -> None:
        super().__init__()
        self.relations = relations
        self.embed = nn.Linear(in_dim, in_dim, bias=False)
        dims = [in_dim] + [hidden] * (layers - 1) + [out]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(relations, a, b)) for a, b in zip(dims[:-1], dims[1:], strict=True))
        for weight in self.weights:
            for w in weight:
                nn.init.xavier_uniform_(w)

    def forward(self, x: Tensor, bonds: Tensor, present: Tensor) -> Tensor:
        """x [G, N, in_dim], ``bonds`` [G, N, N] edge tokens (NO_BOND where none), ``present`` [G, N] -> [G, N, out]."""
        graphs, n, _ = bonds.shape
        g, i, j = torch.nonzero(bonds != NO_BOND, as_tuple=True)
        relation = bonds[g, i, j]
        source, target = (g * n + j) * self.relations + relation, (g * n + i) * self.relations + relation
        loops = present.reshape(-1, 1, 1).to(x.dtype)
        h = self.embed(x).reshape(graphs * n, -1)
        for layer, weight in enumerate(self.weights):
            support = (h @ weight.permute(1, 0, 2).reshape(weight.shape[1], -1)).view(h.shape[0], self.relations, -1)
            flat = support.reshape(-1, support.shape[-1])
            messages = scatter(flat.index_select(0, source), target, flat.shape[0]).view_as(support) + support * loops
            if layer < len(self.weights) - 1:
                messages = torch.relu(messages)
            h = messages.sum(1)
        return h.view(graphs, n, -1)


class StepContexts:
    """The conditioning of every token position of a batch: ``atom`` [B, Sa, d] (pooled graph before atom i)
    and ``bond`` [B, Sb, 3d] ([h_i, h_j, pooled]), with each position's slot, row (atom i) and column (atom j),
    and which positions are real tokens of each molecule (``token_real`` [B, S], S = Sa + Sb in generation
    order)."""

    def __init__(self, atom: Tensor, bond: Tensor, kind: Tensor, slot: Tensor, row: Tensor, col: Tensor,
                 token_real: Tensor) -> None:
        self.atom, self.bond, self.kind, self.token_real = atom, bond, kind, token_real
        self.is_atom, self.is_bond = kind == 0, kind == 1
        self.atom_slot, self.bond_slot = slot[self.is_atom], slot[self.is_bond]
        self.atom_row = row[self.is_atom]
        self.bond_row, self.bond_col = row[self.is_bond], col[self.is_bond]

    def per_token(self, atom_ll: Tensor, bond_ll: Tensor) -> Tensor:
        """The per-token log-likelihoods ([B, Sa], [B, Sb]) in generation order [B, S], zero where no token is."""
        ll = torch.zeros(self.token_real.shape, dtype=atom_ll.dtype, device=atom_ll.device)
        ll[:, self.is_atom], ll[:, self.is_bond] = atom_ll, bond_ll
        return ll * self.token_real


class AutoregressiveFlowNet(nn.Module):
    """The shared trunk: R-GCN of ``rgcn_layers`` x ``hidden`` over the partial graph, batch norm over existing
    atoms, the token positions of ``max_atoms`` atoms with an ``edge_unroll`` window. Subclasses add the flow
    heads and ``token_terms``."""

    def __init__(self, atom_types: int, max_atoms: int, edge_unroll: int, hidden: int, rgcn_layers: int) -> None:
        super().__init__()
        self.atom_types = atom_types
        steps, edge_slot = generation_steps(max_atoms, edge_unroll)
        self.register_buffer("steps", torch.from_numpy(steps), persistent=False)
        self.register_buffer("edge_slot", torch.from_numpy(edge_slot), persistent=False)
        self.bond_positions = int((steps[:, 0] == 1).sum())
        self.rgcn = RelationalGCN(atom_types, hidden, hidden, rgcn_layers)
        self.norm = nn.BatchNorm1d(hidden)

    def embed(self, atoms: Tensor, bonds: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """Node embeddings [G, N, d] and pooled graph embedding [G, d] of partial graphs: ``atoms`` [G, N]
        (-1 absent), ``bonds`` [G, N, N] edge tokens (NO_BOND where none), ``present`` [G, N] bool."""
        h = self._normalise(self._convolve(atoms, bonds, present), present)
        return h, h.sum(1)

    def _convolve(self, atoms: Tensor, bonds: Tensor, present: Tensor) -> Tensor:
        x = F.one_hot(atoms.clamp(min=0), self.atom_types).to(torch.float32) * present.unsqueeze(-1)
        return self.rgcn(x, bonds, present)

    def _normalise(self, h: Tensor, present: Tensor) -> Tensor:
        """Batch norm with statistics over existing atoms only; absent atoms stay zero (out of the pooling)."""
        flat, mask = h.reshape(-1, h.shape[-1]), present.reshape(-1)
        normed = torch.zeros_like(flat)
        if bool(mask.any()):
            normed[mask] = self.norm(flat[mask])
        return normed.view_as(h)

    def contexts(self, atoms: Tensor, bonds: Tensor, sizes: Tensor) -> StepContexts:
        """The conditioning of every token of a batch, all partial graphs embedded in parallel: ``atoms`` [B, N]
        in generation order (-1 padding), ``bonds`` [B, N, N] symmetric edge tokens, ``sizes`` [B].

        The steps of atom i only involve atoms 0..i, so they are convolved on graphs cropped to i + 1 atoms
        (about half the work of padding every step to N); one batch norm then runs over all of them, as in
        sampling."""
        batch, n = atoms.shape
        steps = self.steps[self.steps[:, 1] < int(sizes.max())]
        kind, row, col, slot = steps.unbind(1)
        positions = torch.arange(n, device=atoms.device)
        # partial graph of each step: atoms before i (and i itself for bond steps); bonds among atoms before i,
        # plus the bonds (i, j') already decided (j' < j) for bond steps
        before = positions.view(1, -1) < row.view(-1, 1)
        at_row = positions.view(1, -1) == row.view(-1, 1)
        present = before | ((kind == 1).view(-1, 1) & at_row)
        decided = (kind == 1).view(-1, 1) & (positions.view(1, -1) < col.view(-1, 1))
        seen = (before.unsqueeze(2) & before.unsqueeze(1)) | (at_row.unsqueeze(2) & decided.unsqueeze(1)) \
            | (decided.unsqueeze(2) & at_row.unsqueeze(1))
        real = present.unsqueeze(0) & (positions.view(1, 1, -1) < sizes.view(-1, 1, 1))  # [B, S, N]
        blocks = []
        bounds = torch.searchsorted(row.contiguous(), torch.arange(int(row.max()) + 2, device=row.device)).tolist()
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            k = i + 1
            sub_real = real[:, lo:hi, :k]
            sub_atoms = torch.where(sub_real, atoms[:, None, :k], -1)
            sub_seen = seen[None, lo:hi, :k, :k] & sub_real.unsqueeze(-1) & sub_real.unsqueeze(-2)
            sub_bonds = torch.where(sub_seen, bonds[:, None, :k, :k], NO_BOND)
            g = batch * (hi - lo)
            h_block = self._convolve(sub_atoms.reshape(g, k), sub_bonds.reshape(g, k, k), sub_real.reshape(g, k))
            blocks.append(F.pad(h_block.view(batch, hi - lo, k, -1), (0, 0, 0, n - k)))
        h = self._normalise(torch.cat(blocks, 1), real)
        pooled = h.sum(2)

        token_real = row.view(1, -1) < sizes.view(-1, 1)  # [B, S]
        is_atom, is_bond = kind == 0, kind == 1
        ends = torch.stack([row[is_bond], col[is_bond]], 1).view(1, -1, 2, 1).expand(batch, -1, 2, h.shape[-1])
        bond_context = torch.cat([h[:, is_bond].gather(2, ends).flatten(2), pooled[:, is_bond]], -1)
        return StepContexts(pooled[:, is_atom], bond_context, kind, slot, row, col, token_real)

    def token_terms(self, atoms: Tensor, bonds: Tensor, sizes: Tensor,
                    generator: torch.Generator | None) -> tuple[StepContexts, Tensor, Tensor]:
        """The model's log p of every atom token [B, Sa] and bond token [B, Sb], with the contexts they were
        computed from; ``generator`` feeds any noise the likelihood draws (the global RNG when None)."""
        raise NotImplementedError

    def token_log_likelihoods(self, atoms: Tensor, bonds: Tensor, sizes: Tensor,
                              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """log p of every token [B, S] in generation order (0 where a molecule has no token) and which are real."""
        contexts, atom_ll, bond_ll = self.token_terms(atoms, bonds, sizes, generator)
        return contexts.per_token(atom_ll, bond_ll), contexts.token_real

    def log_likelihood(self, atoms: Tensor, bonds: Tensor, sizes: Tensor,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Sum of log p over the real tokens of each molecule [B], added in generation order, and their count [B]."""
        per_token, real = self.token_log_likelihoods(atoms, bonds, sizes, generator)
        return per_token.sum(1), real.sum(1)


class AutoregressiveFlow:
    """A generator over BFS token sequences: ``fit`` by maximum likelihood with validation-NLL model selection,
    batched ``sample`` with valency masks as tensors. Subclasses set ``name`` and build the net and the draws."""

    name = "autoregressive"

    def __init__(self, vocabulary: AtomVocabulary, max_atoms: int, edge_unroll: int, epochs: int,
                 max_steps: int | None, batch_size: int, lr: float, valid_molecules: int, sample_batch: int,
                 policy: PolicySettings | None = None) -> None:
        self.policy = policy or PolicySettings()
        self.oracle_calls = 0
        self.finetune_history: list[dict[str, float]] = []
        self.vocabulary, self.max_atoms = vocabulary, max_atoms
        self.edge_unroll = min(edge_unroll, max_atoms - 1)
        self.epochs, self.max_steps, self.batch_size, self.lr = epochs, max_steps, batch_size, lr
        self.valid_molecules, self.sample_batch = valid_molecules, sample_batch
        self.valences = torch.tensor(max_valences(vocabulary), dtype=torch.long)
        self.net: AutoregressiveFlowNet | None = None
        self.last_sample: dict[str, float] = {}

    def parameters(self):
        return self.net.parameters() if self.net is not None else iter(())

    def _build_net(self) -> AutoregressiveFlowNet:
        raise NotImplementedError

    def _draw_atoms(self, pooled: Tensor, i: int, generator: torch.Generator) -> Tensor:
        """Atom types [G] of position i given the pooled partial graphs [G, d]."""
        raise NotImplementedError

    def _draw_bonds(self, context: Tensor, i: int, j: int, allowed: Tensor,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Bond tokens [G] of (i, j) given [h_i, h_j, pooled] and the tokens the valences allow [G, EDGE_TYPES];
        also whether each token was the model's first draw (no valency check needed)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _on_policy(self) -> Iterator[None]:
        """Sampling temperatures of 1 while the block runs, so that the tokens drawn are scored by the
        likelihood that drew them (PPO's ratios are on-policy); restored afterwards."""
        raise NotImplementedError
        yield

    # ---- data
    def _graphs(self, smiles: Sequence[str], source: str) -> tuple[list[MolGraph], dict[str, int]]:
        report, graphs, outside = ParseReport(), [], 0
        for mol in iter_molecules(list(smiles), report):
            if mol is None:
                continue
            graph = mol_to_graph(mol, self.vocabulary)
            if graph.num_atoms > self.max_atoms:
                raise DataError(f"{source}: a molecule of {graph.num_atoms} heavy atoms exceeds max_atoms={self.max_atoms}")
            graphs.append(graph)
        if report.failed:
            raise DataError(report.message(source))
        kept = []
        for graph in graphs:  # the window is checked in canonical BFS order from atom 0
            order = bfs_order(graph, 0)
            if len(order) < graph.num_atoms or self._ranks_in_window(graph, order) is None:
                outside += 1  # a bond outside the window, or disconnected (salts: not one BFS sequence)
                continue
            kept.append(graph)
        return kept, {"molecules": len(graphs), "left_out": outside}

    def _ranks_in_window(self, graph: MolGraph, order: np.ndarray) -> np.ndarray | None:
        """Each atom's position in ``order``, or None when a bond joins atoms more than ``edge_unroll`` apart."""
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        if len(graph.bonds) and (np.abs(rank[graph.bonds[:, 0]] - rank[graph.bonds[:, 1]]) > self.edge_unroll).any():
            return None
        return rank

    def _batch(self, graphs: Sequence[MolGraph], rng: np.random.RandomState | None) -> tuple[Tensor, Tensor, Tensor]:
        """Padded tensors in BFS order from a random start atom (atom 0 when ``rng`` is None); a start whose
        order puts a bond outside the window falls back to atom 0, which was checked."""
        ordered = []
        for graph in graphs:
            order = bfs_order(graph, int(rng.randint(graph.num_atoms)) if rng is not None else 0)
            rank = self._ranks_in_window(graph, order)
            if rank is None:
                order = bfs_order(graph, 0)
                rank = self._ranks_in_window(graph, order)
            bonds = np.column_stack([rank[graph.bonds[:, 0]], rank[graph.bonds[:, 1]], graph.bonds[:, 2]])
            ordered.append(MolGraph(graph.atoms[order], bonds))
        return self._ordered_batch(ordered)

    def _ordered_batch(self, graphs: Sequence[MolGraph]) -> tuple[Tensor, Tensor, Tensor]:
        """Padded tensors of graphs whose atoms are already in generation order (as ``_sample_batch`` returns
        them): no BFS reordering."""
        n = self.max_atoms
        atoms = torch.full((len(graphs), n), -1, dtype=torch.long)
        bonds = torch.full((len(graphs), n, n), NO_BOND, dtype=torch.long)
        for b, graph in enumerate(graphs):
            atoms[b, : graph.num_atoms] = torch.from_numpy(graph.atoms)
            for i, j, t in graph.bonds.tolist():
                bonds[b, i, j] = bonds[b, j, i] = t
        return atoms, bonds, torch.tensor([graph.num_atoms for graph in graphs], dtype=torch.long)

    def _nll(self, graphs: Sequence[MolGraph]) -> float:
        """Mean NLL per token of ``graphs`` in canonical order; likelihood noise from a fixed seed, so every
        epoch is scored on the same draws."""
        assert self.net is not None
        self.net.eval()
        total, tokens = 0.0, 0
        generator = torch.Generator().manual_seed(VALIDATION_NOISE_SEED)
        with torch.no_grad():
            for start in range(0, len(graphs), 256):
                ll, count = self.net.log_likelihood(*self._batch(graphs[start : start + 256], None), generator)
                total, tokens = total - float(ll.sum()), tokens + int(count.sum())
        return total / max(tokens, 1)

    # ---- protocol
    def fit(self, train: list[str], valid: list[str], seed: int,
            on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        torch.manual_seed(seed)
        rng = np.random.RandomState(seed)
        graphs, counts = self._graphs(train, f"{self.name} training SMILES")
        valid_graphs, _ = self._graphs(valid[: self.valid_molecules], f"{self.name} validation SMILES")
        if not graphs:
            raise DataError(f"{self.name}: no training molecule fits the generation order; raise edge_unroll")
        self.net = self._build_net()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        selection = BestValidationEpoch(self.name, self.net, self.epochs, "token", on_epoch)
        start, steps, step_limit = time.perf_counter(), 0, math.inf if self.max_steps is None else self.max_steps
        for epoch in range(1, self.epochs + 1):
            self.net.train()
            order = rng.permutation(len(graphs))
            total, tokens = 0.0, 0
            for step, first in enumerate(range(0, len(order), self.batch_size)):
                if steps >= step_limit:
                    break
                steps += 1
                batch = [graphs[i] for i in order[first : first + self.batch_size]]
                ll, count = self.net.log_likelihood(*self._batch(batch, rng))
                _descend(optimizer, -ll.sum() / count.sum(), f"{self.name}: loss", f"epoch {epoch}, step {step}",
                         f"lower lr (now {self.lr})")
                total, tokens = total - float(ll.detach().sum()), tokens + int(count.sum())
            selection.end_epoch(epoch, total / max(tokens, 1), self._nll(valid_graphs))
            if steps >= step_limit:
                break
        return {**selection.restore(), "steps": steps, "train_s": time.perf_counter() - start,
                "train_molecules": counts["molecules"], "left_out_molecules": counts["left_out"]}

    def sample(self, count: int, seed: int) -> list[str]:
        if self.net is None:
            raise RuntimeError(f"{self.name} must be fitted before sampling")
        generator = torch.Generator().manual_seed(seed)
        smiles, corrected = [], 0
        for first in range(0, count, self.sample_batch):
            graphs, fixes = self._sample_batch(min(self.sample_batch, count - first), generator)
            corrected += int(fixes.sum())
            smiles += [canonical_smiles(graph_to_mol(g, self.vocabulary)) or "" for g in graphs]
        self.last_sample = {"validity_without_check_frac": 1.0 - corrected / max(count, 1)}
        return smiles

    @torch.no_grad()
    def _sample_batch(self, batch: int, generator: torch.Generator,
                      prefixes: Prefixes | None = None) -> tuple[list[MolGraph], Tensor]:
        """``batch`` molecules at once: every step draws one token for all unfinished molecules. With
        ``prefixes``, a molecule's first ``keep`` atoms and their bonds are copied, not drawn (constrained
        optimisation continues a start molecule); a step whose every molecule copies skips the network. The
        partial graphs are embedded cropped to the atoms that exist (before atom i, or up to it for its bonds):
        absent atoms carry no embedding and batch norm runs on its running statistics, so this is the same
        embedding at about half the cost."""
        net, n = self.net, self.max_atoms
        assert net is not None
        net.eval()
        atoms = torch.full((batch, n), -1, dtype=torch.long)
        bonds = torch.full((batch, n, n), NO_BOND, dtype=torch.long)
        keep = torch.zeros(batch, dtype=torch.long) if prefixes is None else prefixes.keep
        used = torch.zeros(batch, n, dtype=torch.long)  # valence used per atom
        alive = torch.ones(batch, dtype=torch.bool)
        corrected = torch.zeros(batch, dtype=torch.bool)
        bond_cost = torch.tensor([*BOND_ORDERS, 0])
        for i in range(n):
            copied = i < keep
            if bool(copied.all()):
                atoms[:, i] = prefixes.atoms[:, i]
            else:
                k = max(i, 1)  # only atoms before i exist: the partial graphs are embedded cropped to them
                _, pooled = net.embed(atoms[:, :k], bonds[:, :k, :k], atoms[:, :k] >= 0)
                drawn = self._draw_atoms(pooled, i, generator)
                if prefixes is not None:
                    drawn = torch.where(copied, prefixes.atoms[:, i], drawn)
                atoms[:, i] = torch.where(alive, drawn, -1)
            connected = torch.zeros(batch, dtype=torch.bool)
            for j in range(max(0, i - self.edge_unroll), i):
                if bool(copied.all()):
                    token, ok = prefixes.bonds[:, i, j], torch.ones(batch, dtype=torch.bool)
                else:
                    h, pooled = net.embed(atoms[:, : i + 1], bonds[:, : i + 1, : i + 1], atoms[:, : i + 1] >= 0)
                    context = torch.cat([h[:, i], h[:, j], pooled], -1)
                    room = torch.minimum(self._capacity(atoms[:, i]) - used[:, i], self._capacity(atoms[:, j]) - used[:, j])
                    allowed = bond_cost.view(1, -1) <= room.view(-1, 1)
                    token, ok = self._draw_bonds(context, i, j, allowed, generator)
                    if prefixes is not None:
                        token, ok = torch.where(copied, prefixes.bonds[:, i, j], token), ok | copied
                live = alive & (atoms[:, j] >= 0)
                token = torch.where(live, token, NO_BOND)
                corrected |= live & ~ok
                bonds[:, i, j] = bonds[:, j, i] = token
                used[:, i] += bond_cost[token]
                used[:, j] += bond_cost[token]
                connected |= token != NO_BOND
            if i > 0:
                ended = alive & ~connected & ~copied
                atoms[ended, i] = -1
                alive &= connected | copied
            if not alive.any():
                break
        graphs = []
        for b in range(batch):
            size = int((atoms[b] >= 0).sum())
            tokens = bonds[b, :size, :size]
            i, j = torch.nonzero(torch.triu(tokens != NO_BOND, diagonal=1), as_tuple=True)
            edges = torch.stack([i, j, tokens[i, j]], 1) if len(i) else torch.zeros(0, 3, dtype=torch.long)
            graphs.append(MolGraph(atoms[b, :size].numpy().copy(), edges.numpy().copy()))
        return graphs, corrected

    # ---- goal-directed: PPO fine-tuning, property and constrained optimisation
    def fit_goal_directed(self, train: list[str], values: Sequence[float], seed: int,
                          on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        """Maximum-likelihood pre-training, as for random generation, on the task's training molecules; every 20th
        is held out for the validation NLL (the task has no validation split). The labels are not used: the papers
        optimise with the property oracle during fine-tuning (``optimise``), whose calls are counted."""
        held_out = set(range(19, len(train), 20))
        return self.fit([s for k, s in enumerate(train) if k not in held_out], [train[k] for k in sorted(held_out)],
                        seed, on_epoch)

    def optimise(self, starts: Sequence[str], seed: int, record_every: int = 1, target: str | None = None,
                 task: str = "property") -> list[list[str]]:
        """``task`` "property": PPO fine-tuning with ``target`` of each generated molecule as the reward, then
        ``policy.samples`` molecules from the tuned model, handed to the starts in equal slices (generation starts
        from scratch). ``task`` "constrained": PPO with the improvement target(m') - target(m) over continuations
        of the starts m as the reward, then ``policy.rollouts`` continuations of each start at the sampling
        temperatures; the molecule after every ``record_every``-th added atom, and the finished one, are its
        candidates (GraphAF's code records after every added atom: ``record_every`` 1). A start that is not one
        BFS sequence within the window, or has no room for another atom, gets no candidate."""
        if self.net is None:
            raise RuntimeError(f"{self.name} must be fitted before optimising")
        if target is None:
            raise ValueError(f"{self.name} optimises a named property: pass target (e.g. 'plogp')")
        if task == "property":
            self.finetune(target, seed)
            samples = [s for s in self.sample(self.policy.samples, seed) if s]
            per_start = -(-len(samples) // max(len(starts), 1))
            return [samples[k * per_start : (k + 1) * per_start] for k in range(len(starts))]
        if task != "constrained":
            raise ValueError(f"{self.name}: unknown optimisation task {task!r} (property or constrained)")
        usable = self._start_graphs(starts)
        self.finetune(target, seed, starts=[starts[k] for k in usable])
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.RandomState(seed)
        candidates: list[list[str]] = [[] for _ in starts]
        rows = [k for k in usable for _ in range(self.policy.rollouts)]
        for first in range(0, len(rows), self.sample_batch):
            chunk = rows[first : first + self.sample_batch]
            prefixes = self._prefixes([usable[k] for k in chunk], rng)
            graphs, _ = self._sample_batch(len(chunk), generator, prefixes)
            for k, graph, keep in zip(chunk, graphs, prefixes.keep.tolist(), strict=True):
                for size in range(keep + 1, graph.num_atoms + 1):
                    if (size - keep) % record_every == 0 or size == graph.num_atoms:
                        smiles = canonical_smiles(graph_to_mol(_first_atoms(graph, size), self.vocabulary))
                        if smiles:
                            candidates[k].append(smiles)
        return [list(dict.fromkeys(found)) for found in candidates]

    def _start_graphs(self, starts: Sequence[str]) -> dict[int, MolGraph]:
        """Each usable start's graph in canonical generation order (BFS from atom 0), by start index."""
        usable = {}
        for k, smiles in enumerate(starts):
            mol = next(iter_molecules([smiles], ParseReport()))
            if mol is None:
                continue
            try:
                graph = mol_to_graph(mol, self.vocabulary)
            except DataError:  # an atom or bond outside the vocabulary
                continue
            order = bfs_order(graph, 0)
            if graph.num_atoms >= self.max_atoms or len(order) < graph.num_atoms:
                continue
            rank = self._ranks_in_window(graph, order)
            if rank is None:
                continue
            bonds = np.column_stack([rank[graph.bonds[:, 0]], rank[graph.bonds[:, 1]], graph.bonds[:, 2]])
            usable[k] = MolGraph(graph.atoms[order], bonds)
        return usable

    def _prefixes(self, graphs: Sequence[MolGraph], rng: np.random.RandomState) -> Prefixes:
        """Start graphs as prefixes; each keeps its whole graph with probability 1/2, else drops its last
        uniform{0..modify_size - 1} atoms (at least one atom stays)."""
        atoms, bonds, sizes = self._ordered_batch(graphs)
        drop = np.where(rng.rand(len(graphs)) < 0.5, rng.randint(0, self.policy.modify_size, len(graphs)), 0)
        keep = torch.clamp(sizes - torch.from_numpy(drop), min=1)
        positions = torch.arange(self.max_atoms)
        kept = positions.view(1, -1) < keep.view(-1, 1)
        atoms = torch.where(kept, atoms, -1)
        bonds = torch.where(kept.unsqueeze(2) & kept.unsqueeze(1), bonds, NO_BOND)
        return Prefixes(atoms, bonds, keep)

    def finetune(self, target: str, seed: int, starts: Sequence[str] | None = None) -> list[dict[str, float]]:
        """PPO (Schulman et al. 2017) on the generation policy, as GraphAF and GraphDF fine-tune: per iteration,
        ``policy.batch`` molecules are drawn at temperature 1 (``_on_policy``, so the ratios below are on-policy)
        -- from scratch, or continuing starts drawn uniformly from ``starts`` -- and rewarded with
        r = target(m') (property), or r = target(m') - target(m) (constrained, m the start), or
        ``invalid_reward`` if RDKit rejects m'. A = (r - b) / std(r) with b a moving average of the batch means;
        then ``policy.epochs`` Adam steps on

            L = - sum_t S_t / #tokens,   S_t = min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A),   rho_t = p(x_t) / p_old(x_t),

        with S_t = max(S_t, c A) where A < 0 (dual-clip PPO, Ye et al. 2020, c = ``policy.dual_clip``: a continuous
        density's ratio can grow without bound, and with it the loss of a negative advantage) and log rho_t capped
        at ``MAX_LOG_RATIO`` so that exp stays finite, over every drawn token t (copied prefix tokens are no action and are left out), scored in parallel as in
        training, batch norm on its running statistics so the policy scored is the one sampled. A model whose
        likelihood draws noise (GraphAF's dequantization) scores old and new policy on the same noise, so rho
        compares two densities at one point. A bond redrawn by the valency check is scored under the unmasked
        distribution. Records the oracle calls (one per rollout) in ``oracle_calls``."""
        from dig.tracks.generation.properties import property_value

        net, settings = self.net, self.policy
        assert net is not None
        net.eval()
        optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.RandomState(seed)
        start_graphs = list(self._start_graphs(starts).values()) if starts is not None else None
        if start_graphs is not None and not start_graphs:
            raise DataError(f"{self.name}: no start molecule fits the generation order (max_atoms "
                            f"{self.max_atoms}, edge_unroll {self.edge_unroll})")
        baseline, history = None, []
        with self._on_policy():
            for iteration in range(1, settings.iterations + 1):
                prefixes, origins = None, None
                if start_graphs is not None:
                    picked = rng.randint(len(start_graphs), size=settings.batch)
                    prefixes = self._prefixes([start_graphs[k] for k in picked], rng)
                    origins = [graph_to_mol(start_graphs[k], self.vocabulary) for k in picked]
                graphs, _ = self._sample_batch(settings.batch, generator, prefixes)
                rewards = []
                for b, graph in enumerate(graphs):
                    mol = graph_to_mol(graph, self.vocabulary)
                    if mol is None:
                        rewards.append(settings.invalid_reward)
                        continue
                    value = property_value(mol, target)
                    rewards.append(value - property_value(origins[b], target) if origins is not None else value)
                reward = torch.tensor(rewards, dtype=torch.float32)
                mean = reward.mean()
                baseline = mean if baseline is None else settings.baseline_decay * baseline + (1 - settings.baseline_decay) * mean
                advantage = ((reward - baseline) / (reward.std() + 1e-8)).view(-1, 1)
                atoms, bonds, sizes = self._ordered_batch(graphs)
                noise_seed = int(generator.initial_seed()) * 1_000_003 + iteration
                with torch.no_grad():
                    old, real = net.token_log_likelihoods(atoms, bonds, sizes, torch.Generator().manual_seed(noise_seed))
                if prefixes is not None:  # copied tokens are not actions
                    rows = net.steps[: real.shape[1], 1]
                    real = real & (rows.view(1, -1) >= prefixes.keep.view(-1, 1))
                for _ in range(settings.epochs):
                    new, _ = net.token_log_likelihoods(atoms, bonds, sizes, torch.Generator().manual_seed(noise_seed))
                    ratio = torch.exp((new - old).clamp(max=MAX_LOG_RATIO))
                    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - settings.clip, 1 + settings.clip) * advantage)
                    surrogate = torch.where(advantage < 0, torch.maximum(surrogate, settings.dual_clip * advantage), surrogate)
                    _descend(optimizer, -(surrogate * real).sum() / real.sum().clamp(min=1), f"{self.name}: PPO loss",
                             f"iteration {iteration}", f"lower ppo_lr (now {settings.lr})")
                kind = "improvement" if origins is not None else "mean"
                history.append({"iteration": iteration, f"{kind}_{target}": float(mean),
                                f"best_{target}": float(reward.max())})
        self.oracle_calls = settings.iterations * settings.batch
        self.finetune_history = history
        return history

    def _capacity(self, atom_types: Tensor) -> Tensor:
        return torch.where(atom_types >= 0, self.valences[atom_types.clamp(min=0)], 0)


def _descend(optimizer: torch.optim.Optimizer, loss: Tensor, what: str, where: str, fix: str) -> None:
    """One optimiser step on ``loss``; a loss that is not finite ends the job as a ``TrainingError`` naming
    ``what`` became what, ``where``, and the ``fix``."""
    if not torch.isfinite(loss):
        raise TrainingError(f"{what} became {loss.item()} at {where}; {fix}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _first_atoms(graph: MolGraph, size: int) -> MolGraph:
    """The molecule after the first ``size`` atoms of a graph in generation order, with their bonds."""
    bonds = graph.bonds[(graph.bonds[:, 0] < size) & (graph.bonds[:, 1] < size)] if len(graph.bonds) else graph.bonds
    return MolGraph(graph.atoms[:size], bonds)
