"""Regenerate hwnas/space/golden/complexity.json: MACs/params of every reference and a few
random architectures of every space (default arguments).  Run after an intended change."""

from __future__ import annotations

from pathlib import Path

from hwnas.io import atomic_write_json
from hwnas.space import (
    SPACES,
    arch_complexity,
    get_space,
    random_arch,
    reference_arch,
    reference_names,
)

GOLDEN = Path(__file__).resolve().parents[1] / "hwnas" / "space" / "golden" / "complexity.json"
RANDOM_SEEDS = (0,)


def golden() -> dict:
    out: dict = {"schema": 1, "spaces": {}}
    for name in SPACES:
        space = get_space(name)
        entries = {}
        archs = [reference_arch(space, r) for r in reference_names(space)]
        archs += [random_arch(space, seed) for seed in RANDOM_SEEDS]
        for arch in archs:
            total, _ = arch_complexity(space, arch)
            entries[arch.name] = {
                "choices": list(arch.choices),
                "macs": total.macs,
                "params": total.params,
            }
        out["spaces"][name] = {
            "params": dict(space.params),
            "version": space.version,
            "archs": entries,
        }
    return out


if __name__ == "__main__":
    atomic_write_json(GOLDEN, golden())
    print(f"wrote {GOLDEN}")
