"""The edges of a standalone block model, measured so the table predicts whole networks.

A block timed alone is a whole model: one invoke, a quantize of its input and a dequantize
of its output, the layout changes around them.  A network of 20 blocks pays those once, not
20 times.  For layers whose output has the input's shape, two stacked copies in one model
(``blockmodels.stackable``) separate the two parts:

    t(1 copy) = edges + c,    t(2 copies) = edges + 2c    ⇒    edges = 2·t(1) − t(2)

Measured on keys spread over every tensor size of the space (the two models alternated, so
drift hits both alike), the edge cost is fitted as ``a + b · elements`` (input plus output
tensor elements; least squares).  That gives the table's default calibration: every measured
layer loses ``a + b · elements`` (``per_layer_ms``, ``per_element_ms``) and the network pays
its own edges once (``offset_ms`` = ``a + b`` · its input and output elements).  ``hwnas
tables validate`` can refine it on whole networks.
"""

from __future__ import annotations

import numpy as np

from hwnas.latency import key_elements
from hwnas.space import SearchSpace

from .backends import Backend
from .blockmodels import ModelCache, stackable

EDGE_KEYS = 16  # stackable keys measured twice, spread over the space's tensor sizes
EDGE_ROUNDS = 9  # alternations of the 1-copy and 2-copy model per key


def edge_keys(space: SearchSpace, n: int = EDGE_KEYS) -> list:
    """Up to ``n`` stackable layers, evenly spread over their tensor sizes."""
    infos = sorted(
        {i.key: i for i in space.all_layer_infos() if stackable(i)}.values(),
        key=lambda i: (key_elements(i.key), i.key),
    )
    if len(infos) <= n:
        return infos
    return [infos[round(j * (len(infos) - 1) / (n - 1))] for j in range(n)]


def measure_edges(
    space: SearchSpace,
    backend: Backend,
    cache: ModelCache,
    fmt: str,
    precision: str,
    *,
    warmup: int,
    runs: int,
    n: int = EDGE_KEYS,
    rounds: int = EDGE_ROUNDS,
    progress=None,
) -> dict | None:
    """Per sampled key: median over ``rounds`` of (2·t1 − t2) in µs; then the least-squares
    fit ``edges ≈ a + b · elements``.  None when the space has fewer than 3 stackable keys."""
    infos = edge_keys(space, n)
    if len(infos) < 3:
        return None
    points = []
    for info in infos:
        one = cache.block(info, fmt, precision).path
        two = cache.block(info, fmt, precision, repeat=2).path
        t1, t2 = [], []
        for _ in range(rounds):
            t1.append(
                backend.measure(one, warmup=warmup, runs=runs, repeats=1).stats()["median_us"]
            )
            t2.append(
                backend.measure(two, warmup=warmup, runs=runs, repeats=1).stats()["median_us"]
            )
        points.append(
            {
                "key": list(info.key),
                "elements": key_elements(info.key),
                "one_us": float(np.median(t1)),
                "two_us": float(np.median(t2)),
                "edges_us": float(np.median(2 * np.array(t1) - np.array(t2))),
            }
        )
        if progress is not None:
            progress()
    x = np.array([p["elements"] for p in points], float)
    y = np.array([p["edges_us"] for p in points])
    (b, a), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    if b < 0:  # noise: no size dependence to speak of
        a, b = float(np.median(y)), 0.0
    return {
        "a_us": float(a),
        "b_us_per_element": float(b),
        "points": points,
        "method": f"2·t(1 copy) − t(2 copies), median of {rounds} alternations, "
        f"{len(points)} keys; fit a + b·elements",
    }


def edge_calibration(edges: dict, space: SearchSpace) -> dict:
    """The table calibration that removes measured edges from every layer and adds the
    network's own once."""
    a, b = edges["a_us"] / 1000.0, edges["b_us_per_element"] / 1000.0
    net = space.in_channels * space.resolution**2 + space.num_classes
    return {
        "scale": 1.0,
        "per_type": {},
        "per_layer_ms": -a,
        "per_element_ms": -b,
        "offset_ms": a + b * net,
        "model": "edges (measured by hwnas profile)",
    }


__all__ = ["EDGE_KEYS", "edge_keys", "measure_edges", "edge_calibration"]
