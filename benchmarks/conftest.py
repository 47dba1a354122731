"""Benchmark helpers: every speed claim is a ratio against a reference measured in the same run.

Run: ``python -m pytest benchmarks --benchmark-only`` (add ``-k small`` for the quick sizes). The summary at the
end lists each ratio; ``--benchmark-json=FILE`` keeps them (they are in each benchmark's extra_info).
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

RATIOS: list[tuple[str, str, float, str]] = []


def median_seconds(fn, rounds: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.fixture
def compare(benchmark, request):
    """``compare(ours, reference, rounds, label)``: pytest-benchmark times ours; the reference is timed in the
    same test with the same number of rounds; the ratio reference/ours goes to extra_info and the summary."""

    def run(ours, reference, rounds: int = 5, label: str = "speedup", note: str = ""):
        reference_s = median_seconds(reference, rounds)
        benchmark.pedantic(ours, rounds=rounds, warmup_rounds=1, iterations=1)
        ours_s = benchmark.stats.stats.median
        ratio = reference_s / ours_s
        benchmark.extra_info.update(reference_median_s=reference_s, ours_median_s=ours_s, **{label: ratio})
        RATIOS.append((request.node.name, label, ratio, note))
        return ours_s, reference_s, ratio

    return run


def pytest_terminal_summary(terminalreporter):
    if RATIOS:
        terminalreporter.section("dig benchmark ratios (reference median / ours median, same run)")
        for name, label, value, note, *unit in RATIOS:  # a ratio unless the entry names its unit
            terminalreporter.write_line(f"{name:60s} {label:22s} {value:8.2f}{unit[0] if unit else 'x'}  {note}")


@pytest.fixture(scope="session", autouse=True)
def two_threads():
    torch.set_num_threads(int(os.environ.get("DIG_BENCH_THREADS", "2")))
    warnings.filterwarnings("ignore")
