"""GraphEBM (generation track): the energy's permutation invariance, the one-shot tensors' round trip, the
valency correction, Langevin dynamics lowering the energy, and a short fit + batched sample."""

import math

import pytest
import torch

from dig.errors import TrainingError
from dig.tracks.generation.graphebm import GraphEBM, correct_valence
from dig.tracks.generation.graphs import AtomVocabulary, mol_to_graph

Chem = pytest.importorskip("rdkit.Chem")

VOCABULARY = AtomVocabulary.from_tokens([("C", 0), ("N", 0), ("O", 0), ("F", 0)])
MOLECULES = ["CCO", "C1=CC=CC=C1", "CC(=O)N", "OCC#N", "FC(F)F", "C1CC1O"]


def _model(**hparams) -> GraphEBM:
    model = GraphEBM(VOCABULARY, 9, hidden=16, depth=2, **hparams)
    model.fit(MOLECULES, [], seed=0) if hparams.get("epochs") else None
    return model


def test_energy_is_invariant_to_permuting_the_nodes():
    model = _model(epochs=1, max_steps=1)
    model.net.eval()
    graphs = [mol_to_graph(Chem.MolFromSmiles(s), VOCABULARY) for s in MOLECULES]
    adj, x = model.one_shot(graphs)
    adj, x = adj + 0.2 * torch.rand(adj.shape), x + 0.2 * torch.rand(x.shape)  # dequantized, not one-hot
    energy = model.net(adj, x)
    for seed in range(3):
        order = torch.randperm(9, generator=torch.Generator().manual_seed(seed))
        permuted = model.net(adj[:, :, order][:, :, :, order], x[:, order])
        torch.testing.assert_close(permuted, energy, rtol=1e-5, atol=1e-5)
    assert energy.shape == (len(MOLECULES),) and energy.std() > 0


def test_one_shot_tensors_decode_back_to_the_molecule():
    model = _model()
    graphs = [mol_to_graph(Chem.MolFromSmiles(s), VOCABULARY) for s in MOLECULES]
    adj, x = model.one_shot(graphs)
    for smiles, a, nodes in zip(MOLECULES, adj, x, strict=True):
        decoded, clean = model.decode(a, nodes)
        assert clean and decoded == Chem.MolToSmiles(Chem.MolFromSmiles(smiles), isomericSmiles=False)


def test_valency_correction_lowers_bond_orders_until_every_atom_is_valid():
    mol = Chem.RWMol()
    for _ in range(3):
        mol.AddAtom(Chem.Atom("C"))
    mol.AddAtom(Chem.Atom("F"))
    mol.AddBond(0, 1, Chem.BondType.TRIPLE)
    mol.AddBond(1, 2, Chem.BondType.DOUBLE)  # carbon 1: valence 5
    mol.AddBond(2, 3, Chem.BondType.DOUBLE)  # fluorine: valence 2
    fixed = correct_valence(mol.GetMol())
    Chem.SanitizeMol(fixed)
    # the triple bond at the five-valent carbon becomes double, fluorine's double bond single
    assert Chem.MolToSmiles(fixed) == Chem.MolToSmiles(Chem.MolFromSmiles("C=C=CF"))


def test_langevin_dynamics_lowers_the_energy_of_noise():
    model = _model(epochs=1, max_steps=1, langevin_steps=30)
    generator = torch.Generator().manual_seed(0)
    adj, x = 1.2 * torch.rand(64, 4, 9, 9, generator=generator), 1.2 * torch.rand(64, 9, 5, generator=generator)
    model.net.eval()
    before = model.net(adj, x).mean()
    after = model.net(*model.langevin(adj, x, generator)).mean()
    assert after < before


def test_fit_and_batched_sampling_give_molecules_deterministically():
    model = _model(epochs=3, batch_size=6, langevin_steps=10, sample_batch=50)
    samples = model.sample(120, seed=1)
    assert len(samples) == 120 and samples == model.sample(120, seed=1)
    parsed = [Chem.MolFromSmiles(s) for s in samples if s]
    assert parsed and all(m is not None for m in parsed)  # valency correction: every non-empty sample parses
    assert 0.0 <= model.last_sample["validity_without_check_frac"] <= 1.0
    history = model.fit(MOLECULES, [], seed=0)
    assert history["epochs"] == 3 and set(history["history"][0]) == {"epoch", "loss", "energy_data", "energy_negatives"}
    with pytest.raises(TrainingError, match="graphebm"):
        GraphEBM(VOCABULARY, 9, hidden=8, epochs=1, alpha=float("nan")).fit(MOLECULES, [], seed=0)


def _energies(model: GraphEBM) -> torch.Tensor:
    model.net.eval()
    with torch.no_grad():
        return model.net(*model.one_shot([mol_to_graph(Chem.MolFromSmiles(s), VOCABULARY) for s in MOLECULES]))


def test_goal_directed_training_weights_each_data_energy_by_its_property(monkeypatch):
    """The data energy of a molecule with property y is weighted by 1 + exp(y'), y' min-max scaled over the
    training molecules that fit the one-shot tensors; the loss is the weighted contrastive divergence."""
    from dig.tracks.generation.graphebm import contrastive_divergence_loss

    seen = {}
    monkeypatch.setattr(GraphEBM, "_fit", lambda self, graphs, weights, seed, on_epoch: seen.update(
        atoms=[g.num_atoms for g in graphs], weights=weights))
    values = [1.0, 3.0, 2.0, 100.0, 5.0, 5.0, 9.0]
    GraphEBM(VOCABULARY, 9).fit_goal_directed(MOLECULES[:3] + ["C" * 12] + MOLECULES[3:], values, seed=0)
    scaled = torch.tensor([0.0, 0.25, 0.125, 0.5, 0.5, 1.0])  # the 12-carbon molecule (y = 100) is left out
    torch.testing.assert_close(seen["weights"], 1 + torch.exp(scaled))
    positive, negative = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.0])
    weights = torch.tensor([2.0, 1.0 + math.e])
    expected = ((2.0 * 1.0 - 0.5 + 0.1 * (1.0 + 0.25)) + ((1 + math.e) * -2.0 - 0.0 + 0.1 * 4.0)) / 2
    assert contrastive_divergence_loss(positive, negative, 0.1, weights).item() == pytest.approx(expected)
    assert contrastive_divergence_loss(positive, negative, 0.1).item() == pytest.approx(
        ((1.0 - 0.5 + 0.1 * 1.25) + (-2.0 + 0.4)) / 2)
    with pytest.raises(ValueError, match="6 training molecules but 2 property values"):
        GraphEBM(VOCABULARY, 9).fit_goal_directed(MOLECULES, [1.0, 2.0], seed=0)


def test_optimisation_starts_from_each_molecule_and_returns_what_each_visited():
    model = _model(epochs=1, max_steps=2, langevin_steps=6)
    starts = ["CCO", "C" * 12, "OCC#N"]  # the middle one exceeds the 9 atoms of the one-shot tensors
    first = model.optimise(starts, seed=3, record_every=2)
    assert len(first) == 3 and first[1] == []
    assert all(found for found in (first[0], first[2]))
    for found in first:
        assert len(set(found)) == len(found) and all(Chem.MolFromSmiles(s) is not None for s in found)
    assert model.optimise(starts, seed=3, record_every=2) == first


def test_composed_energy_is_the_sum_and_samples_under_it():
    """Compositional generation: the composed energy is E1 + E2 on any input (so Langevin dynamics follows the sum of
    both gradients), sampling under it is deterministic and valid, and models that read other tensors are refused."""
    first = _model(epochs=1, max_steps=2, langevin_steps=8, sample_batch=40)
    second = GraphEBM(VOCABULARY, 9, hidden=16, epochs=1, max_steps=2)
    second.fit_goal_directed(MOLECULES, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], seed=1)
    both = GraphEBM.composed([first, second])
    generator = torch.Generator().manual_seed(0)
    adj, x = 1.1 * torch.rand(5, 4, 9, 9, generator=generator), 1.1 * torch.rand(5, 9, 5, generator=generator)
    for model in (first, second, both):
        model.net.eval()
    with torch.no_grad():
        torch.testing.assert_close(both.net(adj, x), first.net(adj, x) + second.net(adj, x))
        assert not torch.allclose(first.net(adj, x), second.net(adj, x))
    samples = both.sample(60, seed=2)
    assert samples == both.sample(60, seed=2) and samples != first.sample(60, seed=2)
    assert all(Chem.MolFromSmiles(s) is not None for s in samples if s) and any(samples)
    with pytest.raises(ValueError, match="at least two"):
        GraphEBM.composed([first])
    with pytest.raises(RuntimeError, match="model 1 must be fitted"):
        GraphEBM.composed([first, GraphEBM(VOCABULARY, 9)])
    other = GraphEBM(VOCABULARY, 12, hidden=16, epochs=1, max_steps=1)
    other.fit(MOLECULES, [], seed=0)
    with pytest.raises(ValueError, match="model 1 reads another vocabulary or one-shot size"):
        GraphEBM.composed([first, other])
