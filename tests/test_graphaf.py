"""GraphAF: the affine flow is exactly invertible with the log-determinant of its Jacobian, the likelihood is
that of the dequantized tokens, training moves the atom distribution to the data's, and sampling keeps
valences, parses and repeats under a seed."""

import collections

import numpy as np
import pytest
import torch
from test_graphdf import QM9_VOCABULARY, TRAIN, assert_valences_hold_and_graphs_parse

from dig.errors import TrainingError
from dig.tracks.generation.autoregressive import EDGE_TYPES, NO_BOND
from dig.tracks.generation.graphaf import (
    AffineCoupling,
    GraphAF,
    GraphAFNet,
    affine_forward,
    affine_inverse,
    standard_normal_log_density,
)


def _randomised_layers(categories=4, in_dim=6, layers=3, seed=0):
    torch.manual_seed(seed)
    flows = torch.nn.ModuleList(AffineCoupling(in_dim, categories, 8) for _ in range(layers))
    with torch.no_grad():  # leave the identity start: non-zero last layers and rescales
        for layer in flows:
            layer.net[2].weight.normal_(0, 0.5)
            layer.net[2].bias.normal_(0, 0.5)
            layer.log_rescale.fill_(0.3)
    return flows.double()


def test_the_affine_layers_invert_exactly():
    flows = _randomised_layers()
    h, x = torch.randn(32, 6, dtype=torch.float64), torch.rand(32, 4, dtype=torch.float64) * 2
    z, _ = affine_forward(x, flows, h)
    assert not torch.allclose(z, x)
    back = affine_inverse(z, [layer(h) for layer in flows])
    assert torch.allclose(back, x, atol=1e-12)


def test_the_log_determinant_is_that_of_the_jacobian():
    flows = _randomised_layers()
    h = torch.randn(1, 6, dtype=torch.float64)
    for x in torch.rand(5, 1, 4, dtype=torch.float64):
        jacobian = torch.autograd.functional.jacobian(lambda v: affine_forward(v, flows, h)[0], x).reshape(4, 4)
        _, log_det = affine_forward(x, flows, h)
        assert float(log_det) == pytest.approx(float(torch.linalg.slogdet(jacobian)[1]), abs=1e-10)


def test_standard_normal_log_density_by_hand():
    z = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    expected = [-np.log(2 * np.pi) - 0.5, -np.log(2 * np.pi) - 2.5]
    assert standard_normal_log_density(z).tolist() == pytest.approx(expected, abs=1e-6)


def test_an_untrained_net_scores_the_dequantized_tokens_under_the_standard_normal():
    """At initialisation every layer is the identity (zero last layer), so log p(x~) = log N(x~; 0, I) with
    x~ = one_hot + 0.9 u, u drawn from the generator in the order atoms, then bonds."""
    torch.manual_seed(0)
    net = GraphAFNet(len(QM9_VOCABULARY), max_atoms=3, edge_unroll=2, hidden=8, flows=2, rgcn_layers=2,
                     dequantization=0.9).eval()
    atoms = torch.tensor([[1, 6, -1]])
    bonds = torch.full((1, 3, 3), NO_BOND)
    bonds[0, 0, 1] = bonds[0, 1, 0] = 1
    with torch.no_grad():
        ll, count = net.log_likelihood(atoms, bonds, torch.tensor([2]), torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(7)
    atom_x = torch.eye(len(QM9_VOCABULARY))[[1, 6]] + 0.9 * torch.rand((2, len(QM9_VOCABULARY)), generator=generator)
    # bond positions with max_atoms 3 and window 2: (1, 0), (2, 0), (2, 1); only (1, 0) is real here
    bond_x = torch.eye(EDGE_TYPES)[[1, NO_BOND, NO_BOND]] + 0.9 * torch.rand((3, EDGE_TYPES), generator=generator)
    expected = standard_normal_log_density(atom_x).sum() + standard_normal_log_density(bond_x[:1]).sum()
    assert int(count) == 3 and float(ll) == pytest.approx(float(expected), abs=1e-5)


def test_training_moves_the_first_atom_distribution_to_the_data():
    model = GraphAF(QM9_VOCABULARY, 9, hidden=16, flows=4, rgcn_layers=2, epochs=40, batch_size=8, lr=1e-2,
                    valid_molecules=5, sample_batch=400)
    history = model.fit(["CO", "OC", "C=O"] * 4, ["CO"], seed=0)
    assert 1 <= history["best_epoch"] <= 40 and history["epochs"] == 40
    graphs, _ = model._sample_batch(400, torch.Generator().manual_seed(1))
    first = collections.Counter(QM9_VOCABULARY.tokens[g.atoms[0]] for g in graphs)
    assert first[("C", 0)] + first[("O", 0)] >= 0.9 * 400, first  # 6 of 8 types never occur in the data


def test_samples_respect_valences_and_parse_and_the_same_seed_repeats():
    model = GraphAF(QM9_VOCABULARY, 9, hidden=16, flows=2, rgcn_layers=2, epochs=2, valid_molecules=5, sample_batch=64)
    history = model.fit(TRAIN, TRAIN[:5], seed=0)
    assert history["epochs"] == 2 and history["left_out_molecules"] == 0 and history["train_molecules"] == 10
    assert all(np.isfinite(h["valid_nll_per_token"]) for h in history["history"])
    assert model._nll(model._graphs(TRAIN[:5], "fixture")[0]) == model._nll(model._graphs(TRAIN[:5], "fixture")[0])
    graphs, corrected = model._sample_batch(200, torch.Generator().manual_seed(3))
    assert_valences_hold_and_graphs_parse(graphs)
    assert corrected.any(), "an untrained flow proposes over-valent bonds that the check redraws"
    first = model.sample(100, seed=5)
    assert first == model.sample(100, seed=5) and all(first)
    assert 0.0 <= model.last_sample["validity_without_check_frac"] < 1.0
    again = GraphAF(QM9_VOCABULARY, 9, hidden=16, flows=2, rgcn_layers=2, epochs=2, valid_molecules=5, sample_batch=64)
    again.fit(TRAIN, TRAIN[:5], seed=0)
    assert again.sample(100, seed=5) == first


def test_a_bond_the_valences_never_allow_ends_as_no_bond():
    model = GraphAF(QM9_VOCABULARY, 3, hidden=8, flows=1, rgcn_layers=2, bond_resamples=3)
    model.net = GraphAFNet(len(QM9_VOCABULARY), 3, 2, 8, 1, 2, 0.9).eval()
    context = torch.zeros(5, 24)
    only_no_bond = torch.zeros(5, EDGE_TYPES, dtype=torch.bool)
    only_no_bond[:, NO_BOND] = True
    with torch.no_grad():
        token, ok = model._draw_bonds(context, 1, 0, only_no_bond, torch.Generator().manual_seed(0))
    assert (token == NO_BOND).all()
    nothing = torch.zeros_like(only_no_bond)
    with torch.no_grad():
        token, ok = model._draw_bonds(context, 1, 0, nothing, torch.Generator().manual_seed(0))
    assert (token == NO_BOND).all() and not ok.any()  # after 3 redraws: no bond


def test_a_nan_loss_fails_with_the_model_named(monkeypatch):
    def nan_likelihood(self, atoms, bonds, sizes, generator=None):
        return torch.full((atoms.shape[0],), float("nan"), requires_grad=True), sizes + 1

    monkeypatch.setattr(GraphAFNet, "log_likelihood", nan_likelihood)
    model = GraphAF(QM9_VOCABULARY, 9, hidden=8, flows=1, rgcn_layers=2, epochs=1)
    with pytest.raises(TrainingError, match="graphaf: loss became nan at epoch 1, step 0"):
        model.fit(TRAIN, TRAIN[:2], seed=0)
