"""Explainers: each ``build(**hparams)`` returns ``explain(model, instance, seed) -> Explanation``.

All of them see only the model (through ``model(x, graph, edge_weight, batch)``) and the instance's inputs,
never its ground truth. p_c(w) below is the model's probability of the explained class with edge weights w
(w = 1: the full graph), for the explained node or graph.

- ``random``: uniform random edge scores (the floor every explainer must beat).
- ``degree``: an edge scores deg(u) + deg(v) (a structural baseline with no model at all).
- ``saliency``: |d p_c / d w_e| at w = 1 (Simonyan et al. 2014, on edges as in Pope et al. 2019), through
  captum's ``Saliency``.
- ``integrated-gradients``: w_e * integral_0^1 d p_c / d w_e (alpha w) d alpha from the empty graph
  (Sundararajan et al. 2017), through captum's ``IntegratedGradients`` (Gauss-Legendre, ``steps`` points);
  signed, as the paper defines them (they sum to p_c(1) - p_c(0)).
- ``integrated-gradients-abs``: the same attributions ranked by magnitude, |IG_e| (a named variant: on
  BA-Shapes the motif edges get large attributions of both signs, so the signed ranking ties random while
  the magnitude ranks them first; see the README's xgraph reading).
- ``gradcam``: Grad-CAM for graphs (Pope et al. 2019): with F [n, K] the last convolution's output and
  alpha_k = mean_n d p_c / d F_nk, node n scores ReLU(sum_k alpha_k F_nk) (a node mask).
- ``gnnexplainer``: Ying et al. 2019, as PyG's ``GNNExplainer``: a soft mask m = sigmoid(theta) on the edges,
  theta ~ N(0, std), minimising -log p_c(m) + a * sum(m) + b * mean(H(m)) (H the binary entropy) with the
  penalties on the edges that reach the prediction (non-zero gradient at the first step) and the others'
  mask set to 0 (PyG's defaults: 100 epochs, lr 0.01, a = 0.005, b = 1.0).
- ``subgraphx`` lives in ``subgraphx.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dig.ops import CSRGraph
from dig.tracks.xgraph.protocol import Explanation, Instance


def class_probability(model: nn.Module, instance: Instance, edge_weight: Tensor | None = None,
                      x: Tensor | None = None) -> Tensor:
    """p_c: the softmax probability of the explained class, for the target node or the graph."""
    logits = model(instance.x if x is None else x, instance.graph, edge_weight, instance.batch())
    row = logits[instance.target] if instance.target is not None else logits[0]
    return torch.softmax(row, dim=-1)[instance.label]


def build_random() -> object:
    def explain(model: nn.Module, instance: Instance, seed: int) -> Explanation:
        generator = torch.Generator().manual_seed(seed)
        return Explanation(torch.rand(instance.num_edges, generator=generator), None, instance.target, instance.label)

    return explain


def build_degree() -> object:
    def explain(model: nn.Module, instance: Instance, seed: int) -> Explanation:
        src, dst = instance.edge_index
        degree = torch.bincount(dst, minlength=instance.num_nodes).float()
        return Explanation(degree[src] + degree[dst], None, instance.target, instance.label)

    return explain


def _probability_of_weights(model: nn.Module, instance: Instance):
    """captum's forward function: a batch of edge-weight vectors [k, e] -> p_c of each [k], in one forward pass
    over k disjoint copies of the instance (copy c carries weights[c]; no copy can reach another)."""
    n = instance.num_nodes

    def forward(weights: Tensor) -> Tensor:
        copies = weights.size(0)
        if copies == 1:
            return class_probability(model, instance, weights[0]).unsqueeze(0)
        offsets = torch.arange(copies).repeat_interleave(instance.num_edges) * n
        graph = CSRGraph.from_sorted(instance.graph.row.repeat(copies) + offsets,
                                     instance.graph.col.repeat(copies) + offsets, copies * n)
        batch = torch.arange(copies).repeat_interleave(n)
        logits = model(instance.x.repeat(copies, 1), graph, weights.reshape(-1), batch)
        rows = logits[torch.arange(copies) * n + instance.target] if instance.target is not None else logits
        return torch.softmax(rows, dim=-1)[:, instance.label]

    return forward


def build_saliency() -> object:
    from captum.attr import Saliency  # imported by the job that uses it: captum costs 0.5 s to import

    def explain(model: nn.Module, instance: Instance, seed: int) -> Explanation:
        attribution = Saliency(_probability_of_weights(model, instance)).attribute(
            torch.ones(1, instance.num_edges, requires_grad=True), abs=True)
        return Explanation(attribution[0].detach(), None, instance.target, instance.label)

    return explain


def build_integrated_gradients(steps: int = 50, absolute: bool = False) -> object:
    from captum.attr import IntegratedGradients

    def explain(model: nn.Module, instance: Instance, seed: int) -> Explanation:
        attribution = IntegratedGradients(_probability_of_weights(model, instance)).attribute(
            torch.ones(1, instance.num_edges), baselines=torch.zeros(1, instance.num_edges), n_steps=steps)[0].detach()
        return Explanation(attribution.abs() if absolute else attribution, None, instance.target, instance.label)

    return explain


def build_gradcam() -> object:
    def explain(model: nn.Module, instance: Instance, seed: int) -> Explanation:
        convs = getattr(model, "convs", None)
        if not convs:
            raise TypeError(f"gradcam reads the last graph convolution's output: {type(model).__name__} has no "
                            "`convs` list of layers")
        captured: list[Tensor] = []

        def capture(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
            # the layer's output as a leaf the rest of the forward pass reads (the weights are frozen)
            captured.append(output.detach().requires_grad_(True))
            return captured[-1]

        handle = convs[-1].register_forward_hook(capture)
        try:
            probability = class_probability(model, instance)
        finally:
            handle.remove()
        features = captured[-1]
        (grad,) = torch.autograd.grad(probability, features)
        weights = grad.mean(dim=0)  # alpha_k: the gradient averaged over the nodes
        importance = torch.relu((features * weights).sum(-1))
        return Explanation(None, importance.detach(), instance.target, instance.label)

    return explain


def build_gnnexplainer(epochs: int = 100, lr: float = 0.01, size_weight: float = 0.005,
                       entropy_weight: float = 1.0) -> object:
    def explain(model: nn.Module, instance: Instance, seed: int) -> Explanation:
        generator = torch.Generator().manual_seed(seed)
        # PyG's initialisation: theta ~ N(0, std), std = gain('relu') * sqrt(2 / (2 n))
        std = nn.init.calculate_gain("relu") * (2.0 / (2 * max(instance.num_nodes, 1))) ** 0.5
        theta = (std * torch.randn(instance.num_edges, generator=generator)).requires_grad_(True)
        optimizer = torch.optim.Adam([theta], lr=lr)
        reaches = None  # edges whose mask changes the prediction at all (PyG's hard mask, from the first step)
        for _ in range(epochs):
            mask = theta.sigmoid()
            loss = -(class_probability(model, instance, mask) + 1e-15).log()
            if reaches is not None:
                kept = mask[reaches]
                entropy = -(kept * (kept + 1e-15).log() + (1 - kept) * (1 - kept + 1e-15).log())
                loss = loss + size_weight * kept.sum() + entropy_weight * entropy.mean()
            optimizer.zero_grad()
            loss.backward()
            if reaches is None:
                reaches = theta.grad != 0.0
            optimizer.step()
        return Explanation(theta.detach().sigmoid() * reaches, None, instance.target, instance.label)

    return explain
