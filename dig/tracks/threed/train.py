"""The 3D track's training loop: Adam with a learning-rate schedule, L1 loss on standardized targets,
model selection on the validation split only, and one evaluation of the test split at the selected epoch."""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dig.errors import TrainingError
from dig.tracks.base import EpochCallback
from dig.tracks.threed.protocol import MAX_ATOMIC_NUMBER, MoleculeBatch, Molecules, TargetSpec, TargetStats


@dataclass(frozen=True)
class TrainConfig:
    """How a 3D job trains: Adam on the L1 loss of standardized targets (plus rho times the force L1 loss), a
    learning-rate schedule, model selection on the validation split after every epoch."""

    epochs: float  # epochs; a fraction trains on the first part of the last epoch's shuffled order (equal-time budgets)
    batch_size: int = 32  # molecules per training step
    eval_batch_size: int = 32  # measured on CPU: SphereNet predicts 119 molecules/s at 32, 85 at 256
    lr: float = 5e-4  # Adam's peak learning rate
    schedule: str = "cosine"  # "cosine": to lr * min_lr_ratio over all steps; "step": * gamma every step_epochs
    min_lr_ratio: float = 0.02  # final / peak learning rate of the cosine schedule
    step_epochs: int = 100  # epochs between decays of the step schedule
    gamma: float = 0.5  # decay factor of the step schedule
    warmup_epochs: float = 0.0  # linear warm-up from 0 over this many epochs
    weight_decay: float = 0.0  # Adam's L2 penalty
    grad_clip: float = 10.0  # gradient norm clipped to this (0: no clipping)
    forces_weight: float = 0.0  # rho in L(E) + rho * L(F); > 0 trains on forces = -dE/dpos (datasets with forces)


class MoleculeLoader:
    """Batches of whole molecules gathered from the concatenated arrays (no per-molecule Python objects)."""

    def __init__(
        self,
        molecules: Molecules,
        indices: np.ndarray,
        target_columns: Sequence[int],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.z = torch.from_numpy(molecules.z.astype(np.int64))
        self.pos = torch.from_numpy(molecules.pos.astype(np.float32))
        self.ptr = molecules.ptr
        self.y = torch.from_numpy(molecules.y[:, list(target_columns)].astype(np.float32))
        self.forces = None if molecules.forces is None else torch.from_numpy(molecules.forces.astype(np.float32))
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.RandomState(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def batch(self, mol: np.ndarray) -> MoleculeBatch:
        starts, stops = self.ptr[mol], self.ptr[mol + 1]
        sizes = stops - starts
        ptr = np.zeros(len(mol) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(sizes)
        atoms = torch.from_numpy(np.repeat(starts - ptr[:-1], sizes) + np.arange(ptr[-1]))
        return MoleculeBatch(
            z=self.z[atoms],
            pos=self.pos[atoms],
            batch=torch.from_numpy(np.repeat(np.arange(len(mol)), sizes)),
            ptr=torch.from_numpy(ptr),
            y=self.y[torch.from_numpy(mol)],
            num_graphs=len(mol),
            forces=None if self.forces is None else self.forces[atoms],
        )

    def __iter__(self) -> Iterator[MoleculeBatch]:
        order = self.rng.permutation(self.indices) if self.shuffle else self.indices
        for start in range(0, len(order), self.batch_size):
            yield self.batch(order[start : start + self.batch_size])


def composition(molecules: Molecules, indices: np.ndarray) -> np.ndarray:
    """[n, MAX_ATOMIC_NUMBER + 1] count of each element in each molecule."""
    starts, sizes = molecules.ptr[indices], molecules.ptr[indices + 1] - molecules.ptr[indices]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    atoms = np.repeat(starts - offsets, sizes) + np.arange(sizes.sum())
    rows = np.repeat(np.arange(len(indices)), sizes)
    width = MAX_ATOMIC_NUMBER + 1
    flat = np.bincount(rows * width + molecules.z[atoms], minlength=len(indices) * width)
    return flat.reshape(len(indices), width).astype(np.float64)


def target_stats(molecules: Molecules, train: np.ndarray, columns: Sequence[int]) -> tuple[TargetStats, np.ndarray]:
    """Training-set statistics (see ``TargetStats``) and the per-target loss scale.

    Extensive targets get per-element reference values: the dataset's isolated-atom values where it has them,
    corrected by a least-squares fit of the training targets on element counts (elements seen in training
    only, so an element absent from a small training set keeps its physical reference). The loss scale is
    the standard deviation of what is left after that fit, or of the target itself for intensive targets.
    """
    targets = tuple(molecules.targets[c] for c in columns)
    y = molecules.y[np.ix_(train, list(columns))]
    counts = composition(molecules, train)
    atoms = counts.sum(1, keepdims=True)
    present = np.flatnonzero(counts.sum(0))
    atomref = np.zeros((MAX_ATOMIC_NUMBER + 1, len(columns)))
    mean, std, scale = np.zeros(len(columns)), np.ones(len(columns)), np.ones(len(columns))
    for t, (column, spec) in enumerate(zip(columns, targets, strict=True)):
        if spec.extensive:
            if molecules.atomref is not None:
                atomref[:, t] = np.nan_to_num(molecules.atomref[:, column])
            remainder = y[:, t] - counts @ atomref[:, t]
            correction, *_ = np.linalg.lstsq(counts[:, present], remainder, rcond=None)
            atomref[present, t] += correction
            residual = remainder - counts[:, present] @ correction
            per_atom = residual / atoms[:, 0]
            mean[t], std[t], scale[t] = per_atom.mean(), per_atom.std(), residual.std()
        else:
            mean[t], std[t], scale[t] = y[:, t].mean(), y[:, t].std(), y[:, t].std()
    std[std <= 0] = 1.0
    scale[scale <= 0] = 1.0
    stats = TargetStats(
        targets=targets,
        mean=torch.tensor(mean),
        std=torch.tensor(std),
        atomref=torch.tensor(atomref),
        y_mean=torch.tensor(y.mean(0)),
        y_std=torch.tensor(y.std(0)),
    )
    return stats, scale


def scored_std(molecules: Molecules, columns: Sequence[int]) -> list[float]:
    """Per target, the standard deviation over the whole dataset of the quantity a model is scored on: the
    atomization energy y - sum_atoms atomref[z] for extensive targets with isolated-atom references (QM9's U0:
    ~10 eV, where the total energy's std, ~1,100 eV, is mostly molecule size), the target itself otherwise."""
    every = np.arange(len(molecules))
    counts = composition(molecules, every) if molecules.atomref is not None else None
    out = []
    for column in columns:
        values = molecules.y[:, column]
        if counts is not None and molecules.targets[column].extensive:
            reference = molecules.atomref[:, column]
            used = counts.sum(0) > 0
            if np.isfinite(reference[used]).all():
                values = values - counts[:, used] @ reference[used]
        out.append(float(values.std()))
    return out


def _lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    epoch = step / max(steps_per_epoch, 1)
    warm = min(1.0, (epoch + 1e-9) / config.warmup_epochs) if config.warmup_epochs > 0 else 1.0
    if config.schedule == "step":
        return warm * config.gamma ** int(epoch // config.step_epochs)
    if config.schedule == "cosine":
        progress = min(1.0, step / training_steps(config.epochs, steps_per_epoch))
        low = config.min_lr_ratio
        return warm * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule {config.schedule!r}; use 'cosine' or 'step'")


def energy_and_forces(model: nn.Module, batch: MoleculeBatch, create_graph: bool) -> tuple[Tensor, Tensor]:
    """Predictions [B, T] and forces F = -dE/dpos [A, 3] of the first target (the energy), by autograd."""
    pos = batch.pos.detach().requires_grad_(True)
    batch = MoleculeBatch(**{**batch.__dict__, "pos": pos})
    with torch.enable_grad():
        out = model(batch)
        grad = None
        if out.requires_grad:
            (grad,) = torch.autograd.grad(out[:, 0].sum(), pos, create_graph=create_graph, allow_unused=True)
    if grad is None:  # a model that ignores positions (the mean baseline) predicts zero forces
        grad = torch.zeros_like(pos)
    return out, -grad


@dataclass
class Predictions:
    y: np.ndarray  # [n, T]
    forces: np.ndarray | None = None  # [A, 3]


def predict(
    model: nn.Module, loader: MoleculeLoader, with_forces: bool = False, offset: float = 0.0
) -> tuple[Predictions, Predictions]:
    """Model predictions and references for every molecule of ``loader`` (forces too when asked); ``offset``
    is added to the first target (see ``energy_offset``)."""
    model.eval()
    preds, refs, pred_f, ref_f = [], [], [], []
    for batch in loader:
        if with_forces:
            out, forces = energy_and_forces(model, batch, create_graph=False)
            pred_f.append(forces.detach().double())
            ref_f.append(batch.forces.double())
        else:
            with torch.no_grad():
                out = model(batch)
        out = out.detach().double()
        if offset:
            out[:, 0] += offset
        preds.append(out)
        refs.append(batch.y.double())
    cat = lambda parts: torch.cat(parts).numpy() if parts else None  # noqa: E731
    return Predictions(cat(preds), cat(pred_f)), Predictions(cat(refs), cat(ref_f))


def energy_offset(model: nn.Module, train: MoleculeLoader) -> float:
    """The constant of integration of a force-trained energy, refit on the training split: the median of
    E_ref - E_pred over the training molecules (the L1-optimal shift).

    Forces fix a continuous energy surface only up to a constant, and with loss L(E) + rho * L(F), rho = 100,
    the energy term is too weak to keep that constant from drifting while the forces are learned (measured on
    xtb-aspirin, ComENet, default budget: test energy MAE 220 meV of which a constant 217 meV bias, 87 meV once
    it is removed). Refitting it uses training energies only and changes no force."""
    pred, ref = predict(model, train)
    return float(np.median(ref.y[:, 0] - pred.y[:, 0])) if ref.y is not None else 0.0


@dataclass
class FitResult:
    epochs: float
    best_epoch: int
    train_s: float
    history: list[dict[str, float]]


def fit(
    model: nn.Module,
    train: MoleculeLoader,
    valid: MoleculeLoader,
    loss_scale: np.ndarray,
    config: TrainConfig,
    model_name: str,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train ``model`` in place; at the end it holds the weights of the epoch with the lowest validation loss."""
    memorize = getattr(model, "fit_training_set", None)
    if memorize is not None:  # a model fitted without gradients (the nearest-frame baseline)
        memorize(train)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:  # nothing to train (the mean baseline)
        return FitResult(0, 0, 0.0, [])
    scale = torch.tensor(loss_scale, dtype=torch.float32)
    with_forces = config.forces_weight > 0
    if with_forces and train.forces is None:
        raise TrainingError(f"{model_name}: forces_weight > 0 but the dataset has no forces")
    # forces are scaled like the energy (per atom), so rho keeps its published meaning
    force_scale = float(loss_scale[0])
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(train)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(config, s, steps_per_epoch))
    best_score, best_state, best_epoch, history = math.inf, None, 0, []
    total_steps = training_steps(config.epochs, steps_per_epoch)
    epochs = math.ceil(total_steps / steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = 0.0, 0
        for step, batch in enumerate(itertools.islice(train, total_steps - (epoch - 1) * steps_per_epoch)):
            if with_forces:
                out, forces = energy_and_forces(model, batch, create_graph=True)
                loss = ((out - batch.y).abs() / scale).mean()
                loss = loss + config.forces_weight * (forces - batch.forces).abs().mean() / force_scale
            else:
                loss = ((model(batch) - batch.y).abs() / scale).mean()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"{model_name}: loss became {loss.item()} at epoch {epoch}, step {step}; lower the learning "
                    f"rate (now {scheduler.get_last_lr()[0]:.2e}) or check the model's output scaling"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            total += loss.item() * batch.num_graphs
            count += batch.num_graphs
        pred, ref = predict(model, valid, with_forces)
        score = float((np.abs(pred.y - ref.y).mean(0) / loss_scale).mean())
        if with_forces:
            score += config.forces_weight * float(np.abs(pred.forces - ref.forces).mean()) / force_scale
        if not math.isfinite(score):
            raise TrainingError(f"{model_name}: validation predictions are not finite at epoch {epoch}")
        if score < best_score:
            best_score, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        record = {"epoch": epoch, "train_loss": total / max(count, 1), "valid_loss": score, "molecules": count}
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, epochs, record)
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(total_steps / steps_per_epoch, best_epoch, time.perf_counter() - start, history)


def training_steps(epochs: float, steps_per_epoch: int) -> int:
    """Optimiser steps of ``epochs`` epochs (a fraction rounds to the nearest step; at least one step)."""
    return max(1, round(epochs * steps_per_epoch))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def target_columns(molecules: Molecules, names: Sequence[str]) -> tuple[list[int], tuple[TargetSpec, ...]]:
    columns = molecules.target_index(names)
    return columns, tuple(molecules.targets[c] for c in columns)

