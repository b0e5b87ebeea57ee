"""The clients and the timeline `servetrace generate` is asked for (GenerateOptions: settings.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servetrace.errors import ServetraceError
from servetrace.settings import GenerateOptions


def select_clients(bundle: dict, spec: str | None) -> list[int]:
    """Indices of the bundle's clients to generate: all, the N largest by share, or named ids."""
    clients = bundle["clients"]
    if not spec:
        return list(range(len(clients)))
    if spec.startswith("top:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise ServetraceError(f"--clients {spec!r}: expected top:N with an integer N") from None
        if n < 1:
            raise ServetraceError(f"--clients {spec!r}: N must be >= 1")
        order = sorted(range(len(clients)), key=lambda i: -clients[i]["share"])
        return sorted(order[:n])
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    index = {c["id"]: i for i, c in enumerate(clients)}
    unknown = [w for w in wanted if w not in index]
    if unknown:
        raise ServetraceError(f"--clients: no client {unknown[0]!r} in the bundle")
    return sorted({index[w] for w in wanted})


@dataclass(frozen=True)
class Timeline:
    """The generated span cut into segments, each inside one bundle window (the bundle repeats
    itself when the span runs past its end) and one --rate-fn window."""

    begin_s: np.ndarray
    end_s: np.ndarray
    window: np.ndarray  # bundle window index of each segment
    factor: np.ndarray  # rate multiplier of each segment


def span_of(bundle: dict, options: GenerateOptions) -> tuple[float, float]:
    """(start, end) seconds to generate: the options', else the source's covered span, else the grid's."""
    grid = bundle["aggregate"]["window_start_s"]
    g0, span = float(grid[0]), float(bundle["span_s"]) or float(bundle["window_s"]) * len(grid)
    covered = bundle.get("covered")
    if options.start_s is not None:
        start = float(options.start_s)
    else:
        start = float(covered["start_s"]) if covered else g0
    if options.duration_s is not None:
        end = start + float(options.duration_s)
    elif covered and options.start_s is None:
        end = max(float(covered["end_s"]), start + 1e-9)
    else:
        end = start + span
    return start, end


def timeline(bundle: dict, options: GenerateOptions, client_rates: np.ndarray) -> Timeline:
    """`client_rates`: (clients x windows) rates of the selected clients."""
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    g0, span = grid[0], float(bundle["span_s"]) or float(bundle["window_s"]) * len(grid)
    start, end = span_of(bundle, options)
    reps = np.arange(np.floor((start - g0) / span), np.ceil((end - g0) / span) + 1)
    edges = (grid[None, :] + reps[:, None] * span).ravel()
    if options.rate_fn:
        edges = np.r_[edges, [s for s, _ in options.rate_fn]]
    edges = np.unique(np.r_[start, end, edges[(edges > start) & (edges < end)]])
    begin, stop = edges[:-1], edges[1:]
    mid = (begin + stop) / 2
    window = np.searchsorted(grid, g0 + np.mod(mid - g0, span), side="right") - 1
    aggregate = client_rates.sum(axis=0)[window]
    factor = np.ones(len(begin))
    if options.rate_scale is not None:
        factor[:] = options.rate_scale
    elif options.rate_rps is not None:
        mean = float((aggregate * (stop - begin)).sum() / (end - start))
        if mean <= 0:
            raise ServetraceError("--rate: the selected clients have no requests in this span")
        factor[:] = options.rate_rps / mean
    elif options.rate_fn:
        fn_start = np.array([s for s, _ in options.rate_fn])
        fn_rate = np.array([r for _, r in options.rate_fn])
        target = fn_rate[np.clip(np.searchsorted(fn_start, mid, side="right") - 1, 0, None)]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(aggregate > 0, target / aggregate, 0.0)
    return Timeline(begin, stop, window, factor)
