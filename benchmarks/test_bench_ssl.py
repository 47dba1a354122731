"""ssl pre-training throughput, in the same run: GraphCL on solubility molecules with dig's GIN encoder
(``dig.nn.GINConv`` on ``dig.ops`` CSR graphs, ``dig.ops.segment`` pooling) vs the same method whose encoder
is built from PyG's ``GINConv`` and ``global_add_pool`` (outputs checked equal on shared weights; each run
re-initialises both from the same seed, so their weights then differ only in the order the draws are made).
Everything else (views, projection head, NT-Xent, Adam) is shared, so the ratio is the end-to-end
pre-training speed a user sees; graphs per second are reported for both.
"""

from __future__ import annotations

import pytest
import torch
from conftest import RATIOS
from torch import nn

from dig.tracks.ssl.datasets import SolubilityTask
from dig.tracks.ssl.graphs import GraphBatch, collate
from dig.tracks.ssl.methods import GraphCL

STEPS, BATCH = 8, 128


class PygGINEncoder(nn.Module):
    """DIG's sslgraph GIN encoder on PyG layers, with the parameter names of ``dig``'s ``GINEncoder``."""

    def __init__(self, reference: nn.Module) -> None:
        super().__init__()
        from torch_geometric.nn import GINConv

        self.convs = nn.ModuleList(GINConv(conv.nn) for conv in reference.convs)
        self.norms = reference.norms
        self.out_features = reference.out_features

    def forward(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        from torch_geometric.nn import global_add_pool

        x, states = batch.x, []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(torch.relu(conv(x, batch.edge_index)))
            states.append(x)
        nodes = torch.cat(states, dim=1)
        return global_add_pool(nodes, batch.graph_of_node(), size=batch.num_graphs), nodes


def _methods():
    data = SolubilityTask().load()
    ours = GraphCL(data.in_features, hidden=128, layers=3, epochs=1, batch_size=BATCH, max_steps=STEPS)
    reference = GraphCL(data.in_features, hidden=128, layers=3, epochs=1, batch_size=BATCH, max_steps=STEPS)
    reference.encoder = PygGINEncoder(reference.encoder)
    return data, ours, reference


def test_graphcl_pretraining_dig_ops_vs_pyg_gin(compare):
    pytest.importorskip("torch_geometric")
    data, ours, reference = _methods()
    ours.initialise(0)
    reference.load_state_dict(ours.state_dict())
    batch = collate(data.graphs[:64])
    ours.eval()
    reference.eval()
    with torch.no_grad():
        assert torch.allclose(ours.encoder(batch)[0], reference.encoder(batch)[0], rtol=1e-4, atol=1e-3)
    ours_s, reference_s, _ = compare(lambda: ours.pretrain(data.graphs, seed=0),
                                     lambda: reference.pretrain(data.graphs, seed=0), rounds=3,
                                     label="speedup_vs_pyg_gin",
                                     note=f"GraphCL, GIN 3 x 128, {STEPS} steps of {BATCH} solubility graphs")
    graphs = STEPS * BATCH
    RATIOS.append(("graphcl_pretraining", "dig_graphs_per_s", graphs / ours_s, "", "/s"))
    RATIOS.append(("graphcl_pretraining", "pyg_graphs_per_s", graphs / reference_s, "", "/s"))
