"""dig plugin hook: PyG's GNNExplainer and PGExplainer as reference explainers of the xgraph track.

The explainers live in ``dig_pyg.explainers``; the factories import it (and PyG) only when a job builds one, so
discovering this plugin stays cheap for every worker process.
"""

from __future__ import annotations

from importlib.util import find_spec

from dig.plugins import hookimpl


def build_gnnexplainer(**hparams):
    from dig_pyg.explainers import PyGGNNExplainer

    return PyGGNNExplainer(**hparams)


def build_pgexplainer(**hparams):
    from dig_pyg.explainers import PyGPGExplainer

    return PyGPGExplainer(**hparams)


@hookimpl
def dig_register(registry) -> None:
    if find_spec("torch_geometric") is None:
        raise ImportError("dig-pyg runs PyG's explainers and needs torch_geometric: pip install torch_geometric")
    registry.add_explainer(
        "pyg-gnnexplainer", build_gnnexplainer, track="xgraph", relative_cost=5.0,
        hparams={"smoke": {"epochs": 20}, "default": {"epochs": 100}},
        summary="Reference: PyG's torch_geometric.explain.GNNExplainer on a PyG mirror of the same model")
    registry.add_explainer(
        "pyg-pgexplainer", build_pgexplainer, track="xgraph", relative_cost=2.0,
        hparams={"smoke": {"epochs": 5}, "default": {"epochs": 30}},
        summary="Reference: PyG's torch_geometric.explain.PGExplainer on a PyG mirror, fitted on training instances")
