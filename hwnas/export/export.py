"""``hwnas export``: train an architecture, convert it (ONNX/TFLite, fp32/int8), check,
measure.  The run is here; its parts: ``config`` (settings, result), ``inputs`` (source, output
folder, table, data), ``training`` (winner, reference), ``checks`` (logits, accuracy, latency)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, output_lock, staging_dir

from .checks import (
    accuracy,
    agreement,
    check_backend,
    device_name,
    measure,
    onnx_logits,
    torch_logits,
)
from .config import PARITY_TOL, ExportConfig, ExportResult, say
from .inputs import check_writable, choose_backend, default_out, load_data, load_source, load_table
from .training import finish_reference, pick_shipped, start_reference, train_or_reuse


def export_run(cfg: ExportConfig) -> ExportResult:
    """Train, convert, check, measure and report into OUT (``summary.json``, ``model.json``,
    ``report.md``, model files).  Everything but OUT/train is built in a temporary folder next
    to OUT and renamed into place at the end."""
    t_start = time.perf_counter()
    src = load_source(cfg.source)
    out = (cfg.out or default_out(src)).resolve()
    check_writable(out, src.arch_file)
    with output_lock(out):  # one export per folder; removes a killed run's staging
        table, provenance, backend_name, threads = _measuring(cfg, src)
        splits = load_data(cfg, src.space)
        _check_inputs(cfg, src, table, len(splits.train))
        check_backend(backend_name, threads, provenance)
        predicted = (
            table.predict(src.arch, src.space) if table is not None else src.result.predicted_ms
        )
        target = src.result.target_ms
        try:
            out.mkdir(parents=True, exist_ok=True)
            tmp = staging_dir(out)
        except OSError as e:
            raise HwnasError(f"cannot write the export to {out}: {e.strerror or e}") from None
        ref_job = None
        try:
            if cfg.reference:
                ref_job = start_reference(cfg, src, table, target, out / "reference")
            model, train_meta = train_or_reuse(cfg, src, splits, out / "train")
            arch, shipped = src.arch, "searched"
            if ref_job is not None:
                summary_ref = finish_reference(ref_job, train_meta)
                shipped = pick_shipped(cfg.ship, train_meta.get("val_acc"), summary_ref["val_acc"])
                if shipped == "reference":
                    ref_src = ref_job[1]
                    say(cfg, _shipping_reference(summary_ref, train_meta))
                    model, train_meta = train_or_reuse(cfg, ref_src, splits, out / "reference")
                    arch, predicted = ref_src.arch, ref_src.result.predicted_ms
            summary = _convert_and_check(cfg, src, splits, model, tmp, train_meta)
            summary["shipped"] = shipped
            if ref_job is not None:
                summary["reference"] = summary_ref
            summary["latency"] = _closing_loop(
                cfg,
                summary["files"],
                tmp,
                backend_name,
                threads,
                predicted,
                target,
                provenance,
                src.space,
            )
            where = {
                "source": str(src.arch_file),
                "table": str(table.path) if table else src.result.table,
                "table_provenance": provenance,
                "seconds": time.perf_counter() - t_start,
            }
            _write(tmp, src, arch, splits, summary, where)
            _finish(tmp, out)
        except BaseException:
            _abandon(tmp, out, ref_job)
            raise
        summary["out"] = str(out)
        return ExportResult(out, summary)


def _shipping_reference(ref: dict, train_meta: dict) -> str:
    """The progress line when the scaled reference is shipped instead of the search's pick."""
    return (
        f"shipping the scaled reference {ref['name']}: validation accuracy "
        f"{100 * ref['val_acc']:.2f}% against the searched architecture's "
        f"{100 * train_meta['val_acc']:.2f}% (--ship searched exports the search's pick)"
    )


def _check_inputs(cfg: ExportConfig, src, table, train_images: int) -> None:
    """What export_run refuses before it writes anything."""
    if cfg.calib_images > train_images:
        raise HwnasError(
            f"{cfg.calib_images} calibration images asked, the training split has {train_images}"
        )
    if cfg.reference and (table is None or src.result.target_ms is None):
        raise HwnasError(
            "--reference needs the run's latency table and target (a search run "
            "directory whose arch.json names them)"
        )


def _abandon(tmp: Path, out: Path, ref_job) -> None:
    """A failed export: stop the reference's training, keep the trainings, drop the staging."""
    if ref_job is not None and ref_job[0].is_alive():
        ref_job[0].terminate()
    for name in KEPT:  # a failed swap keeps the trainings
        if (tmp / name).is_dir() and out.is_dir() and not (out / name).exists():
            os.replace(tmp / name, out / name)
    shutil.rmtree(tmp, ignore_errors=True)


def _measuring(cfg: ExportConfig, src) -> tuple:
    """(table or None, its provenance or the search's, backend name, threads): where and how
    the exported files are timed."""
    table = load_table(cfg, src)
    provenance = table.provenance if table is not None else dict(src.result.provenance)
    threads = cfg.threads or int(provenance.get("threads") or 1)
    return table, provenance, choose_backend(cfg, provenance), threads


def _write(tmp: Path, src, arch, splits, summary: dict, where: dict) -> None:
    """The shipped architecture's figures and ``where`` (source, table, time) into
    ``summary``, then the app files, the search's plots, report.md and summary.json into
    ``tmp``."""
    from hwnas.space import arch_complexity

    from . import app, report

    total, _ = arch_complexity(src.space, arch)
    summary.update(arch=arch.to_dict(src.space), macs=total.macs, params=total.params, **where)
    app.write_app_files(tmp, splits, summary)
    if src.run_dir is not None:
        summary["search_plots"] = report.copy_search_plots(src.run_dir, tmp / "search")
    if src.result.supernet_note:
        summary["search_note"] = src.result.supernet_note
    report.write_report(tmp, summary)
    atomic_write_json(tmp / "summary.json", summary)


def _checks_header(n_eval: int, n_test: int, n_parity: int, n_calib: int) -> dict:
    """The checks' settings, before any file is converted."""
    return {
        "tolerance": PARITY_TOL,
        "parity_images": n_parity,
        "eval_images": n_eval,
        "eval_set": f"all {n_eval} test images"
        if n_eval == n_test
        else f"seeded random {n_eval} of {n_test} test images",
        "calib_images": n_calib,
    }


# one branch per format and precision, kept together so that the four conversions and
# their checks read side by side.
def _convert_and_check(cfg, src, splits, model, tmp: Path, train_meta: dict) -> dict:
    from hwnas.convert import run_tflite, tflite_io, to_onnx, to_onnx_int8, to_tflite

    ex, ey, px, n_eval, n_test = _test_images(cfg, splits)
    sample = px[:1]
    ref_parity = torch_logits(model, px)
    ref_eval = torch_logits(model, ex)
    calib = [c[None] for c in splits.calibration(cfg.calib_images, cfg.seed)]
    files, checks = {}, _checks_header(n_eval, n_test, len(px), len(calib))
    acc = {"pytorch_fp32": accuracy(ref_eval, ey), "train_test_acc": train_meta.get("test_acc")}
    steps = [(f, p) for f in cfg.formats for p in cfg.precision]
    for i, (fmt, prec) in enumerate(steps, 1):
        name = f"model_{prec}.{fmt}"
        path = tmp / name
        t0 = time.perf_counter()
        say(cfg, f"[{i}/{len(steps)}] {name}: converting")
        if fmt == "onnx" and prec == "fp32":
            to_onnx(model, sample, path, opset=17)
            diff = float(np.abs(onnx_logits(path, px.numpy()) - ref_parity).max())
            checks["onnx_fp32_max_abs_diff"] = diff
        elif fmt == "onnx":
            fp32 = tmp / "model_fp32.onnx"
            base = fp32 if fp32.exists() else to_onnx(model, sample, tmp / ".fp32.onnx")
            to_onnx_int8(base, [c.numpy() for c in calib], path)
            if base.name.startswith("."):
                base.unlink()
            logits = onnx_logits(path, ex.numpy())
            acc["onnx_int8"] = accuracy(logits, ey)
            checks["onnx_int8_agreement"] = agreement(logits, ref_eval)
        elif prec == "fp32":
            to_tflite(model, sample, path, int8=False)
            diff = float(np.abs(run_tflite(path, px.numpy()) - ref_parity).max())
            checks["tflite_fp32_max_abs_diff"] = diff
        else:
            to_tflite(model, sample, path, int8=True, calib=calib)
            logits = run_tflite(path, ex.numpy())
            acc["tflite_int8"] = accuracy(logits, ey)
            checks["tflite_int8_agreement"] = agreement(logits, ref_eval)
            checks["tflite_int8_io"] = tflite_io(path)
        files[name] = {
            "format": fmt,
            "precision": prec,
            "bytes": path.stat().st_size,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    _judge(checks, acc)
    return {
        "files": files,
        "checks": checks,
        "accuracy": acc,
        "train": {k: train_meta.get(k) for k in ("test_acc", "val_acc", "seconds")}
        | {"epochs": cfg.epochs, "subset": cfg.subset, "data": cfg.data},
    }


def _test_images(cfg: ExportConfig, splits) -> tuple:
    """(evaluation images, their labels as numpy, parity images, how many evaluated, test
    set size): all test images or a seeded --eval-images of them; only the images used are
    decoded (a lazy folder can be large)."""
    n_test = len(splits.test)
    n_eval = n_test if cfg.eval_images is None else min(cfg.eval_images, n_test)
    eval_idx = (
        torch.arange(n_test)
        if n_eval == n_test
        else torch.randperm(n_test, generator=torch.Generator().manual_seed(cfg.seed))[:n_eval]
        .sort()
        .values
    )
    ex, ey = splits.test.batch(eval_idx)
    px = splits.test.batch(torch.arange(min(cfg.parity_images, n_test)))[0]
    return ex, ey.numpy(), px, n_eval, n_test


def _judge(checks: dict, acc: dict) -> None:
    """Parity within ``PARITY_TOL`` for the fp32 files, the int8 accuracy drop in points."""
    for key in ("onnx_fp32_max_abs_diff", "tflite_fp32_max_abs_diff"):
        if key in checks:
            checks[key.replace("max_abs_diff", "ok")] = checks[key] <= PARITY_TOL
    for key in ("tflite_int8", "onnx_int8"):
        if key in acc:
            acc[f"{key}_drop_points"] = 100 * (acc["pytorch_fp32"] - acc[key])


def _closing_loop(
    cfg,
    files: dict,
    tmp: Path,
    backend_name: str,
    threads: int,
    predicted,
    target,
    provenance: dict,
    space=None,
) -> dict:
    """Measure the int8 (else fp32) .tflite on the table's TFLite backend and the .onnx on
    host-ort; the primary measurement is the one matching the table's backend/precision
    (timed against the table's ruler, in its unit, where it has one)."""
    tflite_backend = backend_name if backend_name in ("adb", "host-litert") else "host-litert"
    table_prec = provenance.get("precision", "int8")
    plan = []
    for fmt, bk in (("tflite", tflite_backend), ("onnx", "host-ort")):
        names = [n for n, f in files.items() if f["format"] == fmt]
        if not names:
            continue
        pick = next((n for n in names if files[n]["precision"] == table_prec), names[0])
        plan.append((bk, pick))
    measured = []
    for bk, name in plan:
        say(cfg, f"measuring {name} on {bk} ({threads} thread{'s' * (threads > 1)})")
        measured.append(
            measure(bk, tmp / name, files[name]["precision"], cfg, threads, provenance, space)
        )
    primary = next((m for m in measured if m["backend"] == backend_name), None)
    holds = None
    if primary is not None and target is not None:
        holds = primary["median_ms"] <= float(target)
    return {
        "predicted_ms": predicted,
        "target_ms": target,
        "backend": backend_name,
        "table_device": device_name(provenance.get("device")),
        "table_backend": provenance.get("backend"),
        "table_precision": provenance.get("precision"),
        "measured": measured,
        "primary": primary["file"] if primary else None,
        "measured_ms": primary["median_ms"] if primary else None,
        "target_holds": holds,
    }


KEPT = ("train", "reference")  # trainings: carried into every new export of OUT


def _finish(tmp: Path, out: Path) -> None:
    """Move OUT's trainings into the new folder and swap it in for OUT."""
    for name in KEPT:
        if (out / name).exists():
            os.replace(out / name, tmp / name)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["export_run"]
