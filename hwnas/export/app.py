"""What an Android app needs beside the model file: ``labels.txt`` and ``model.json``."""

from __future__ import annotations

from pathlib import Path

from hwnas.io import atomic_write_json, atomic_write_text

MODEL_JSON_SCHEMA = 1


def model_json(splits, summary: dict) -> dict:
    """The app-facing description of the exported files (see the README's export section)."""
    files = summary["files"]
    io = summary["checks"].get("tflite_int8_io")
    c, h, w = splits.test.batch([0])[0].shape[1:]
    doc = {
        "schema": MODEL_JSON_SCHEMA,
        "files": {
            name: {"format": f["format"], "precision": f["precision"], "bytes": f["bytes"]}
            for name, f in files.items()
        },
        "labels": "labels.txt",
        "input": {
            "shape": [1, int(h), int(w), int(c)],
            "layout": "NHWC",
            "onnx_shape": [1, int(c), int(h), int(w)],
            "onnx_layout": "NCHW",
            "normalization": {
                "mean": list(splits.mean),
                "std": list(splits.std),
                "formula": "x = (pixel / 255 - mean[c]) / std[c]",
            },
            "color": "grayscale replicated to 3 channels"
            if splits.name == "fashion-mnist"
            else "RGB",
            "resize": resize_rule(splits.name, int(h)),
        },
        "output": {
            "shape": [1, len(splits.classes)],
            "meaning": "logits over classes",
            "classes": list(splits.classes),
        },
        "accuracy": summary["accuracy"],
        "macs": summary.get("macs"),
        "params": summary.get("params"),
        "latency": _latency(summary.get("latency", {})),
    }
    for prec in ("int8", "fp32"):
        name = f"model_{prec}.tflite"
        if name in files:
            doc["input"].setdefault("dtype", {})[name] = "int8" if prec == "int8" else "float32"
    if io is not None:
        doc["int8"] = _int8(io)
    return doc


MEASURED_KEYS = (
    "file",
    "backend",
    "device",
    "precision",
    "threads",
    "median_ms",
    "p10_ms",
    "p90_ms",
)


def _latency(lat: dict) -> dict:
    """model.json's latency: predicted, target, the table's setting, each measurement."""
    return {
        "predicted_ms": lat.get("predicted_ms"),
        "target_ms": lat.get("target_ms"),
        "target_holds": lat.get("target_holds"),
        "table": {
            "device": lat.get("table_device"),
            "backend": lat.get("table_backend"),
            "precision": lat.get("table_precision"),
        },
        "measured": [{k: m[k] for k in MEASURED_KEYS} for m in lat.get("measured", [])],
    }


def _int8(io: dict) -> dict:
    """How an app quantizes the int8 TFLite file's input and dequantizes its output."""
    return {
        "file": "model_int8.tflite",
        "input": {
            "dtype": io["input"]["dtype"],
            "scale": io["input"]["scale"],
            "zero_point": io["input"]["zero_point"],
            "formula": "q = clamp(round(x / scale) + zero_point, -128, 127)",
        },
        "output": {
            "dtype": io["output"]["dtype"],
            "scale": io["output"]["scale"],
            "zero_point": io["output"]["zero_point"],
            "formula": "logit = (q - zero_point) * scale",
        },
    }


def resize_rule(dataset: str, size: int) -> str:
    """How training brought images to the input size (hwnas.data): the app must do the same."""
    from hwnas.data.splits import CROP_PADDING

    if dataset == "folder":  # hwnas.data.readers.load_image
        return (
            f"crop the centred square of the shorter side, then bilinear (antialiased) "
            f"resize to {size}x{size}"
        )
    rule = (
        f"bilinear (antialiased) resize to {size}x{size}; a square image at most "
        f"{2 * CROP_PADDING} px smaller (even difference) is zero-padded centrally instead"
    )
    if dataset == "fashion-mnist" and 0 < size - 28 <= 2 * CROP_PADDING and size % 2 == 0:
        pad = (size - 28) // 2
        return f"28x28 images zero-padded by {pad} px on each side to {size}x{size} ({rule})"
    return rule


def write_app_files(folder: Path, splits, summary: dict) -> None:
    folder = Path(folder)
    atomic_write_text(folder / "labels.txt", "".join(f"{c}\n" for c in splits.classes))
    atomic_write_json(folder / "model.json", model_json(splits, summary))


__all__ = ["model_json", "resize_rule", "write_app_files", "MODEL_JSON_SCHEMA"]
