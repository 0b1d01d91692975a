#!/usr/bin/env bash
# Check training on the best accelerator present (CUDA, then MPS, then the CPU) end to end,
# on a generated image folder (10 classes of small JPEGs, read lazily by 2 workers):
#   1. the supernet trainer: epoch 1 on the CPU, stopped, then resumed for epoch 2 on the
#      best accelerator (a resume across accelerators; cpu -> cpu without a GPU);
#   2. a short `hwnas train` of the MobileNetV2-like reference;
#   3. `hwnas export` of it (trained on the best accelerator, converted from a CPU copy);
#   4. `hwnas search`: one FBNet epoch (weight and θ steps, then the selection) there.
# Prints seconds per training step of each.  Passes on a CPU-only machine, saying that no
# GPU was found.  About 3-6 minutes on a busy 2-core CPU (the search step ~1.5 of them).
#
#   scripts/check_accelerator.sh            # PYTHON=... to use another interpreter
#   KEEP=1 scripts/check_accelerator.sh     # keep the work folder
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
HWNAS=("$PY" -m hwnas.cli)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hwnas-accel.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "work folder: $WORK"; fi

BEST=$("$PY" -c 'from hwnas.accelerator import present; print(present()[0])')
if [[ "$BEST" == cpu ]]; then
    echo "no GPU found (no CUDA, no MPS): checking the CPU path only"
else
    echo "best accelerator present: $BEST"
fi

step() { printf '\n== %s\n' "$*"; }

step "data: 10 classes x 40 JPEGs in $WORK/data"
"$PY" - "$WORK/data" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

root, rng = Path(sys.argv[1]), np.random.default_rng(0)
for c in range(10):
    (root / f"c{c}").mkdir(parents=True)
    for i in range(40):
        arr = rng.integers(0, 60, (40, 48, 3)) + 18 * c
        Image.fromarray(arr.astype(np.uint8)).save(root / f"c{c}" / f"{i}.jpg")
EOF
COMMON=(--data folder --data-root "$WORK/data" --workers 2)

step "supernet: epoch 1 on cpu, then resumed on $BEST for epoch 2"
SN=(--out "$WORK/supernet" --space fbnet-small --subset 160 --epochs 2 --batch-size 32 --seed 0)
"$PY" - "$WORK" <<'EOF'
import sys

from hwnas.supernet.train import SupernetConfig, train_supernet

work = sys.argv[1]
cfg = SupernetConfig(
    out=f"{work}/supernet", space="fbnet-small", data="folder", data_root=f"{work}/data",
    subset=160, epochs=2, batch_size=32, seed=0, accelerator="cpu", workers=2,
)
assert train_supernet(cfg, stop_after_epochs=1, progress=False) is None
EOF
"${HWNAS[@]}" supernet train "${SN[@]}" --data folder --data-root "$WORK/data" --workers 2 \
    --resume --accelerator "$BEST"

step "hwnas train: the MobileNetV2-like reference, 1 epoch on $BEST"
"${HWNAS[@]}" arch ref fbnet-small mobilenetv2 -o "$WORK/mnv2.json"
"${HWNAS[@]}" train "$WORK/mnv2.json" "${COMMON[@]}" --epochs 1 --batch-size 32 \
    --out "$WORK/train" --accelerator "$BEST"

step "hwnas export: trained 1 epoch on $BEST, ONNX fp32 from the CPU copy"
T0=$(date +%s)
"${HWNAS[@]}" export "$WORK/mnv2.json" "${COMMON[@]}" --epochs 1 --eval-images 40 \
    --formats onnx --precision fp32 --out "$WORK/export" --accelerator "$BEST"
EXPORT_S=$(($(date +%s) - T0))

step "hwnas search: one FBNet epoch (weight + θ steps) on $BEST, on a synthetic table"
"$PY" -c 'import sys
from hwnas.latency import synthetic_table
from hwnas.space import get_space
synthetic_table(get_space("fbnet-small")).save(sys.argv[1])' "$WORK/table.csv"
"${HWNAS[@]}" search --strategy fbnet --space fbnet-small --table "$WORK/table.csv" \
    --target-frac 0.8 --data folder --data-root "$WORK/data" --subset 160 --batch-size 32 \
    --epochs 1 --warmup-epochs 0 --mode hard --refine 0 --out "$WORK/search" \
    --accelerator "$BEST"

step "seconds per training step (batch 32, fbnet-small at 32 px)"
"$PY" - "$WORK" "$BEST" "$EXPORT_S" <<'EOF'
import csv
import json
import math
import sys
from pathlib import Path

work, best, export_s = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = list(csv.DictReader((work / "supernet" / "log.csv").open()))
manifest = json.loads((work / "supernet" / "manifest.json").read_text())
steps = manifest["budget"]["steps"] // manifest["budget"]["epochs"]
print(f"supernet epoch 1  cpu  {float(rows[0]['seconds']) / steps:.3f} s/step ({steps} steps)")
print(f"supernet epoch 2  {best:4} {float(rows[1]['seconds']) / steps:.3f} s/step (resumed)")
n = math.ceil((400 - 80 - 64) / 32)  # 80 test images, 64 of the other 320 for validation
for name in ("train", "export/train"):
    r = json.loads((work / name / "result.json").read_text())
    print(f"{name:16}  {best:4} {r['seconds'] / n:.3f} s/step (1 epoch of {n} steps + val)")
summary = json.loads((work / "export" / "summary.json").read_text())
assert "model_fp32.onnx" in summary["files"] and summary["checks"]["onnx_fp32_ok"]
print(f"export            {best:4} {export_s} s in all, ONNX parity ok")
row = next(csv.DictReader((work / "search" / "log.csv").open()))
n = math.ceil(128 / 32)  # 80% of the 160-image subset trains the weights, θ steps between
print(f"search epoch 1    {best:4} {float(row['seconds']) / n:.3f} s/step ({n} weight steps + θ)")
assert json.loads((work / "search" / "arch.json").read_text())["margin_ms"] >= 0
EOF
if [[ "$BEST" == cpu ]]; then
    echo "ok (no GPU found: CPU path only; CUDA and MPS were not exercised)"
else
    echo "ok ($BEST)"
fi
