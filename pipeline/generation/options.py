"""What `servetrace generate` is asked for, checked once; the timeline it implies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servetrace.errors import ServetraceError


@dataclass(frozen=True)
class GenerateOptions:
    start_s: float | None = None  # default: the source's first arrival (`covered`), else the first window start
    duration_s: float | None = None  # default: to the source's last arrival, else the bundle's span
    rate_scale: float | None = None  # multiply every client's rate
    rate_rps: float | None = None  # or: scale so the mean aggregate rate is this
    rate_fn: tuple[tuple[float, float], ...] | None = None  # or: (window start s, aggregate rps), ascending
    time_scale: float | None = None  # then: seconds after the start x this (2 = twice as slow)
    clients: str | None = None  # "top:N" or comma-separated client ids
    seed: int = 0
    sessions: bool = True  # run the bundle's session model (v2) when it has one
    block_size: int | None = None  # hash_ids block size (default: the source's)

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.rate_scale, self.rate_rps, self.rate_fn)]
        if sum(given) > 1:
            raise ServetraceError("give at most one of --rate-scale, --rate, --rate-fn")
        if self.block_size is not None and not self.block_size >= 1:
            raise ServetraceError(f"--block-size {self.block_size}: must be >= 1 token")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ServetraceError(f"--duration {self.duration_s}: must be > 0")
        for name, v in (("--rate-scale", self.rate_scale), ("--rate", self.rate_rps)):
            if v is not None and not (v >= 0 and np.isfinite(v)):
                raise ServetraceError(f"{name} {v}: must be a finite number >= 0")
        if self.time_scale is not None and not (self.time_scale > 0 and np.isfinite(self.time_scale)):
            raise ServetraceError(f"--time-scale {self.time_scale}: must be a finite number > 0")
        if self.rate_fn is not None:
            starts = np.array([s for s, _ in self.rate_fn], dtype=float)
            rates = np.array([r for _, r in self.rate_fn], dtype=float)
            if len(starts) == 0 or (np.diff(starts) <= 0).any() or (rates < 0).any() or not np.isfinite(rates).all():
                raise ServetraceError("--rate-fn: needs ascending window starts and finite rates >= 0")

    def to_dict(self) -> dict:
        return {"start_s": self.start_s, "duration_s": self.duration_s, "rate_scale": self.rate_scale,
                "time_scale": self.time_scale, "rate_rps": self.rate_rps,
                "rate_fn_windows": len(self.rate_fn) if self.rate_fn else None,
                "clients": self.clients, "seed": self.seed, "sessions": self.sessions, "block_size": self.block_size}


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
