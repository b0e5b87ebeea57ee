"""Token lengths: per client a Gaussian copula on the fitted correlation of normal scores, each
margin the client's PMF of the request's dataset window (inverse CDF), all clients at once.

Sampling is done in normal-score space: each PMF's CDF is turned into z thresholds once
(ndtri), so a request's value is one searchsorted of its correlated normal z (a guide table of
z cells answers most without the search); every PMF of a field sits in one array, lifted by a
constant per PMF, so one call serves all clients."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from servetrace.generation.arrivals import client_seed

Z_MAX = 12.0  # |z| beyond this has probability < 1e-32: the clip costs nothing
LIFT = 4 * Z_MAX
GUIDE_Z, GUIDE_CELLS = 8.0, 1 << 20  # the guide table's z range and its cells over all PMFs (5 MB a field)
GUIDE_MAX = 1 << 16  # cells of one PMF at most
LENGTH_STREAM = 1  # client_seed purpose


def copula_corr(joint: dict, fields: list[str]) -> np.ndarray:
    """The Gaussian copula's correlation for `fields`: from the fitted rank correlation where the
    bundle has it (rho = 2 sin(pi rho_S / 6), which gives back that Spearman), else `corr`.
    A bundle fitted now has `corr` equal to that conversion; bundles fitted before held the
    normal-score correlation, which differs when the dependence is not Gaussian (Azure: 0.014
    against a Spearman of 0.073), so the rank correlation, the one fidelity is judged on, wins."""
    order = [joint["fields"].index(f) for f in fields]
    corr = np.asarray(joint["corr"], dtype=float)[np.ix_(order, order)].copy()
    spearman = joint.get("spearman") or {}
    for i, a in enumerate(fields):
        for j in range(i + 1, len(fields)):
            b = fields[j]
            rho_s = spearman.get(f"{a}:{b}", spearman.get(f"{b}:{a}"))
            if rho_s is not None and np.isfinite(rho_s):
                corr[i, j] = corr[j, i] = 2 * np.sin(np.pi * float(rho_s) / 6)
    return corr


def copula_factor(joint: dict, fields: list[str]) -> np.ndarray:
    """A (len(fields) x k) matrix A such that A @ e, e standard normal, has the client's copula
    correlation on its joint fields; fields outside the joint are independent."""
    d = len(fields)
    jf = [f for f in joint.get("fields", []) if f in fields]
    kind = joint.get("copula", "independent")
    if kind == "independent" or len(jf) < 2:
        return np.eye(d)
    pos = [fields.index(f) for f in jf]
    a = np.eye(d)
    if kind == "comonotonic":
        a[np.ix_(pos, pos)] = 0.0
        a[pos, pos[0]] = 1.0
        return a
    corr = copula_corr(joint, jf)
    vals, vecs = np.linalg.eigh(corr)  # PSD square root: also fine for a singular matrix
    root = vecs * np.sqrt(np.clip(vals, 0, None))
    root /= np.sqrt((root**2).sum(axis=1, keepdims=True))  # unit variances after clipping
    a[np.ix_(pos, pos)] = root
    return a


def bin_ranges(values: np.ndarray, binning: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """The integer range [lo, hi] a PMF value is spread over: itself below `exact_below`, else the
    widest range centred on it inside its log-spaced bin (servetrace.stats.pmf.bin_index:
    [t (1+s)^k, t (1+s)^(k+1))), so the bin's mean is kept."""
    if not binning or binning.get("log_step", 0) <= 0:
        return values, values
    t, step = float(binning["exact_below"]), float(binning["log_step"])
    k = np.floor(np.log(np.maximum(values, t) / t) / np.log1p(step))
    lo = np.ceil(t * (1 + step) ** k)
    hi = np.ceil(t * (1 + step) ** (k + 1)) - 1
    # symmetric about the value (the bin's mean count): a bin whose mass sits at one edge stays there
    half = np.maximum(np.minimum(values - lo, hi - values), 0)
    binned = values >= t
    return np.where(binned, values - half, values), np.where(binned, values + half, values)


class FieldTable:
    """Every PMF of one field, for all selected clients and dataset windows, in one array.

    A binned PMF value (a log-spaced bin of counts, see the bundle's `pmf_binning`) is spread
    back over its bin: the request's position inside the value's CDF step picks the count, so
    the draw stays monotone in the copula's normal score and ranks are kept."""

    def __init__(self, binning: dict | None = None) -> None:
        self.binning = binning
        self.values: list[np.ndarray] = []
        self.z: list[np.ndarray] = []
        self.cdf: list[np.ndarray] = []

    def add(self, pmf: dict) -> int:
        probs = np.asarray(pmf["probs"], dtype=float)
        cdf = np.cumsum(probs)
        cdf /= cdf[-1] if cdf[-1] > 0 else 1.0
        pid = len(self.values)
        self.values.append(np.asarray(pmf["values"], dtype=float))
        self.cdf.append(cdf)
        self.z.append(np.clip(ndtri(cdf), -Z_MAX, Z_MAX) + LIFT * pid)
        return pid

    def freeze(self) -> None:
        self.sizes = np.array([len(v) for v in self.values], dtype=np.int64)
        self.starts = np.r_[0, np.cumsum(self.sizes)[:-1]].astype(np.int64)
        cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0))
        self.all_values, self.all_z, all_cdf = cat(self.values), cat(self.z), cat(self.cdf)
        self.lo, hi = bin_ranges(self.all_values, self.binning)
        cdf_lo = np.r_[0.0, all_cdf[:-1]]
        cdf_lo[self.starts] = 0.0
        step = all_cdf - cdf_lo
        # per value, what a draw needs (one gather each): its CDF step and the counts it spreads over
        self.cdf_lo, self.step, self.width = cdf_lo, np.where(step > 0, step, 1.0), hi - self.lo + 1
        self.wide = hi > self.lo
        self.last = self.starts + self.sizes - 1
        self.spread = bool(self.wide.any())
        # a guide table: per PMF, equal z cells over [-GUIDE_Z, GUIDE_Z); where no threshold falls in
        # a cell (widened by 1e-9 for the rounding of z + lift), that cell's one answer stands for the
        # search; the other cells (< 1 % at 2^16 cells a PMF) are searched as before, and so are the
        # two edge cells, which also take every |z| beyond the range
        self.cells = k = int(min(GUIDE_MAX, max(64, GUIDE_CELLS // max(len(self.sizes), 1))))
        edges = -GUIDE_Z + 2 * GUIDE_Z * np.arange(k + 1) / k
        lift = LIFT * np.arange(len(self.sizes))[:, None]
        guide = np.searchsorted(self.all_z, (lift + edges[None, :-1] - 1e-9).ravel())
        sure = guide == np.searchsorted(self.all_z, (lift + edges[None, 1:] + 1e-9).ravel())
        sure.reshape(-1, k)[:, [0, k - 1]] = False
        self.guide = np.minimum(guide, np.repeat(self.last, k)).astype(np.int32)  # a cell's answer is its PMF's
        self.sure = sure

    def sample(self, pmf_id: np.ndarray, z: np.ndarray) -> np.ndarray:
        cell = ((z + GUIDE_Z) * (self.cells / (2 * GUIDE_Z))).astype(np.int32)  # int32: inside (-2^31, 2^31)
        np.clip(cell, 0, self.cells - 1, out=cell)
        if len(self.sizes) > 1:
            cell += (pmf_id * self.cells).astype(np.int32)  # GUIDE_CELLS cells over all PMFs
        idx = self.guide[cell]
        look = np.flatnonzero(~self.sure[cell])  # a threshold in the cell, or an edge cell (|z| beyond)
        if len(look):
            zc = np.clip(z[look], -Z_MAX + 1e-9, Z_MAX - 1e-9)
            p = pmf_id[look]
            idx[look] = np.minimum(np.searchsorted(self.all_z, zc + LIFT * p, side="left"), self.last[p])
        out = self.all_values[idx]
        if self.spread:
            wide = self.wide[idx]
            sel = np.flatnonzero(wide)
            if len(sel) > 0.8 * len(idx):  # nearly every draw spreads: whole arrays, no gathers of a subset
                w = np.clip((ndtr(z) - self.cdf_lo[idx]) / self.step[idx], 0.0, 1.0 - 1e-12)
                np.copyto(out, self.lo[idx] + np.floor(w * self.width[idx]), where=wide)
            else:
                i = idx[sel]
                w = np.clip((ndtr(z[sel]) - self.cdf_lo[i]) / self.step[i], 0.0, 1.0 - 1e-12)
                out[sel] = self.lo[i] + np.floor(w * self.width[i])
        return out


def dataset_window(client: dict, grid: np.ndarray) -> np.ndarray:
    """For every bundle window, the client's latest dataset window at or before it (else its first)."""
    starts = np.asarray(client["lengths"]["window_start_s"], dtype=float)
    return np.clip(np.searchsorted(starts, grid, side="right") - 1, 0, None)


class LengthSampler:
    """Length fields of requests, block by block: the PMFs the timeline can reach are indexed once
    (a short span touches few dataset windows), each block draws its own normals per client."""

    def __init__(self, bundle: dict, chosen: list[int], reachable: np.ndarray):
        """`reachable`: (clients x bundle windows) bool, the windows where a client may arrive."""
        grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
        self.chosen = chosen
        self.clients = clients = [bundle["clients"][ci] for ci in chosen]
        self.names = sorted({f for c in clients for f in c["lengths"]["fields"]})
        n_data = max((len(c["lengths"]["window_start_s"]) for c in clients), default=0)
        self.dmap = np.zeros((len(chosen), len(grid)), dtype=np.int64)
        for row, c in enumerate(clients):
            if c["lengths"]["window_start_s"]:
                self.dmap[row] = dataset_window(c, grid)
        self.width = width = max(n_data, 1)
        rows, cols = np.nonzero(reachable)
        used = np.zeros(len(chosen) * width, dtype=bool)
        used[rows * width + self.dmap[rows, cols]] = True
        binning = bundle.get("pmf_binning")
        self.tables = {f: FieldTable(None if f == "reason_ratio" else binning) for f in self.names}
        self.pid = {f: np.full(len(chosen) * width, -1, dtype=np.int64) for f in self.names}
        for key in np.flatnonzero(used).tolist():
            row, d = divmod(key, width)
            for f, pmfs in clients[row]["lengths"]["fields"].items():
                if d < len(pmfs):
                    self.pid[f][key] = self.tables[f].add(pmfs[d])
        for t in self.tables.values():
            t.freeze()
        self.factors = {}
        for row, c in enumerate(clients):
            fields = sorted(c["lengths"]["fields"])
            if fields:
                self.factors[row] = ([self.names.index(f) for f in fields], copula_factor(c["joint"], fields).T)

    def sample(self, client: np.ndarray, window: np.ndarray, seed: int, block: int = 0) -> dict[str, np.ndarray]:
        """Length fields of each request (float, NaN where the client has no such field).
        `client` (row in `chosen`) must be grouped: each client's requests contiguous."""
        flat = client * self.width + self.dmap[client, window]  # (client row, dataset window) of each request
        n = len(client)
        z = np.zeros((len(self.names), n))  # one contiguous row of normal scores per field
        bounds = np.r_[0, np.flatnonzero(np.diff(client)) + 1, n] if n else np.zeros(1, dtype=np.int64)
        for a, b in zip(bounds[:-1], bounds[1:]):  # one block of normals per client
            row = int(client[a])
            if row not in self.factors:
                continue
            cols, factor = self.factors[row]
            e = client_seed(seed, self.chosen[row], LENGTH_STREAM, block).standard_normal((b - a, len(cols)))
            for j, col in enumerate(cols):
                z[col, a:b] = e @ factor[:, j]
        out = {}
        for k, f in enumerate(self.names):
            ids = self.pid[f][flat]
            has = ids >= 0
            vals = self.tables[f].sample(np.where(has, ids, 0), z[k]) if self.tables[f].values else np.zeros(n)
            out[f] = vals if has.all() else np.where(has, vals, np.nan)
        return out


def sample_lengths(bundle: dict, chosen: list[int], client: np.ndarray, window: np.ndarray,
                   seed: int) -> dict[str, np.ndarray]:
    """Length fields of requests given at once (the session layer's path); `client` grouped."""
    reachable = np.zeros((len(chosen), len(bundle["aggregate"]["window_start_s"])), dtype=bool)
    reachable[client, window] = True
    return LengthSampler(bundle, chosen, reachable).sample(client, window, seed)
