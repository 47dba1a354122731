"""CharRNN (generation track): the character vocabulary, the step-by-step state against the whole-sequence
forward, learning a tiny corpus, validation selection, batched sampling and bad input."""

import math

import pytest
import torch

from dig.errors import DataError, TrainingError
from dig.tracks.generation.char_rnn import CharRNN, CharVocabulary

Chem = pytest.importorskip("rdkit.Chem")

CORPUS = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "ClCCl", "OC1CCCC1"]


def test_vocabulary_round_trip_unknown_characters_and_eos():
    chars = CharVocabulary.from_smiles(CORPUS)
    assert chars.tokens[:4] == ("<bos>", "<eos>", "<pad>", "<unk>") and "l" in chars.tokens  # Cl is C then l
    for smiles in CORPUS:
        ids = chars.encode(smiles)
        assert ids[0] == chars.bos and ids[-1] == chars.eos and chars.decode(ids[1:]) == smiles
    assert chars.encode("CBr")[2:4] == [chars.unk, chars.unk]  # B and r were never seen
    assert chars.decode([chars.index["C"], chars.eos, chars.index["O"]]) == "C"  # stops at <eos>
    assert chars.decode([chars.index["C"], chars.index["O"]]) == "CO"  # never finished: returned as drawn


def test_stepwise_state_gives_the_whole_sequence_logits():
    """Sampling feeds one character at a time with the carried state; that must be the model trained."""
    model = CharRNN(None, 9, hidden=16, layers=2, epochs=1, max_steps=1, valid_molecules=2)
    model.fit(CORPUS, CORPUS, seed=0)
    model.net.eval()
    tokens = torch.tensor([model.chars.encode("OC1CCCC1")])
    whole, _ = model.net(tokens)
    state, steps = None, []
    for t in range(tokens.size(1)):
        logits, state = model.net(tokens[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-5, atol=1e-6)


def test_learns_a_tiny_corpus_and_keeps_the_best_validation_epoch():
    model = CharRNN(None, 9, hidden=64, layers=1, epochs=60, batch_size=6, lr=1e-2, lr_step_epochs=1000,
                    valid_molecules=6)
    history = model.fit(CORPUS, CORPUS, seed=0)
    valid = [h["valid_nll_per_char"] for h in history["history"]]
    assert history["epochs"] == 60 and history["best_epoch"] == 1 + valid.index(min(valid))
    assert valid[-1] < 0.5 * valid[0]
    samples = model.sample(200, seed=0)
    assert len(samples) == 200 and samples == model.sample(200, seed=0)
    assert sum(s in CORPUS for s in samples) > 150, samples[:20]  # it has memorised its six strings
    assert sum(Chem.MolFromSmiles(s) is not None for s in samples) > 150


def test_batched_and_one_at_a_time_sampling_draw_from_one_distribution():
    model = CharRNN(None, 9, hidden=32, layers=1, epochs=30, batch_size=6, lr=1e-2, valid_molecules=6,
                    sample_batch=100)
    model.fit(CORPUS, CORPUS, seed=1)
    batched = model.sample(300, seed=3)
    model.sample_batch = 1
    single = model.sample(300, seed=4)
    for smiles in CORPUS[:3]:  # same frequencies within sampling noise (binomial sd at most ~0.03)
        assert abs(batched.count(smiles) - single.count(smiles)) / 300 < 0.15
    assert all("<" not in s for s in batched + single)
    assert max(map(len, batched + single)) <= model.max_length


def test_bad_input_is_named():
    with pytest.raises(DataError, match="at most 3 characters"):
        CharRNN(None, 9, hidden=8, layers=1, max_length=3).fit(["CCCCCC"], ["CCCC"], seed=0)
    with pytest.raises(ValueError, match="temperature"):
        CharRNN(None, 9, temperature=0.0)
    with pytest.raises(RuntimeError, match="fitted"):
        CharRNN(None, 9).sample(3, seed=0)
    model = CharRNN(None, 9, hidden=8, layers=1, epochs=1, lr=math.inf, valid_molecules=2)
    with pytest.raises(TrainingError, match="char-rnn"):
        model.fit(CORPUS * 10, CORPUS, seed=0)


def test_registered_with_mosess_configuration_and_no_default_row():
    from dig.plugins import load_plugins

    registry = load_plugins().registry
    entry = registry.get("model", "char-rnn", track="generation")
    track = registry.get("track", "generation").obj
    dataset = registry.get("dataset", "moses", track="generation")
    paper = entry.obj(None, 27, **entry.meta["hparams"]["paper"])
    assert (paper.hidden, paper.layers, paper.dropout, paper.batch_size, paper.lr, paper.epochs) == (768, 3, 0.2, 64,
                                                                                                    1e-3, 80)
    assert "3.5 s per training step" in track.unsuited(dataset, entry, "default")
    assert track.unsuited(dataset, entry, "paper") is None and track.unsuited(dataset, entry, "smoke") is None
