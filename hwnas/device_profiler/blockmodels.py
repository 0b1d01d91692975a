"""Block and whole-network model files for profiling, converted once and cached by content."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import multiprocessing
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hwnas import convert
from hwnas.convert import FORMATS, PRECISIONS, check_precision
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, cache_dir, native_stderr_quiet
from hwnas.progress import progress_bar
from hwnas.space import LayerInfo, SearchSpace, build_model, get_space, layer_module

CALIB_SAMPLES = 8
# Bump when the way a model file is produced changes (wrappers, calibration, options).
# 2: BatchNorm statistics/affine drawn per channel (trained-like), see ``trained_like``.
# 3: int8 ONNX with uint8 activations (U8S8, fully fused by onnxruntime), see to_onnx_int8.
RECIPE_VERSION = 3
CONSTANT_BLOCKS = ("stem", "head", "pool", "fc")  # once per network, whatever the choices


def default_cache_dir() -> Path:
    """``blocks/`` in hwnas's cache folder (``hwnas.io.cache_dir``: ``$HWNAS_CACHE_DIR``)."""
    return cache_dir("blocks")


def is_analytic(info: LayerInfo) -> bool:
    """An identity-only layer (``skip`` with stride 1 and Cin == Cout): nothing to run,
    latency 0 by definition, so it is never converted or measured."""
    return isinstance(layer_module(info), nn.Identity)


def input_shape(info: LayerInfo) -> tuple[int, int, int, int]:
    """NCHW input shape of a layer's standalone module (batch 1)."""
    h, w, c = info.in_shape
    return (1, c, h, w)


def trained_like(module: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded per-channel BatchNorm statistics and affine terms, as a trained net has.

    With the default init every folded conv bias is zero, the ONNX exporter merges those
    equal constants into one shared initializer, and onnxruntime then cannot fuse the
    DequantizeLinear→Conv→QuantizeLinear pattern: such convs run in fp32 on dequantized
    weights (a 5x5 depthwise conv ~20x slower than its QLinearConv). A trained network's
    biases differ, so block timings must come from distinct ones too."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(c, generator=g))
                    m.bias.copy_(0.1 * torch.randn(c, generator=g))
    return module


def block_module(info: LayerInfo, seed: int = 0, repeat: int = 1) -> nn.Module:
    """The standalone module of one layer, seeded trained-like weights, eval mode; with
    ``repeat`` > 1, that many copies (each its own weights) one after the other — only for a
    layer whose output has its input's shape (``stackable``)."""
    torch.manual_seed(seed)
    if repeat == 1:
        return trained_like(layer_module(info), seed).eval()
    if not stackable(info):
        raise HwnasError(f"block {info.key} changes shape: it cannot be stacked")
    return nn.Sequential(
        *[trained_like(layer_module(info), seed + i) for i in range(repeat)]
    ).eval()


def stackable(info: LayerInfo) -> bool:
    """A measured layer whose output has its input's shape (stride 1, Cin == Cout), so
    copies of it can run one after the other in one model."""
    block, _, _, cin, cout, stride = info.key[:6]
    return (
        stride == 1
        and cin == cout
        and block.split("_")[0] not in CONSTANT_BLOCKS
        and not is_analytic(info)
    )


def network_module(space: SearchSpace, arch, seed: int = 0) -> nn.Module:
    """A whole network of ``space``, seeded trained-like weights, eval mode."""
    torch.manual_seed(seed)
    return trained_like(build_model(space, arch), seed).eval()


def calibration_inputs(
    shape: Sequence[int], n: int = CALIB_SAMPLES, seed: int = 0
) -> list[torch.Tensor]:
    """``n`` seeded N(0,1) tensors of ``shape`` (batch 1): representative enough for timing."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) for _ in range(n)]


def content_key(what: dict, fmt: str, precision: str) -> str:
    """Hash of what is converted, how, and with which tool versions (the cache file name)."""
    blob = json.dumps(
        {
            "what": what,
            "format": fmt,
            "precision": precision,
            "recipe": RECIPE_VERSION,
            "tools": convert.tool_versions(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def export_model(
    model: nn.Module, shape: Sequence[int], fmt: str, precision: str, path: Path, seed: int = 0
) -> Path:
    """Convert ``model`` (NCHW input of ``shape``) to ``fmt``/``precision`` at ``path``."""
    check_format(fmt, precision)
    calib = calibration_inputs(shape, seed=seed)
    sample = calib[0]
    if fmt == "tflite":
        return convert.to_tflite(model, sample, path, int8=precision == "int8", calib=calib)
    if precision == "fp32":
        return convert.to_onnx(model, sample, path)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = convert.to_onnx(model, sample, Path(tmp) / "fp32.onnx")
        return convert.to_onnx_int8(fp32, [c.numpy() for c in calib], path)


def check_format(fmt: str, precision: str) -> None:
    if fmt not in FORMATS:
        raise HwnasError(f"model format {fmt!r} is not one of {', '.join(FORMATS)}")
    check_precision(precision)


@dataclass(frozen=True)
class Built:
    """A model file and how long making it took (0 when it came from the cache)."""

    path: Path
    seconds: float
    cached: bool


@dataclass(frozen=True)
class ModelCache:
    """Content-addressed model files: ``<dir>/<hash>.<format>``; never reconverts."""

    directory: Path
    seed: int = 0

    @classmethod
    def at(cls, directory: str | Path | None = None, seed: int = 0) -> "ModelCache":
        return cls(Path(directory) if directory else default_cache_dir(), seed)

    def block_what(self, info: LayerInfo, repeat: int = 1) -> dict:
        what = {"kind": "block", "key": list(info.key), "seed": self.seed}
        return what if repeat == 1 else {**what, "repeat": repeat}

    def network_what(self, space: SearchSpace, arch) -> dict:
        choices = list(getattr(arch, "choices", arch))
        return {
            "kind": "network",
            "space": space.name,
            "version": space.version,
            "params": dict(sorted(space.params.items())),
            "choices": choices,
            "seed": self.seed,
        }

    def path_for(self, what: dict, fmt: str, precision: str) -> Path:
        check_format(fmt, precision)
        return self.directory / f"{content_key(what, fmt, precision)}.{fmt}"

    def block(self, info: LayerInfo, fmt: str, precision: str, repeat: int = 1) -> Built:
        """The model file of one layer, or of ``repeat`` stacked copies of it (converted on
        first use)."""
        return self._get(self.block_job(info, fmt, precision, repeat), fmt, precision)

    def network(self, space: SearchSpace, arch, fmt: str, precision: str) -> Built:
        """The model file of a whole architecture (for validation), same cache."""
        return self._get(self.network_job(space, arch, fmt, precision), fmt, precision)

    def block_job(self, info: LayerInfo, fmt: str, precision: str, repeat: int = 1) -> Conversion:
        if is_analytic(info):
            raise HwnasError(f"block {info.key} is an identity: it has no model file")
        what = self.block_what(info, repeat)
        return Conversion(
            self.path_for(what, fmt, precision),
            functools.partial(block_module, info, self.seed, repeat),
            input_shape(info),
            what,
        )

    def network_job(self, space: SearchSpace, arch, fmt: str, precision: str) -> Conversion:
        what = self.network_what(space, arch)
        make = (
            functools.partial(
                _catalog_network, space.name, space.params, what["choices"], self.seed
            )
            if _in_catalog(space)
            else functools.partial(network_module, space, arch, self.seed)  # this process only
        )
        shape = (1, space.in_channels, space.resolution, space.resolution)
        return Conversion(self.path_for(what, fmt, precision), make, shape, what)

    def cached(self, job: Conversion) -> bool:
        return job.path.is_file() and job.path.stat().st_size > 0

    def _get(self, job: Conversion, fmt: str, precision: str) -> Built:
        if self.cached(job):
            return Built(job.path, 0.0, True)
        start = time.perf_counter()
        _convert(job, fmt, precision, self.seed)
        return Built(job.path, time.perf_counter() - start, False)

    def prefetch(
        self,
        jobs: Sequence[Conversion],
        fmt: str,
        precision: str,
        workers: int,
        progress=None,
        say: Callable[[str], None] | None = None,
    ) -> int:
        """Convert the TFLite files of ``jobs`` not cached yet, several models per converter
        call (``convert.to_tflite_many``: a third of the time per model) and ``workers``
        calls at a time in fresh (spawned) processes, so that what measures them later finds
        them cached.  Returns how many were converted.  ONNX files (~0.1 s each) are left
        to be converted where they are first used; so is a lone file."""
        todo = list({j.path: j for j in jobs if not self.cached(j)}.values())
        if fmt != "tflite" or len(todo) < 2:
            return 0
        away = [j for j in todo if _portable(j)]  # a worker can make these from their names
        workers = min(workers, len(away) // MIN_PER_WORKER)
        away = away if workers >= 2 else []
        here = [j for j in todo if not (away and _portable(j))]  # the rest
        label = f"converting {len(todo)} models" + (f" ({workers} processes)" if away else "")
        if say is not None:
            say(f"{label} before timing them (--jobs sets how many processes)")
        with progress_bar(label, len(todo), progress) as bar:
            if away:
                self._convert_away(_batches(away, workers), fmt, precision, workers, bar)
            for batch in _batches(here, 1):
                _convert_batch(batch, fmt, precision, self.seed)
                bar.advance(len(batch))
        return len(todo)

    def _convert_away(self, batches: list, fmt: str, precision: str, workers: int, bar) -> None:
        """Convert ``batches`` in ``workers`` spawned processes (no forked converter or
        OpenMP state)."""
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {
                pool.submit(_convert_batch, b, fmt, precision, self.seed): b for b in batches
            }
            try:
                for f in concurrent.futures.as_completed(futures):
                    f.result()
                    bar.advance(len(futures[f]))
            finally:
                pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class Conversion:
    """One model file to make: where it goes, a picklable maker of its module (for a
    worker process), the NCHW input shape and what it is (the note beside the file)."""

    path: Path
    make: Callable[[], nn.Module]
    shape: tuple
    what: dict


MIN_PER_WORKER = 3  # files per worker below which starting it (~2 conversions' time) does not pay
# models per converter call: 8 blocks in ~5 s (one block alone ~1.5 s: the converter's fixed
# cost per call); networks (~8 s each) gain little, and come first, in pairs, so that no
# process is left converting a long one at the end
BATCH = {"network": 2, "block": 8}


def _batches(jobs: list[Conversion], workers: int) -> list[list[Conversion]]:
    """``jobs`` in groups for one converter call each: networks first, blocks with blocks,
    at most ``BATCH`` of a kind, and with ``workers`` ≥ 2 processes small enough that
    each process gets two groups or more to share."""
    out = []
    for kind in sorted({j.what["kind"] for j in jobs}, key=lambda k: k != "network"):
        same = [j for j in jobs if j.what["kind"] == kind]
        size = BATCH.get(kind, 1)
        if workers >= 2:
            size = max(1, min(size, -(-len(same) // (2 * workers))))
        out += [same[i : i + size] for i in range(0, len(same), size)]
    return out


def _convert_batch(jobs: list[Conversion], fmt: str, precision: str, seed: int) -> None:
    """Make the files of ``jobs`` (atomically) and their readable notes: int8/fp32 TFLite
    in one converter call, else (or should that call fail) one by one, so that a model the
    converter refuses is named in the one-line error."""
    if fmt == "tflite" and len(jobs) > 1:
        try:
            with _one_thread(), native_stderr_quiet():
                calibs = [calibration_inputs(j.shape, seed=seed) for j in jobs]
                convert.to_tflite_many(
                    [j.make() for j in jobs],
                    [c[0] for c in calibs],
                    [j.path for j in jobs],
                    int8=precision == "int8",
                    calibs=calibs,
                )
            for j in jobs:
                _note(j, fmt, precision)
            return
        except HwnasError:
            pass  # one by one, below: the error then names its model
    for j in jobs:
        try:
            _convert(j, fmt, precision, seed)
        except HwnasError as e:
            raise type(e)(
                f"{_label(j.what)}: {e} (the files converted so far are cached; re-run the "
                f"same command to continue)"
            ) from e


def _convert(job: Conversion, fmt: str, precision: str, seed: int) -> None:
    """Make ``job``'s file (atomically) and its readable note (the name is only a hash)."""
    with _one_thread(), native_stderr_quiet():
        export_model(job.make(), job.shape, fmt, precision, job.path, seed=seed)
    _note(job, fmt, precision)


@contextlib.contextmanager
def _one_thread():
    """The converter on one thread (its work is single-threaded Python; the calibration's
    forward passes gain nothing from more), the caller's thread count again after: a
    conversion in line must not leave a search or a training on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _note(job: Conversion, fmt: str, precision: str) -> None:
    atomic_write_json(
        job.path.with_suffix(job.path.suffix + ".json"),
        {"what": job.what, "format": fmt, "precision": precision},
    )


def _catalog_network(name: str, params: dict, choices: list, seed: int) -> nn.Module:
    return network_module(get_space(name, **params), choices, seed)


def _in_catalog(space: SearchSpace) -> bool:
    """Whether ``get_space(space.name, **space.params)`` rebuilds ``space`` (then a worker
    process can make its networks from the name)."""
    try:
        return get_space(space.name, **space.params).all_keys() == space.all_keys()
    except (KeyError, TypeError, ValueError):
        return False


def _label(what: dict) -> str:
    if what["kind"] == "block":
        return "block " + "/".join(map(str, what["key"]))
    return f"network {what['space']} {what['choices']}"


def _portable(job: Conversion) -> bool:
    return not (isinstance(job.make, functools.partial) and job.make.func is network_module)


def random_input(shape: Sequence[int], dtype, seed: int = 0) -> np.ndarray:
    """A seeded input array for timing (int8 uniform over its range, floats N(0,1))."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.int8:
        return rng.integers(-128, 128, size=tuple(shape), dtype=np.int8)
    return rng.standard_normal(tuple(shape)).astype(dtype)


__all__ = [
    "ModelCache",
    "Built",
    "Conversion",
    "FORMATS",
    "PRECISIONS",
    "RECIPE_VERSION",
    "block_module",
    "network_module",
    "trained_like",
    "calibration_inputs",
    "content_key",
    "default_cache_dir",
    "export_model",
    "input_shape",
    "is_analytic",
    "random_input",
    "stackable",
]
