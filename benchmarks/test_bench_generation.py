"""Generation speed, in the same run:

- GraphDF sampling, valid molecules per second: every molecule of a batch advanced together (one R-GCN pass
  per token for the whole batch, valency masks as tensors) vs one molecule at a time (the reference code's
  loop), same trained model.
- GraphAF sampling, the same comparison (the same trunk and loop as GraphDF, affine layers instead of shifts).
- CharRNN sampling, valid molecules per second: a batch of strings advanced one character per LSTM step
  (finished strings leave the batch) vs one string at a time, same model (MOSES's 3 x 768 network trained
  briefly on MOSES SMILES: its samples are mostly invalid, so the ratio is per string drawn as well).
- GraphEBM sampling, strings per second: Langevin dynamics on a batch of one-shot tensors (one energy
  gradient per step for the whole batch) vs one molecule at a time, same model, 30 Langevin steps.
- The evaluators' throughput (molecules per second) on MOSES training molecules scored against MOSES's
  released test statistics: every metric of a job (validity, uniqueness, novelty, IntDiv, filters, FCD, SNN,
  Frag, Scaf).
- The evaluators on a sample with duplicates (10,000 molecules, 3,500 distinct: about the uniqueness the default
  flows reach on MOSES): per-molecule work once per distinct molecule (``generation_metrics``) vs once per
  molecule, as MOSES computes them (the plain ``fragments``, ``scaffolds``, ``snn``, ``internal_diversity``,
  ``fraction_passing_filters``, ``chemnet_statistics`` over all of V); same values (tested in
  ``test_generation_data.py``).
"""

from __future__ import annotations

import time

import pytest
from conftest import RATIOS

from dig.tracks.generation import metrics as M
from dig.tracks.generation.char_rnn import CharRNN
from dig.tracks.generation.datasets import MosesSmiles, QM9Smiles
from dig.tracks.generation.graphaf import GraphAF
from dig.tracks.generation.graphdf import GraphDF
from dig.tracks.generation.graphebm import GraphEBM
from dig.tracks.generation.metrics import generation_metrics, valid_canonical

MOLECULES = 100
SCORED, DISTINCT = 10_000, 3_500  # a job's sample; about the uniqueness of the default flows on MOSES
STRINGS = 30  # one string at a time through MOSES's 3 x 768 LSTM takes about 0.5 s per string


def _trained_autoregressive(model_class, sample_batch: int):
    data = QM9Smiles().load("smoke")
    model = model_class(data.vocabulary, data.max_atoms, hidden=64, flows=12, epochs=1, max_steps=20,
                        valid_molecules=100, sample_batch=sample_batch)
    model.fit(data.train, data.valid, seed=0)
    return model


@pytest.mark.parametrize(("model_class", "layers"), [(GraphDF, "12 flows"), (GraphAF, "12 affine layers")],
                         ids=["graphdf", "graphaf"])
def test_autoregressive_sampling_batched_vs_one_molecule_at_a_time(compare, model_class, layers):
    batched = _trained_autoregressive(model_class, sample_batch=MOLECULES)
    single = model_class(batched.vocabulary, batched.max_atoms, sample_batch=1)
    single.net = batched.net
    ours_s, reference_s, _ = compare(lambda: batched.sample(MOLECULES, seed=0), lambda: single.sample(MOLECULES, seed=0),
                                     rounds=3, label="speedup_vs_one_at_a_time",
                                     note=f"QM9 vocabulary, {MOLECULES} molecules per call, width 64, {layers}")
    valid = sum(bool(s) for s in batched.sample(MOLECULES, seed=0))
    RATIOS.append((f"{batched.name}_sampling", "batched_valid_per_s", valid / ours_s, "", "/s"))
    RATIOS.append((f"{batched.name}_sampling", "single_valid_per_s", valid / reference_s, "", "/s"))


def test_char_rnn_sampling_batched_vs_one_string_at_a_time(compare):
    data = MosesSmiles().load("smoke")
    batched = CharRNN(None, data.max_atoms, epochs=1, max_steps=20, valid_molecules=200, sample_batch=STRINGS)
    batched.fit(data.train, data.valid, seed=0)
    single = CharRNN(None, data.max_atoms, sample_batch=1)
    single.net, single.chars = batched.net, batched.chars
    ours_s, reference_s, _ = compare(lambda: batched.sample(STRINGS, seed=0), lambda: single.sample(STRINGS, seed=0),
                                     rounds=3, label="speedup_vs_one_at_a_time",
                                     note=f"MOSES characters, {STRINGS} strings per call, 3 x 768 LSTM, 20 steps")
    strings = batched.sample(STRINGS, seed=0)
    valid = len(valid_canonical(strings)[0])
    RATIOS.append(("char_rnn_sampling", "batched_strings_per_s", STRINGS / ours_s, "", "/s"))
    RATIOS.append(("char_rnn_sampling", "single_strings_per_s", STRINGS / reference_s, "", "/s"))
    RATIOS.append(("char_rnn_sampling", "valid_per_call", valid, "after 20 training steps", ""))


def test_graphebm_sampling_batched_vs_one_molecule_at_a_time(compare):
    data = QM9Smiles().load("smoke")
    batched = GraphEBM(data.vocabulary, data.max_atoms, epochs=1, max_steps=5, langevin_steps=30,
                       sample_batch=MOLECULES)
    batched.fit(data.train, data.valid, seed=0)
    single = GraphEBM(data.vocabulary, data.max_atoms, langevin_steps=30, sample_batch=1)
    single.net = batched.net
    ours_s, reference_s, _ = compare(lambda: batched.sample(MOLECULES, seed=0), lambda: single.sample(MOLECULES, seed=0),
                                     rounds=3, label="speedup_vs_one_at_a_time",
                                     note=f"QM9 vocabulary, {MOLECULES} molecules per call, hidden 64, 30 Langevin steps")
    valid = len(valid_canonical(batched.sample(MOLECULES, seed=0))[0])
    RATIOS.append(("graphebm_sampling", "batched_valid_per_s", valid / ours_s, "", "/s"))
    RATIOS.append(("graphebm_sampling", "single_valid_per_s", valid / reference_s, "", "/s"))


def test_generation_metrics_throughput(benchmark):
    data = MosesSmiles()
    molecules = data.load("default").train[:SCORED]
    references = data.references("smoke")
    start = time.perf_counter()
    benchmark.pedantic(lambda: generation_metrics(molecules, set(molecules), references), rounds=1, iterations=1)
    rate = len(molecules) / (time.perf_counter() - start)
    benchmark.extra_info["molecules_per_s"] = rate
    RATIOS.append(("generation_metrics", "molecules_per_s", rate, f"{SCORED:,} MOSES molecules vs test + test_scaffolds",
                   "/s"))



def _scored_per_molecule(generated, train, references):
    """Every metric of ``generation_metrics`` with each molecule of V scored on its own (MOSES's way)."""
    valid, validity = valid_canonical(generated)
    fps = M.morgan_fingerprints(valid)
    mu, sigma = M.chemnet_statistics(valid)
    frag, scaf = M.fragments(valid), M.scaffolds(valid)
    out = {"validity_frac": validity, "unique_frac": M.unique_at(valid), "novelty_frac": M.novelty(valid, train),
           "intdiv1_div": M.internal_diversity(fps), "intdiv2_div": M.internal_diversity(fps, 2.0),
           "filters_frac": M.fraction_passing_filters(valid)}
    for ref in references:
        out[f"fcd_{ref.name}_dist"] = M.frechet_distance(mu, sigma, ref.fcd_mu, ref.fcd_sigma)
        out[f"snn_{ref.name}_sim"] = M.snn(ref.fingerprints, fps)
        out[f"frag_{ref.name}_sim"] = M.cosine_similarity(ref.fragments, frag)
        out[f"scaf_{ref.name}_sim"] = M.cosine_similarity(ref.scaffolds, scaf)
    return out


def test_generation_metrics_once_per_distinct_molecule_vs_per_molecule(compare):
    data = MosesSmiles()
    distinct = data.load("default").train[:DISTINCT]
    molecules = [distinct[(k * 7919) % DISTINCT] for k in range(SCORED)]
    references = data.references("smoke")
    train = set(distinct)
    compare(lambda: generation_metrics(molecules, train, references),
            lambda: _scored_per_molecule(molecules, train, references), rounds=1, label="speedup_vs_per_molecule",
            note=f"{SCORED:,} MOSES molecules, {DISTINCT:,} distinct, vs test + test_scaffolds")
