"""The linear probe on frozen embeddings, with hyper-parameters chosen on training folds only.

Graph level (the protocol of InfoGraph and GraphCL, minus their selection on test folds): 10-fold outer
cross-validation (stratified for classes); inside each outer training fold, 5-fold inner CV picks the
regularisation: C of an L2 logistic regression (scikit-learn's ``LogisticRegressionCV``, by accuracy) for
classes, alpha of a ridge regression (``GridSearchCV``, by MAE) for regression. The refitted estimator
scores the outer test fold once. Features are standardised inside the pipeline, so the scaler too sees
training rows only. Reported: mean and std over the outer folds.

Node level (DGI's and GRACE's protocol on fixed masks): an L2 logistic regression on standardised
embeddings, C chosen by accuracy on the validation nodes (``GridSearchCV`` with a ``PredefinedSplit``, fitting
on the training nodes only), then refitted on the training nodes with that C and scored once on the test
nodes (``probe_nodes``).

Why logistic regression and not the papers' linear SVM: on 384-dimensional GIN embeddings of 1,145
molecules, liblinear's primal SVM needed 33 s at C = 10 and did not converge in 5,000 iterations at C >= 100
(100 s per fit), so one nested probe (360 fits) took over an hour. ``LogisticRegressionCV`` walks the C grid
with warm starts and took 3 s per outer fold on the same embeddings (tolerance 1e-3 on the gradient; the
chosen C and test accuracy matched tolerance 1e-4, which took 12 s). Both are linear probes with C chosen
on training folds; the issue allows either.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
ALPHA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class ProbeScore:
    metric: str  # e.g. "accuracy_frac", "mae_kcal_per_mol"
    mean: float
    std: float
    folds: tuple[float, ...]
    chosen: tuple[float, ...]  # the hyper-parameter chosen in each outer fold
    unconverged_fits: int = 0  # fits that stopped at max_iter (scikit-learn's ConvergenceWarning)
    validation: float | None = None  # node level: the chosen C's validation accuracy


def default_classifier():
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(C_GRID), l1_ratios=(0.0,), cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring="accuracy", tol=1e-3, max_iter=5000, use_legacy_attributes=False))


def default_regressor():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), Ridge())
    return GridSearchCV(pipeline, {"ridge__alpha": list(ALPHA_GRID)},
                        cv=KFold(5, shuffle=True, random_state=0), scoring="neg_mean_absolute_error")


def probe_metric(task: str, unit: str = "") -> str:
    """The graph-level metric name: ``accuracy_frac`` for classes, ``mae_<unit>`` for regression."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return "accuracy_frac" if task == "classification" else (f"mae_{unit}" if unit else "mae")


def outer_splits(labels: np.ndarray, task: str, seed: int, folds: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """The graph-level protocol's outer folds, (training rows, test rows) each: stratified for classes,
    shuffled with ``seed``. The probe and the graph-level ``supervised`` row use exactly these."""
    from sklearn.model_selection import KFold, StratifiedKFold

    probe_metric(task)
    splitter = (StratifiedKFold if task == "classification" else KFold)(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(labels), 1)), labels))


def probe(embeddings: np.ndarray, labels: np.ndarray, task: str, seed: int, unit: str = "",
          estimator: Callable[[], object] | None = None, folds: int = 10) -> ProbeScore:
    """Nested CV of a linear probe. ``task`` is ``classification`` (accuracy) or ``regression`` (MAE in
    ``unit``). ``estimator`` builds the inner search (default: the grids above); the outer split uses ``seed``."""
    from sklearn.model_selection import cross_validate

    if not np.isfinite(embeddings).all():
        raise ValueError("the embeddings contain NaN or inf; the encoder diverged")
    outer = outer_splits(labels, task, seed, folds)
    metric = probe_metric(task, unit)
    if task == "classification":
        search, scoring, sign = (estimator or default_classifier)(), "accuracy", 1.0
    else:
        search, scoring, sign = (estimator or default_regressor)(), "neg_mean_absolute_error", -1.0
    with _fitting() as unconverged:
        result = cross_validate(search, embeddings, labels, cv=outer, scoring=scoring, return_estimator=True,
                                error_score="raise")
    scores = tuple(float(sign * s) for s in result["test_score"])
    chosen = tuple(_chosen_regularisation(e) for e in result["estimator"])
    return ProbeScore(metric, float(np.mean(scores)), float(np.std(scores)), scores, chosen, len(unconverged))


@contextmanager
def _fitting() -> Iterator[list]:
    """Fits inside run on one BLAS thread (these matrices are small, and two threads beside a second process
    were 6-10x slower); the list it yields collects the fits that stopped at max_iter (scikit-learn's
    ConvergenceWarning), and every other warning is passed on."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    unconverged: list = []
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield unconverged
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            unconverged.append(w)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _chosen_regularisation(fitted) -> float:
    """The C or alpha that the inner CV of one outer fold chose."""
    if hasattr(fitted, "best_params_"):
        return float(next(iter(fitted.best_params_.values())))
    final = fitted[-1] if hasattr(fitted, "steps") else fitted
    return float(np.ravel(final.C_)[0]) if hasattr(final, "C_") else float("nan")


def probe_nodes(embeddings: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray,
                test: np.ndarray, estimator: Callable[[], object] | None = None) -> ProbeScore:
    """Logistic regression on the ``train`` rows, C chosen on the ``val`` rows, ``test`` rows scored once.
    ``estimator`` builds the unfitted pipeline whose last step takes ``C`` (default: scaler + logistic)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, val, test = (np.asarray(s, dtype=np.int64) for s in (train, val, test))
    if set(train.tolist()) & set(val.tolist()) or set(test.tolist()) & (set(train.tolist()) | set(val.tolist())):
        raise ValueError("the training, validation and test node sets overlap")
    if not np.isfinite(embeddings).all():
        raise ValueError("the embeddings contain NaN or inf; the encoder diverged")
    pipeline = (estimator or (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))))()
    parameter = f"{pipeline.steps[-1][0]}__C"
    rows = np.concatenate([train, val])
    split = PredefinedSplit(np.concatenate([np.full(train.size, -1), np.zeros(val.size, dtype=np.int64)]))
    with _fitting() as unconverged:
        search = GridSearchCV(pipeline, {parameter: list(C_GRID)}, cv=split, scoring="accuracy", refit=False,
                              error_score="raise").fit(embeddings[rows], labels[rows])
        chosen = float(search.best_params_[parameter])
        final = clone(pipeline).set_params(**{parameter: chosen}).fit(embeddings[train], labels[train])
        accuracy = float(final.score(embeddings[test], labels[test]))
    return ProbeScore("accuracy_frac", accuracy, 0.0, (accuracy,), (chosen,), len(unconverged),
                      validation=float(search.best_score_))
