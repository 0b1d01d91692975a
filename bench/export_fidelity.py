"""Benchmark: export fidelity — fp32 vs int8 accuracy, agreement, sizes, predicted vs measured."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from hwnas.logs import show_on_stderr
from hwnas.export.config import ExportConfig
from hwnas.export.export import export_run
from hwnas.io import atomic_write_json
from hwnas.space import Arch, get_space, random_arch, reference_arch

RESULTS = Path(__file__).parent / "results" / "export_fidelity.json"


def candidates(root: Path) -> list[tuple[str, Path]]:
    """(label, folder with arch.json): the reference, and a searched arch (else a random one)."""
    space = get_space("fbnet-small")
    ref = root / "reference"
    ref.mkdir()
    reference_arch(space, "mobilenetv2").save(ref / "arch.json")
    out = [("reference fbnet-small/mobilenetv2", ref)]
    searched = sorted(Path("runs").glob("*/arch.json"), key=lambda p: p.stat().st_mtime)
    other = root / "other"
    other.mkdir()
    if searched:
        rec = json.loads(searched[-1].read_text())
        Arch.load(searched[-1])  # validates
        (other / "arch.json").write_text(json.dumps(rec, indent=2))
        out.append((f"searched {searched[-1].parent.name}", other))
    else:
        label = random_under_target(space, ref / "arch.json", other / "arch.json")
        out.append((label, other))
    return out


def random_under_target(space, ref_file: Path, dest: Path, tries: int = 200) -> str:
    """No search run: a seeded random architecture predicted (by the newest host table) to
    be no slower than the reference, with that target recorded so the export checks it."""
    from hwnas.latency import LatencyTable
    from hwnas.search.tables import find_table

    table_file = find_table(space)
    if table_file is None:
        random_arch(space, 1).save(dest)
        return "random fbnet-small seed 1 (no search run, no table)"
    table = LatencyTable.load(table_file)
    target = round(table.predict(Arch.load(ref_file), space), 3)
    for seed in range(1, tries + 1):
        arch = random_arch(space, seed)
        pred = table.predict(arch, space)
        if pred <= target:
            arch.save(
                dest, predicted_ms=round(pred, 6), target_ms=target, table=str(table_file.resolve())
            )
            return f"random fbnet-small seed {seed} under {target:g} ms (no search run)"
    raise SystemExit(f"no random architecture under {target:g} ms in {tries} seeds")


def with_table(folder: Path) -> None:
    """Name the newest matching host table in arch.json so predictions exist (if none yet)."""
    from hwnas.search.tables import find_table

    rec = json.loads((folder / "arch.json").read_text())
    if rec.get("table"):
        return
    arch = Arch.load(folder / "arch.json")
    table = find_table(arch.get_space())
    if table is not None:
        (folder / "arch.json").write_text(json.dumps({**rec, "table": str(table.resolve())}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--subset", type=int, default=12000)
    ap.add_argument("--eval-images", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, folder in candidates(Path(tmp)):
            with_table(folder)
            t0 = time.perf_counter()
            s = export_run(
                ExportConfig(
                    source=folder,
                    epochs=args.epochs,
                    subset=args.subset,
                    eval_images=args.eval_images,
                    threads=1,
                    batch_size=args.batch_size,
                    progress=True,
                )
            )
            lat = s["latency"]
            row = {
                "label": label,
                "arch": s["arch"]["choices"],
                "macs": s["macs"],
                "params": s["params"],
                "accuracy": s["accuracy"],
                "checks": {k: v for k, v in s["checks"].items() if k != "tflite_int8_io"},
                "bytes": {n: f["bytes"] for n, f in s["files"].items()},
                "predicted_ms": lat["predicted_ms"],
                "target_ms": lat["target_ms"],
                "table_backend": lat["table_backend"],
                "target_holds": lat["target_holds"],
                "measured_ms": {
                    f"{m['file']}@{m['backend']}": m["median_ms"] for m in lat["measured"]
                },
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
    print(
        f"{'arch':58} {'fp32':>7} {'int8':>7} {'drop':>6} {'agree':>6} {'int8 KiB':>9} "
        f"{'pred ms':>8} {'target':>7} {'litert ms':>9} {'ort ms':>7}"
    )
    for r in rows:
        a, m = r["accuracy"], r["measured_ms"]
        nan = float("nan")
        litert = next((v for k, v in m.items() if k.endswith("host-litert")), nan)
        ort = next((v for k, v in m.items() if k.endswith("host-ort")), nan)
        pred = r["predicted_ms"] if r["predicted_ms"] is not None else nan
        target = r["target_ms"] if r["target_ms"] is not None else nan
        agree = 100 * r["checks"]["tflite_int8_agreement"]
        kib = r["bytes"]["model_int8.tflite"] / 1024
        print(
            f"{r['label'][:58]:58} {100 * a['pytorch_fp32']:6.2f}% "
            f"{100 * a['tflite_int8']:6.2f}% {a['tflite_int8_drop_points']:6.2f} {agree:5.1f}%"
            f" {kib:9.1f} {pred:8.3f} {target:7.3f} {litert:9.3f} {ort:7.3f}"
        )
    atomic_write_json(
        args.out,
        {
            "epochs": args.epochs,
            "subset": args.subset,
            "batch_size": args.batch_size,
            "eval_images": args.eval_images,
            "host": platform.processor() or platform.machine(),
            "rows": rows,
        },
    )
    print(f"→ {args.out}")


if __name__ == "__main__":
    show_on_stderr()  # the library's progress lines, as the hwnas command shows them
    main()
