"""The linear probe on frozen embeddings, with hyper-parameters chosen on training folds only.

Graph level (the protocol of InfoGraph and GraphCL, minus their selection on test folds): 10-fold outer
cross-validation (stratified for classes); inside each outer training fold, scikit-learn's ``GridSearchCV``
picks the regularisation (C of a linear SVM, as InfoGraph's and GraphCL's evaluation, or alpha of a ridge
regression) by 5-fold inner CV;
the refitted estimator scores the outer test fold once. Features are standardised inside the pipeline, so
the scaler too sees training rows only. Reported: mean and std over the outer folds.
"""

from __future__ import annotations

from collections.abc import Callable
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


def default_classifier():
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    pipeline = make_pipeline(StandardScaler(), LinearSVC(dual=False, max_iter=5000))
    return GridSearchCV(pipeline, {"linearsvc__C": list(C_GRID)},
                        cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring="accuracy")


def default_regressor():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), Ridge())
    return GridSearchCV(pipeline, {"ridge__alpha": list(ALPHA_GRID)},
                        cv=KFold(5, shuffle=True, random_state=0), scoring="neg_mean_absolute_error")


def probe(embeddings: np.ndarray, labels: np.ndarray, task: str, seed: int, unit: str = "",
          estimator: Callable[[], object] | None = None, folds: int = 10) -> ProbeScore:
    """Nested CV of a linear probe. ``task`` is ``classification`` (accuracy) or ``regression`` (MAE in
    ``unit``). ``estimator`` builds the inner search (default: the grids above); the outer split uses ``seed``."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate

    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if not np.isfinite(embeddings).all():
        raise ValueError("the embeddings contain NaN or inf; the encoder diverged")
    if task == "classification":
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
        search, scoring, metric, sign = (estimator or default_classifier)(), "accuracy", "accuracy_frac", 1.0
    else:
        outer = KFold(folds, shuffle=True, random_state=seed)
        search, scoring, sign = (estimator or default_regressor)(), "neg_mean_absolute_error", -1.0
        metric = f"mae_{unit}" if unit else "mae"
    result = cross_validate(search, embeddings, labels, cv=outer, scoring=scoring, return_estimator=True)
    scores = tuple(float(sign * s) for s in result["test_score"])
    chosen = tuple(float(next(iter(e.best_params_.values()))) if hasattr(e, "best_params_") else float("nan")
                   for e in result["estimator"])
    return ProbeScore(metric, float(np.mean(scores)), float(np.std(scores)), scores, chosen)
