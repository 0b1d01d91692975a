"""``hwnas export``: train an architecture, convert it (ONNX/TFLite, fp32/int8), check, measure."""

from __future__ import annotations

import dataclasses
import errno

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hwnas.convert import FORMATS, PRECISIONS
from hwnas.errors import HwnasError, check
from hwnas.io import atomic_write_json, output_lock, staging_dir

if TYPE_CHECKING:
    from hwnas.search.base import SearchResult

PARITY_TOL = 1e-4


@dataclass(frozen=True)
class ExportConfig:
    """Everything one export needs; validated on construction."""

    source: Path  # a run directory holding arch.json, or an architecture JSON file
    data: str = "fashion-mnist"
    data_root: Path | None = None
    epochs: int = 3
    subset: int | None = None
    formats: tuple[str, ...] = FORMATS
    precision: tuple[str, ...] = PRECISIONS
    out: Path | None = None
    resume: bool = False
    table: Path | None = None
    backend: str | None = None
    seed: int = 0
    batch_size: int = 128
    calib_images: int = 100
    parity_images: int = 64
    eval_images: int | None = None  # test images for int8 accuracy/agreement (None: all)
    warmup: int = 10
    runs: int = 50
    repeats: int = 3
    threads: int | None = None  # measurement threads (default: the table's, else 1)
    progress: bool = True
    reference: bool = False  # also train the scaled MobileNetV2-like reference, same recipe
    accelerator: str = "cpu"  # where training runs (hwnas.accelerator); export is on the CPU
    workers: int = 0  # DataLoader workers decoding a lazy image folder

    def __post_init__(self):
        object.__setattr__(self, "source", Path(self.source))
        for name in ("data_root", "out", "table"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "formats", _names(self.formats, FORMATS, "--formats"))
        object.__setattr__(self, "precision", _names(self.precision, PRECISIONS, "--precision"))
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (
                self.subset is None or self.subset >= 2,
                f"--subset must be at least 2 images (got {self.subset})",
            ),
            (self.batch_size >= 1, f"batch size must be at least 1 (got {self.batch_size})"),
            (
                self.calib_images >= 1,
                f"calibration images must be at least 1 (got {self.calib_images})",
            ),
            (
                self.parity_images >= 1,
                f"parity images must be at least 1 (got {self.parity_images})",
            ),
            (
                self.eval_images is None or self.eval_images >= 1,
                f"--eval-images must be at least 1 (got {self.eval_images})",
            ),
            (
                self.warmup >= 0 and self.runs >= 1 and self.repeats >= 1,
                f"need warmup >= 0, runs >= 1, repeats >= 1 (got {self.warmup}, {self.runs}, "
                f"{self.repeats})",
            ),
            (
                self.threads is None or self.threads >= 1,
                f"--threads must be at least 1 (got {self.threads})",
            ),
            (self.workers >= 0, f"--workers must be at least 0 (got {self.workers})"),
        ]
        check(checks)


def _names(value, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(v).strip().lower() for v in items if str(v).strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise HwnasError(f"{option} {','.join(bad) or '(empty)'}: choose from {', '.join(allowed)}")
    return tuple(v for v in allowed if v in items)


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and its summary (the same dict as ``summary.json``)."""

    out: Path
    summary: dict

    @property
    def files(self) -> dict:
        return self.summary["files"]

    @property
    def checks(self) -> dict:
        return self.summary["checks"]

    @property
    def accuracy(self) -> dict:
        return self.summary["accuracy"]

    @property
    def latency(self) -> dict:
        return self.summary["latency"]

    def __getitem__(self, key: str):  # callers that index the summary keep working
        return self.summary[key]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Source:
    """The architecture and what the search recorded about it (``result``: the typed
    ``arch.json``; only ``arch`` is set for a bare architecture file)."""

    arch: object
    space: object
    result: SearchResult
    arch_file: Path
    run_dir: Path | None


def load_source(path: Path) -> Source:
    """The architecture of a run directory or JSON file, with its search result."""
    from hwnas.search.base import SearchResult
    from hwnas.space import Arch

    path = Path(path)
    if path.is_dir():
        arch_file = path / "arch.json"
        if not arch_file.is_file():
            raise HwnasError(
                f"{path}: no arch.json in this run directory (pass a search run "
                "directory or an ARCH.json)"
            )
        run_dir = path
    elif path.is_file():
        arch_file, run_dir = path, None
    else:
        raise HwnasError(f"{path}: no such run directory or architecture file")
    arch = Arch.load(arch_file)
    space = arch.get_space()
    record = json.loads(arch_file.read_text())
    result = SearchResult.from_record(record if isinstance(record, dict) else {}, arch)
    return Source(arch, space, result, arch_file, run_dir)


def default_out(src: Source) -> Path:
    return (src.run_dir if src.run_dir is not None else src.arch_file.parent) / "export"


EXPORT_MARKERS = ("summary.json", "model.json")  # an earlier export, safe to replace


def check_writable(out: Path, arch_file: Path | None = None) -> None:
    """Fail early (creating nothing) when ``out`` cannot be created, or must not be replaced:
    the export swaps the whole folder, so it refuses one holding anything but an earlier
    export (or its ``train/``) — never a search run directory."""
    if out.exists() and not out.is_dir():
        raise HwnasError(f"cannot write the export to {out}: it exists and is not a directory")
    if arch_file is not None and out.resolve() in Path(arch_file).resolve().parents:
        raise HwnasError(
            f"cannot write the export to {out}: it holds the architecture "
            f"{arch_file}; choose another --out"
        )
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        if names - {"train"} and not names & set(EXPORT_MARKERS):
            raise HwnasError(
                f"cannot write the export to {out}: it is a folder with other "
                "files, not an earlier export; choose another --out"
            )
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise HwnasError(f"cannot write the export to {out}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        read_only = os.statvfs(probe).f_flag & os.ST_RDONLY
        why = os.strerror(errno.EROFS) if read_only else "permission denied"
        raise HwnasError(f"cannot write the export to {out}: {probe} is not writable ({why})")


def load_table(cfg: ExportConfig, src: Source):
    """The latency table (explicit --table, else the one arch.json names) or None."""
    from hwnas.latency import LatencyTable

    if cfg.table is not None:
        table = LatencyTable.load(cfg.table)
        table.check_space(src.space)
        return table
    named = src.result.table
    if not named:
        return None
    for candidate in (Path(named), src.arch_file.parent / named):
        if candidate.is_file():
            table = LatencyTable.load(candidate)
            table.check_space(src.space)
            return table
    _say(
        cfg,
        f"note: the table {named} named in {src.arch_file} is not found; using the "
        "recorded prediction and provenance",
    )
    return None


def choose_backend(cfg: ExportConfig, provenance: dict) -> str:
    """--backend, else the table's: the phone over adb when it came from one, else its host
    backend (host-litert when unknown)."""
    if cfg.backend is not None:
        from hwnas.device_profiler.backends import BACKENDS

        if cfg.backend not in BACKENDS:
            raise HwnasError(
                f"unknown backend {cfg.backend!r}; choose one of {', '.join(BACKENDS)}"
            )
        return cfg.backend
    device = provenance.get("device")
    if device and device != "host":
        return "adb"
    backend = provenance.get("backend")
    return backend if backend in ("host-ort", "host-litert") else "host-litert"


def load_data(cfg: ExportConfig, space):
    from hwnas.data import load_dataset

    try:
        splits = load_dataset(
            cfg.data,
            cfg.data_root,
            resolution=space.resolution,
            in_channels=space.in_channels,
            seed=cfg.seed,
            subset=cfg.subset,
            workers=cfg.workers,
        )
    except HwnasError as e:
        raise HwnasError(f"no data for training and int8 calibration ({cfg.data}): {e}") from None
    if len(splits.classes) != space.num_classes:
        raise HwnasError(
            f"the architecture has {space.num_classes} classes, {cfg.data} has "
            f"{len(splits.classes)}"
        )
    return splits


# --------------------------------------------------------------------------- training


def train_or_reuse(cfg: ExportConfig, src: Source, splits, train_dir: Path):
    """The trained model: a finished model.pt in ``train_dir`` with the same settings is
    reused; otherwise the shared trainer runs (continuing a checkpoint with --resume) on
    ``cfg.accelerator``.  The model comes back on the CPU: everything exported is made
    from it there."""
    from hwnas.space import build_model
    from hwnas.train import TrainConfig, config_changes, train

    tcfg = TrainConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed, accelerator=cfg.accelerator
    )
    model = build_model(src.space, src.arch)
    done = train_dir / "model.pt"
    result_file = train_dir / "result.json"
    if not _same_arch(train_dir / "arch.json", src):
        if cfg.resume:
            raise HwnasError(
                f"{train_dir} holds the training of another architecture; drop "
                "--resume to train this one from scratch, or choose another --out"
            )
        for stale in (done, result_file):
            stale.unlink(missing_ok=True)
    if done.is_file() and result_file.is_file():
        meta = json.loads(result_file.read_text())
        if not config_changes(meta.get("config", {}), tcfg) and meta.get("data") == _data_id(cfg):
            model.load_state_dict(torch.load(done, map_location="cpu", weights_only=True))
            _say(cfg, f"reusing the trained model {done}")
            return model.eval(), meta
        if not cfg.resume:
            _say(cfg, f"{train_dir} holds a model trained with other settings; retraining")
    src.arch.save(train_dir / "arch.json")
    train(model, splits, tcfg, train_dir, resume=cfg.resume, progress=cfg.progress)
    meta = {**json.loads(result_file.read_text()), "data": _data_id(cfg)}
    atomic_write_json(result_file, meta)
    return model.cpu().eval(), meta


def start_reference(cfg: ExportConfig, src: Source, table, target, train_dir: Path):
    """Train the MobileNetV2-like reference scaled to the run's target (``scaled_reference``)
    with the winner's recipe, in a second process so both trainings share the machine's
    cores; ``finish_reference`` waits for it.  Resumes and reuses like the winner's."""
    import multiprocessing

    from hwnas.search.base import SearchResult
    from hwnas.search.baselines import scaled_reference

    ref = scaled_reference(src.space, table, float(target))
    ref_src = Source(
        ref,
        src.space,
        SearchResult(ref, predicted_ms=table.predict(ref, src.space)),
        train_dir / "arch.json",
        None,
    )
    train_dir.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")  # a space holds closures: send the arch as JSON
    proc = ctx.Process(
        target=_reference_worker, args=(cfg, ref.to_dict(src.space), train_dir), daemon=True
    )
    proc.start()
    return proc, ref_src


def _reference_worker(cfg: ExportConfig, arch_dict: dict, train_dir: Path) -> None:
    from hwnas.search.base import SearchResult
    from hwnas.space import Arch

    torch.set_num_threads(1)
    arch = Arch.from_dict(arch_dict)
    space = arch.get_space()
    quiet = dataclasses.replace(cfg, progress=False)
    src = Source(arch, space, SearchResult(arch), train_dir / "arch.json", None)
    train_or_reuse(quiet, src, load_data(quiet, space), train_dir)


def finish_reference(job, train_meta: dict) -> dict:
    proc, ref_src = job
    proc.join()
    result = ref_src.arch_file.parent / "result.json"
    if proc.exitcode != 0 or not result.is_file():
        raise HwnasError(
            f"training the scaled reference failed (exit code {proc.exitcode}); "
            f"see {ref_src.arch_file.parent}"
        )
    meta = json.loads(result.read_text())
    return {
        "name": ref_src.arch.name,
        "choices": list(ref_src.arch.choices),
        "predicted_ms": ref_src.result.predicted_ms,
        "test_acc": meta["test_acc"],
        "val_acc": meta["val_acc"],
        "seconds": meta["seconds"],
        "winner_test_acc": train_meta.get("test_acc"),
    }


def _same_arch(saved: Path, src: Source) -> bool:
    """True when ``saved`` is absent or names the same network as ``src`` (names aside)."""
    if not saved.is_file():
        return True
    try:
        theirs = json.loads(saved.read_text())
    except (OSError, ValueError):
        return False
    ours = src.arch.to_dict(src.space)
    keys = ("space", "space_args", "choices")
    return isinstance(theirs, dict) and all(theirs.get(k) == ours.get(k) for k in keys)


def _data_id(cfg: ExportConfig) -> dict:
    return {"name": cfg.data, "subset": cfg.subset}


# --------------------------------------------------------------------------- checks


def torch_logits(model, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(x[i : i + batch]).numpy() for i in range(0, len(x), batch)])


def onnx_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits of an ONNX file (batch 1, NCHW) one image at a time, one thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


# --------------------------------------------------------------------------- measuring


def check_backend(backend_name: str, threads: int, provenance: dict) -> None:
    """Connect to the phone before hours of training, not after (host backends: no-op)."""
    if backend_name != "adb":
        return
    from hwnas.device_profiler.backends import backend_from_provenance

    backend_from_provenance(provenance, "adb", threads=threads, precision="int8").close()


def device_name(device) -> str:
    """A readable device name from a provenance ``device`` (a string, or adb's dict)."""
    if isinstance(device, dict):
        return str(device.get("model") or device.get("name") or device.get("serial") or "phone")
    return str(device) if device else "?"


def measure(
    backend_name: str,
    path: Path,
    precision: str,
    cfg: ExportConfig,
    threads: int,
    provenance: dict | None = None,
) -> dict:
    """Time the exported file ``path`` on ``backend_name``, set up as the table's was."""
    from hwnas.device_profiler.backends import backend_from_provenance, measure_file

    backend = backend_from_provenance(
        provenance or {}, backend_name, threads=threads, precision=precision
    )
    try:
        timed = measure_file(backend, path, warmup=cfg.warmup, runs=cfg.runs, repeats=cfg.repeats)
        prov = backend.provenance()
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    return {
        "file": path.name,
        "backend": backend_name,
        "precision": precision,
        "device": device_name(prov.get("device")),
        "threads": threads,
        **timed,
        "provenance": prov,
    }


# --------------------------------------------------------------------------- the run


def export_run(cfg: ExportConfig) -> ExportResult:
    """Train, convert, check, measure and report into OUT (``summary.json``, ``model.json``,
    ``report.md``, model files).  Everything but OUT/train is built in a temporary folder next
    to OUT and renamed into place at the end."""
    from hwnas.space import arch_complexity

    from . import app, report

    t_start = time.perf_counter()
    src = load_source(cfg.source)
    out = (cfg.out or default_out(src)).resolve()
    check_writable(out, src.arch_file)
    with output_lock(out):  # one export per folder; removes a killed run's staging
        table = load_table(cfg, src)
        provenance = table.provenance if table is not None else dict(src.result.provenance)
        backend_name = choose_backend(cfg, provenance)
        splits = load_data(cfg, src.space)
        if cfg.calib_images > len(splits.train):
            raise HwnasError(
                f"{cfg.calib_images} calibration images asked, the training split "
                f"has {len(splits.train)}"
            )
        threads = cfg.threads or int(provenance.get("threads") or 1)
        check_backend(backend_name, threads, provenance)
        total, _ = arch_complexity(src.space, src.arch)
        predicted = (
            table.predict(src.arch, src.space) if table is not None else src.result.predicted_ms
        )
        target = src.result.target_ms

        if cfg.reference and (table is None or target is None):
            raise HwnasError(
                "--reference needs the run's latency table and target (a search run "
                "directory whose arch.json names them)"
            )
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
            if ref_job is not None:
                summary_ref = finish_reference(ref_job, train_meta)
            summary = _convert_and_check(cfg, src, splits, model, tmp, train_meta)
            if ref_job is not None:
                summary["reference"] = summary_ref
            summary["latency"] = _closing_loop(
                cfg, summary["files"], tmp, backend_name, threads, predicted, target, provenance
            )
            summary.update(
                arch=src.arch.to_dict(src.space),
                macs=total.macs,
                params=total.params,
                source=str(src.arch_file),
                table=str(table.path) if table else src.result.table,
                table_provenance=provenance,
                seconds=time.perf_counter() - t_start,
            )
            app.write_app_files(tmp, splits, summary)
            if src.run_dir is not None:
                summary["search_plots"] = report.copy_search_plots(src.run_dir, tmp / "search")
            if src.result.supernet_note:
                summary["search_note"] = src.result.supernet_note
            report.write_report(tmp, summary)
            atomic_write_json(tmp / "summary.json", summary)
            _finish(tmp, out)
        except BaseException:
            if ref_job is not None and ref_job[0].is_alive():
                ref_job[0].terminate()
            for name in KEPT:  # a failed swap keeps the trainings
                if (tmp / name).is_dir() and out.is_dir() and not (out / name).exists():
                    os.replace(tmp / name, out / name)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        summary["out"] = str(out)
        return ExportResult(out, summary)


def _convert_and_check(cfg, src, splits, model, tmp: Path, train_meta: dict) -> dict:
    from hwnas.convert import run_tflite, tflite_io, to_onnx, to_onnx_int8, to_tflite

    n_test = len(splits.test)  # only the images used are decoded (a lazy folder can be large)
    n_eval = n_test if cfg.eval_images is None else min(cfg.eval_images, n_test)
    eval_idx = (
        torch.arange(n_test)
        if n_eval == n_test
        else torch.randperm(n_test, generator=torch.Generator().manual_seed(cfg.seed))[:n_eval]
        .sort()
        .values
    )
    ex, ey = splits.test.batch(eval_idx)
    ey = ey.numpy()
    px = splits.test.batch(torch.arange(min(cfg.parity_images, n_test)))[0]
    sample = px[:1]
    ref_parity = torch_logits(model, px)
    ref_eval = torch_logits(model, ex)
    calib = [c[None] for c in splits.calibration(cfg.calib_images, cfg.seed)]
    eval_set = (
        f"all {n_eval} test images"
        if n_eval == n_test
        else f"seeded random {n_eval} of {n_test} test images"
    )
    files, checks = (
        {},
        {
            "tolerance": PARITY_TOL,
            "parity_images": len(px),
            "eval_images": n_eval,
            "eval_set": eval_set,
            "calib_images": len(calib),
        },
    )
    acc = {"pytorch_fp32": accuracy(ref_eval, ey), "train_test_acc": train_meta.get("test_acc")}
    steps = [(f, p) for f in cfg.formats for p in cfg.precision]
    for i, (fmt, prec) in enumerate(steps, 1):
        name = f"model_{prec}.{fmt}"
        path = tmp / name
        t0 = time.perf_counter()
        _say(cfg, f"[{i}/{len(steps)}] {name}: converting")
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
    for key in ("onnx_fp32_max_abs_diff", "tflite_fp32_max_abs_diff"):
        if key in checks:
            checks[key.replace("max_abs_diff", "ok")] = checks[key] <= PARITY_TOL
    for key in ("tflite_int8", "onnx_int8"):
        if key in acc:
            acc[f"{key}_drop_points"] = 100 * (acc["pytorch_fp32"] - acc[key])
    return {
        "files": files,
        "checks": checks,
        "accuracy": acc,
        "train": {k: train_meta.get(k) for k in ("test_acc", "val_acc", "seconds")}
        | {"epochs": cfg.epochs, "subset": cfg.subset, "data": cfg.data},
    }


def _closing_loop(
    cfg,
    files: dict,
    tmp: Path,
    backend_name: str,
    threads: int,
    predicted,
    target,
    provenance: dict,
) -> dict:
    """Measure the int8 (else fp32) .tflite on the table's TFLite backend and the .onnx on
    host-ort; the primary measurement is the one matching the table's backend/precision."""
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
        _say(cfg, f"measuring {name} on {bk} ({threads} thread{'s' * (threads > 1)})")
        measured.append(measure(bk, tmp / name, files[name]["precision"], cfg, threads, provenance))
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


def _say(cfg: ExportConfig, message: str) -> None:
    if cfg.progress:
        print(message, file=sys.stderr, flush=True)


__all__ = [
    "ExportConfig",
    "ExportResult",
    "export_run",
    "load_source",
    "FORMATS",
    "PRECISIONS",
    "PARITY_TOL",
]
