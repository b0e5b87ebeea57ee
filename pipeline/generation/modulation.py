"""The bundle's rate modulation (bundle/modulation.py) as a time change, block by block.

M(t) is held constant over steps of `bin_s` seconds on the absolute grid, its log-Gaussian
Ornstein-Uhlenbeck components drawn exactly (AR(1) with coefficient exp(-step / theta), run as
an exponentially weighted mean) and carried from one block to the next. A block's segments are mapped to
modulated time U(t) = int M, where each client's process runs at its own rates; its arrivals
are mapped back through the inverse of U (piecewise linear, one np.interp)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import polars as pl

from servetrace.generation.arrivals import ArrivalProcess, Arrivals, WindowParams
from servetrace.generation.options import Timeline

MODULATION_STREAM = 3  # seed purpose, beside arrivals 0, lengths 1, failures 2
SHARED_BYTES = 256 << 20  # what `shared_draws` may hold

_shared: ContextVar[dict | None] = ContextVar("shared_draws", default=None)  # key -> knots and state after


@contextmanager
def shared_draws() -> Iterator[None]:
    """Inside: a modulation's knots drawn once are handed to every later generation drawing the
    same ones (same spec, seed, stream, block, span and state before): the arrival model's `cox` and
    `cox-renewal` candidates run in the same modulated time for a seed. At most SHARED_BYTES kept."""
    token = _shared.set({"bytes": 0})
    try:
        yield
    finally:
        _shared.reset(token)


def ar1(a: float, s: float, eps: np.ndarray, before: float) -> np.ndarray:
    """y[n] = a y[n-1] + s eps[n] from y[-1] = `before` (0 <= a < 1): scipy.signal.lfilter([s], [1, -a])
    with its state, as Polars' exponentially weighted mean, y[n] = a y[n-1] + (1 - a) u[n] with
    u = s eps / (1 - a) (scipy.signal costs ~1 s of import on every characterize; a test holds the two equal)."""
    if eps.size == 0:
        return np.empty(0)
    u = np.empty(eps.size + 1)
    u[0] = before
    np.multiply(eps, s / (1.0 - a), out=u[1:])
    return pl.Series(u).ewm_mean(alpha=1.0 - a, adjust=False).to_numpy()[1:]


class Modulation:
    """M over whole rate windows (absolute window `origin` + j `window_s`), each window's M scaled to
    mean 1: the modulation moves requests inside a window, the window's rate keeps its count
    (the fit reads only the scatter inside windows, so it adds nothing above the window scale)."""

    def __init__(self, spec: dict, seed: int, origin: float, window_s: float, stream: tuple[int, ...] = ()):
        keep = np.asarray(spec["sigma2"], dtype=float) > 0
        self.theta = np.asarray(spec["theta_s"], dtype=float)[keep]
        self.sigma2 = np.asarray(spec["sigma2"], dtype=float)[keep]
        self.per = max(1, int(round(window_s / float(spec["bin_s"]))))
        self.step = window_s / self.per
        self.origin, self.window_s, self.seed, self.stream = origin, window_s, seed, stream
        self.last_j: int | None = None  # the last window made, its M, and the components' state after it
        self.last_m = np.ones(self.per)
        self.last_x = np.zeros(len(self.sigma2))

    def _windows(self, j0: int, j1: int, block: int) -> np.ndarray:
        """M over windows j0 .. j1 - 1, (windows x steps); j0 is the last window made or after it."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, MODULATION_STREAM, *self.stream, block]))
        reuse = self.last_j is not None and j0 == self.last_j
        first = j0 + 1 if reuse else j0
        n = max(j1 - first, 0) * self.per
        a = np.exp(-self.step / self.theta)
        if self.last_j is None or first > self.last_j + 1:  # a fresh start: the stationary law
            x_prev = rng.standard_normal(len(self.theta)) * np.sqrt(self.sigma2)
        else:
            x_prev = self.last_x
        eps = rng.standard_normal((n, len(self.theta)))
        total, last_x = np.zeros(n), np.zeros(len(self.theta))
        for j in range(len(self.theta)):  # one filter per component, not per step; summed in order
            s = np.sqrt(self.sigma2[j] * (1 - a[j] ** 2))
            x = ar1(a[j], s, eps[:, j], x_prev[j])
            total += x
            last_x[j] = x[-1] if n else 0.0
        del eps
        m = np.exp(total, out=total).reshape(-1, self.per)
        m /= m.mean(axis=1, keepdims=True)
        if reuse:
            m = np.concatenate([self.last_m[None, :], m])
        if n:
            self.last_j, self.last_m, self.last_x = j1 - 1, m[-1], last_x
        return m

    def knots(self, begin: float, end: float, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(t, U(t) - U(begin)) at `begin`, each step edge inside, and `end` (read-only arrays)."""
        shared = _shared.get()
        if shared is None:
            return self._knots(begin, end, block)
        key = (self.theta.tobytes(), self.sigma2.tobytes(), self.per, self.step, self.origin, self.window_s,
               self.seed, self.stream, block, begin, end, self.last_j, self.last_x.tobytes(), self.last_m.tobytes())
        if key in shared:
            t, u, self.last_j, self.last_m, self.last_x = shared[key]
            return t, u
        t, u = self._knots(begin, end, block)
        size = t.nbytes + u.nbytes
        if shared["bytes"] + size <= SHARED_BYTES:
            t.flags.writeable = u.flags.writeable = False
            shared[key] = (t, u, self.last_j, self.last_m, self.last_x)
            shared["bytes"] += size
        return t, u

    def _knots(self, begin: float, end: float, block: int) -> tuple[np.ndarray, np.ndarray]:
        j0 = int(np.floor((begin - self.origin) / self.window_s))
        j1 = max(int(np.ceil((end - self.origin) / self.window_s)), j0 + 1)
        m = self._windows(j0, j1, block).ravel()
        edges = self.origin + j0 * self.window_s + np.arange(len(m) + 1) * self.step
        lo = max(int(np.searchsorted(edges, begin, side="right")) - 1, 0)
        hi = max(int(np.searchsorted(edges, end, side="left")), lo + 1)
        t = np.clip(edges[lo:hi + 1], begin, end)
        u = np.empty(len(t))
        u[0] = 0.0
        np.cumsum(m[lo:hi] * np.diff(t), out=u[1:])
        return t, u


def _varies(spec: dict | None) -> bool:
    return bool(spec) and any(v > 0 for v in spec["sigma2"])


def modulation_spec(bundle: dict) -> dict | None:
    """The modulation to generate with: the bundle's, when its chosen arrival model has one (the
    pooled one or a client's own with some variance)."""
    model = bundle.get("arrival_model") or {}
    if model.get("chosen") in ("cox", "cox-renewal") and model.get("modulation"):
        spec = model["modulation"]
        own = (spec.get("clients") or {}).values()
        return spec if _varies(spec) or any(_varies(c) for c in own) else None
    return None


def modulation_groups(bundle: dict, chosen: list[int]) -> list[tuple[np.ndarray, dict | None, tuple[int, ...]]]:
    """(rows of `chosen`, the modulation they share or None, its seed stream): each client with a
    modulation of its own (`modulation.clients`, its id) alone, the others together under the
    pooled one. Without per-client modulations: one group of every row (the shared modulation)."""
    spec = modulation_spec(bundle)
    rows = np.arange(len(chosen))
    if spec is None:
        return [(rows, None, ())]
    own = spec.get("clients") or {}
    mine = np.array([bundle["clients"][ci]["id"] in own for ci in chosen], dtype=bool)
    groups = [(rows[~mine], spec if _varies(spec) else None, ())] if (~mine).any() else []
    for r in rows[mine]:
        client = own[bundle["clients"][chosen[r]]["id"]]
        groups.append((np.array([r]), {**client, "theta_s": spec["theta_s"], "bin_s": spec["bin_s"]}
                       if _varies(client) else None, (1 + chosen[r],)))
    return groups


def poisson_base(bundle: dict) -> bool:
    """The Cox model draws Poisson arrivals in modulated time (the windows' gap shapes set aside:
    their CV came from the same bursts the modulation now makes)."""
    return (bundle.get("arrival_model") or {}).get("chosen") == "cox" and modulation_spec(bundle) is not None


def starts_modulated(bundle: dict) -> bool:
    """A session trace's model was fitted on its session starts, so they run in it (older
    bundles' models were fitted on every request: their starts stay renewal)."""
    return (bundle.get("arrival_model") or {}).get("fitted_on") == "session starts"


class ModulatedArrivals:
    """The chosen clients' arrivals block by block, each group of clients (`modulation_groups`;
    one group of all under `renewal`) its process run in its own modulated time and mapped back."""

    def __init__(self, bundle: dict, chosen: list[int], p: WindowParams, seed: int, model: str):
        groups = modulation_groups(bundle, chosen) if model != "renewal" else [(np.arange(len(chosen)), None, ())]
        origin, window_s = float(bundle["aggregate"]["window_start_s"][0]), float(bundle["window_s"])
        self.groups = [(rows, ArrivalProcess(WindowParams(p.rate[rows], p.family[rows], p.shape[rows]),
                                             [chosen[r] for r in rows], seed),
                        Modulation(spec, seed, origin, window_s, stream) if spec else None)
                       for rows, spec, stream in groups]

    def block(self, part: Timeline, block: int) -> Arrivals:
        """Every group's arrivals in a block's segments, the clients as rows of the chosen ones."""
        parts = [_group_block(rows, process, mod, part, block) for rows, process, mod in self.groups]
        if len(parts) == 1:
            return parts[0]
        return Arrivals(np.concatenate([a.client for a in parts]), np.concatenate([a.arrival_s for a in parts]),
                        np.concatenate([a.window for a in parts]), sum(a.pool_exhausted for a in parts))


def _group_block(rows: np.ndarray, process: ArrivalProcess, mod: Modulation | None, part: Timeline, block: int) -> Arrivals:
    if mod is None:
        arr = process.block(part, block)
    else:
        knot_t, knot_u = mod.knots(part.begin_s[0], part.end_s[-1], block)
        warped = Timeline(np.interp(part.begin_s, knot_t, knot_u), np.interp(part.end_s, knot_t, knot_u),
                          part.window, part.factor)
        arr = process.block(warped, block)
        arr = Arrivals(arr.client, np.interp(arr.arrival_s, knot_u, knot_t), arr.window, arr.pool_exhausted)
    return Arrivals(rows[arr.client], arr.arrival_s, arr.window, arr.pool_exhausted)
