"""Generation speed, in the same run:

- GraphDF sampling, valid molecules per second: every molecule of a batch advanced together (one R-GCN pass
  per token for the whole batch, valency masks as tensors) vs one molecule at a time (the reference code's
  loop), same trained model.
- The evaluators' throughput (molecules per second) on MOSES training molecules scored against MOSES's
  released test statistics: every metric of a job (validity, uniqueness, novelty, IntDiv, filters, FCD, SNN,
  Frag, Scaf).
"""

from __future__ import annotations

import time

from conftest import RATIOS

from dig.tracks.generation.datasets import MosesSmiles, QM9Smiles
from dig.tracks.generation.graphdf import GraphDF
from dig.tracks.generation.metrics import generation_metrics

MOLECULES = 100


def _trained_graphdf(sample_batch: int) -> GraphDF:
    data = QM9Smiles().load("smoke")
    model = GraphDF(data.vocabulary, data.max_atoms, hidden=64, flows=12, epochs=1, max_steps=20,
                    valid_molecules=100, sample_batch=sample_batch)
    model.fit(data.train, data.valid, seed=0)
    return model


def test_graphdf_sampling_batched_vs_one_molecule_at_a_time(compare):
    batched = _trained_graphdf(sample_batch=MOLECULES)
    single = GraphDF(batched.vocabulary, batched.max_atoms, sample_batch=1)
    single.net = batched.net
    ours_s, reference_s, _ = compare(lambda: batched.sample(MOLECULES, seed=0), lambda: single.sample(MOLECULES, seed=0),
                                     rounds=3, label="speedup_vs_one_at_a_time",
                                     note=f"QM9 vocabulary, {MOLECULES} molecules per call, width 64, 12 flows")
    valid = sum(bool(s) for s in batched.sample(MOLECULES, seed=0))
    RATIOS.append(("graphdf_sampling", "batched_valid_per_s", valid / ours_s, "", "/s"))
    RATIOS.append(("graphdf_sampling", "single_valid_per_s", valid / reference_s, "", "/s"))


def test_generation_metrics_throughput(benchmark):
    data = MosesSmiles()
    molecules = data.load("smoke").train[:2000]
    references = data.references("smoke")
    start = time.perf_counter()
    benchmark.pedantic(lambda: generation_metrics(molecules, set(molecules), references), rounds=1, iterations=1)
    rate = len(molecules) / (time.perf_counter() - start)
    benchmark.extra_info["molecules_per_s"] = rate
    RATIOS.append(("generation_metrics", "molecules_per_s", rate, "2,000 MOSES molecules vs test + test_scaffolds", "/s"))

