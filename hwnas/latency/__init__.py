"""LatencyTable: per-block latencies of one space on one device/backend — load, save,
lookup, predict, differentiable expectation, exact bounds and the budget repair.

Files (never pickle): ``NAME.csv`` with one row per key (columns ``TABLE_COLUMNS``,
latencies in microseconds as measured) and ``NAME.json`` beside it::

    {"schema": 1,
     "space": {"name": "fbnet-small", "version": 1, "params": {...}},
     "provenance": {"device": "host" | phone model, "backend": ..., ...},
     "calibration": {"scale": 1.0, "offset_ms": 0.0, "per_type": {"ir": 1.0, ...}}}

The API speaks **milliseconds**: ``lookup``, ``predict``, ``expected``, ``bounds``.
Prediction is calibrated: ``predict = Σ_layers (scale · per_type[prefix] · median +
per_layer + per_element · elements) + offset`` where the last two terms are added for every
measured (non-identity) layer — the cost of a standalone block model's edges (the invoke, the
quantize of its input and dequantize of its output, layout changes: ``elements`` is the
layer's input plus output tensor size) that a whole network pays once.  ``hwnas profile``
measures the edge terms (``edge_calibration``), ``hwnas tables validate`` fits on whole
networks.  Every term is per layer, so bounds and the budget DP stay exact under calibration.
"""

from .files import (
    KEY_COLUMNS,
    IDENTITY_CALIBRATION,
    SCHEMA_VERSION,
    STAT_COLUMNS,
    TABLE_COLUMNS,
    TableError,
    check_sidecar_ours,
    rows_frame,
    sidecar_path,
    space_meta,
    write_table_atomic,
)
from .table import FIDELITY_GOAL, LatencyTable, key_elements, key_type, synthetic_table

__all__ = [
    "LatencyTable",
    "TableError",
    "check_sidecar_ours",
    "TABLE_COLUMNS",
    "KEY_COLUMNS",
    "STAT_COLUMNS",
    "SCHEMA_VERSION",
    "IDENTITY_CALIBRATION",
    "FIDELITY_GOAL",
    "write_table_atomic",
    "rows_frame",
    "sidecar_path",
    "space_meta",
    "synthetic_table",
    "key_elements",
    "key_type",
]
