"""Benchmark: random search with the same wall-clock budget as an evolution search on the shared
supernet, so that ``rescore.py`` can retrain its winner beside evolution's and the reference's.

For each evolution run folder given, the budget is what that search cost from nothing: the
supernet's training seconds (its manifest) plus the search's own seconds (its ``arch.json``).
Random search draws architectures under the same target from the same table, trains each with
``search_quality.py``'s 1-epoch proxy on the supernet's images (same subset and seed), and keeps
the best on val.  The winner goes to ``runs/random-<run name>/arch.json`` (strategy "random",
the search's seed in ``config.json``), so
``bench/rescore.py --from-run runs/evo-... runs/random-evo-... --group G`` retrains it with its
seed.  Resumable: a finished folder is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import random_search  # noqa: E402  (the one proxy and sampler)

from hwnas.logs import show_on_stderr
from hwnas.data import load_dataset  # noqa: E402
from hwnas.io import atomic_write_json  # noqa: E402
from hwnas.latency import LatencyTable  # noqa: E402
from hwnas.space import get_space  # noqa: E402


def budget_seconds(run: Path) -> tuple[float, dict]:
    """(supernet training + search seconds, the supernet's data record) of an evolution run."""
    rec = json.loads((run / "arch.json").read_text())
    manifest = json.loads((Path(rec["supernet"]["path"]) / "manifest.json").read_text())
    return manifest["budget"]["seconds"] + rec["search_seconds"], manifest["data"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="evolution run folders (one per seed)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    space = get_space("fbnet-small")
    for run in args.runs:
        out = run.parent / f"random-{run.name}"
        if (out / "arch.json").exists():
            print(f"{out}: done", flush=True)
            continue
        rec = json.loads((run / "arch.json").read_text())
        seed = json.loads((run / "config.json").read_text())["seed"]
        budget, data = budget_seconds(run)
        table = LatencyTable.load(rec["table"])
        splits = load_dataset(data["name"], subset=data["subset"], seed=data["seed"])
        t0 = time.perf_counter()
        arch, trials = random_search(space, table, rec["target_ms"], splits, budget, seed)
        spent = time.perf_counter() - t0
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", {"seed": seed, "from_run": str(run)})
        arch.save(
            out / "arch.json",
            strategy="random",
            table=rec["table"],
            target_ms=rec["target_ms"],
            predicted_ms=table.predict(arch, space),
            budget_seconds=budget,
            search_seconds=spent,
            trials=trials,
        )
        print(
            f"{out}: {trials} trials in {spent:.0f} s (budget {budget:.0f} s), "
            f"winner {table.predict(arch, space):.3f} ms",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    sys.exit(main())
