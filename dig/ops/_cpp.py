"""dig's compiled CPU kernels (``dig/ops/csrc``), built on first use with ``torch.utils.cpp_extension`` (gcc,
about 40 s once; the build is cached by torch under ``~/.cache/torch_extensions``, or ``TORCH_EXTENSIONS_DIR``).

``-march=native`` makes the compiler use the machine's vector units (the fused triplet op ran 1.5x faster with
it than with plain ``-O3``); the build's name carries a digest of the CPU's model and flags, so a cache shared
by different machines never hands one a build for another. ``DIG_OPS_EXTENSION=0`` turns the kernels off;
without a working compiler the ops fall back to their torch paths, with one warning that says why.
"""

from __future__ import annotations

import hashlib
import os
import platform
import warnings
from pathlib import Path
from types import ModuleType

_SOURCE = Path(__file__).with_name("csrc") / "triplet_basis.cpp"
_state: dict[str, ModuleType | None] = {}


def _cpu_digest() -> str:
    """A short digest of what ``-march=native`` compiles for: the CPU model and its instruction-set flags."""
    facts = [platform.machine()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features")):
                facts.append(line)
                if len(facts) >= 3:
                    break
    except OSError:
        pass
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:10]


def extension_enabled() -> bool:
    return os.environ.get("DIG_OPS_EXTENSION", "1") != "0"


def triplet_basis_kernels() -> ModuleType | None:
    """The compiled fused triplet-basis kernels, or None (turned off, or the build failed: warned once)."""
    if not extension_enabled():
        return None
    if "triplet_basis" not in _state:
        try:
            from torch.utils.cpp_extension import load

            _state["triplet_basis"] = load(
                f"dig_triplet_basis_{_cpu_digest()}", [str(_SOURCE)], extra_cflags=["-O3", "-march=native"],
                verbose=False,
            )
        except Exception as exc:  # noqa: BLE001 - any build failure means: use the torch path, and say so
            _state["triplet_basis"] = None
            warnings.warn(
                f"dig.ops: the fused triplet kernel ({_SOURCE.name}) could not be built ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}); DimeNet++ runs on the "
                "unfused torch path (same values, slower). Install gcc/g++ and ninja to build it, or set "
                "DIG_OPS_EXTENSION=0 to silence this.",
                RuntimeWarning, stacklevel=2,
            )
    return _state["triplet_basis"]
