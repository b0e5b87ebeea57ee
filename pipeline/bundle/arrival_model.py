"""Which arrival model a bundle generates with, chosen by evidence on its own source.

Candidates: `renewal` (each client a per-window renewal process, ServeGen's model), `cox` (every
client Poisson in a time modulated at several scales, bundle/modulation.py) and `cox-renewal`
(the windows' renewal processes in the modulated time). Each is generated from the bundle over
the source's span (its first `max_rows` rows for a larger source, the `seeds`) and compared with
the source: the index of dispersion of counts at `scales_s` (whole bins; relative error, averaged
over seeds and over the scales with at least `min_bins` bins; the seed-to-seed difference is kept
beside it as the noise floor) and the Kolmogorov-Smirnov distance of the inter-arrival times. The
lowest sum wins, a modulated candidate only by more than the seed floor over `renewal`; every
candidate's figures stay in `bundle.arrival_model.candidates`. The names in
backquotes are settings.ArrivalModelSettings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from servetrace import io
from servetrace.arrays import Scratch
from servetrace.bundle.bin_counts import BinCounter, BinCounts, bin_counts
from servetrace.bundle.modulation import fit_modulation
from servetrace.rows.codes import Codes
from servetrace.settings import ArrivalModelSettings
from servetrace.stats import clock
from servetrace.stats import fidelity as metrics


def covered_counts(bin_index: np.ndarray, counts: np.ndarray, bundle: dict,
                   t: ArrivalModelSettings = ArrivalModelSettings()) -> np.ndarray:
    """Counts per `modulation.bin_s` bin (`bin_index` counted from the first window start) of the
    windows the source covers fully and that hold requests (the modulation fit reads no empty
    window), laid end to end; at most `max_modulation_windows` of them, evenly spread: memory
    follows the requests, not the span."""
    window_s = float(bundle["window_s"])
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    cov = bundle.get("covered") or {"start_s": grid[0], "end_s": grid[-1] + window_s}
    per = int(round(window_s / t.modulation.bin_s))
    full = (grid >= cov["start_s"]) & (grid + window_s <= cov["end_s"])
    window = bin_index // per
    inside = (window < len(grid)) & (counts > 0)
    inside[inside] = full[window[inside]]
    busy = np.unique(window[inside])
    if len(busy) > t.max_modulation_windows:
        busy = np.unique(busy[np.linspace(0, len(busy) - 1, t.max_modulation_windows).round().astype(np.int64)])
    take = inside & np.isin(window, busy)
    slot = np.searchsorted(busy, window[take])
    return np.bincount(slot * per + bin_index[take] % per, weights=counts[take], minlength=len(busy) * per)


class Figures:
    """What `score` compares of one trace (sorted arrivals), computed once however often it is
    compared: IDC per scale, the sorted inter-arrival times (not `ks`: left unsorted, as no KS
    will read them), their CV."""

    def __init__(self, arrival_s: np.ndarray, scales_s: tuple[float, ...], scratch: Scratch | None = None,
                 ks: bool = True) -> None:
        gaps = np.diff(arrival_s)
        if len(arrival_s) and arrival_s.dtype == np.float64 and (gaps >= 0).all() and not np.isnan(arrival_s[-1]):
            # sorted (the candidates' traces, the source's head): the gaps are those iat_cv sorts for
            # again, and each scale's bins ascend (metrics.idc_sorted); the same figures bit for bit
            self.idc = metrics.idc_sorted(arrival_s, scales_s, scratch)
            self.cv = metrics.iat_cv_of_gaps(gaps) if len(arrival_s) >= 3 else None
            if ks:
                gaps.sort()
            self.gaps = gaps
            return
        self.idc = {s: metrics.idc(arrival_s, s) for s in scales_s}
        self.gaps = np.sort(gaps)
        self.cv = metrics.iat_cv(arrival_s)


def score(source: np.ndarray | Figures, synthetic: np.ndarray | Figures, scales_s: tuple[float, ...],
          ks: bool = True) -> dict:
    """IDC relative error per scale, inter-arrival KS distance (None: not `ks`, or no gaps) and CV
    of a synthetic trace (each side sorted arrivals, or their `Figures`)."""
    a_, b_ = (x if isinstance(x, Figures) else Figures(np.sort(x), scales_s) for x in (source, synthetic))
    errs = {}
    for s in scales_s:
        a, b = a_.idc[s], b_.idc[s]
        errs[str(int(s))] = None if a is None or b is None or a <= 0 else abs(b - a) / a
    d = metrics.ks_sorted(a_.gaps, b_.gaps) if ks and len(a_.gaps) and len(b_.gaps) else None
    return {"idc_error": errs, "iat_ks": d, "iat_cv": b_.cv}


CANDIDATE_PARAMS = 1  # what every candidate takes from the source window by window: its rate


def ks_untestable(gaps: np.ndarray, clock_s: float | None) -> str | None:
    """Why the candidates' inter-arrival KS cannot tell them apart on the source's sorted `gaps`
    (read on its clock), or None when it can: as the whole-trace family fit judges its KS
    (stats/rounded.py `untestable`). The clock shows the gaps as `levels` distinct steps, whose
    ECDF has levels - 1 free steps; with no more than the candidates' shared parameters (the window
    rates, which set the tie share) every candidate matches them whatever its process (a 1 s clock
    at 150 req/s: gaps of 0 and 1 s only, KS ~1e-5 for all three)."""
    if not clock_s or gaps.size == 0:
        return None
    k = np.rint(gaps / clock_s)
    levels = int(np.count_nonzero(k[1:] != k[:-1])) + 1
    if levels - 1 > CANDIDATE_PARAMS:
        return None
    ties = float(np.count_nonzero(k == 0)) / gaps.size
    return (f"the {clock_s:g} s clock shows the source's gaps as only {levels} distinct value"
            f"{'s' if levels != 1 else ''} ({ties:.1%} ties), whose one step, the tie share, every candidate "
            f"matches by its window rates whatever its process")


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def dominant_clients(bundle: dict, t: ArrivalModelSettings = ArrivalModelSettings()) -> list[str]:
    """Ids of the clients fitted a modulation of their own: the largest (at most `max_dominant`)
    with `dominant_share` of the requests and `dominant_requests`, where there are several clients."""
    from servetrace.bundle.fit import OTHER  # a merged group of small clients is no client

    if len(bundle["clients"]) < 2:
        return []
    big = sorted((c for c in bundle["clients"] if c["id"] != OTHER and c["share"] >= t.dominant_share
                  and c["requests"] >= t.dominant_requests), key=lambda c: -c["requests"])
    return [c["id"] for c in big[:t.max_dominant]]


def bin_counter(names: list[str], per_client: pl.DataFrame, rows: int, g0: float, t: ArrivalModelSettings) -> BinCounter:
    """A counter, for a fit's pass over the rows, of the model's requests per modulation bin: of every
    row and of the dominant clients, judged on the clients (`names`, `per_client`'s requests by
    client code) as the bundle will list them."""
    listed = {"clients": [{"id": names[c], "share": n / rows, "requests": int(n)}
                          for c, n in per_client.select("client", "requests").iter_rows()]}
    index = {name: i for i, name in enumerate(names)}
    return BinCounter(g0, t.modulation.bin_s, {cid: index[cid] for cid in dominant_clients(listed, t)})


def fit_modulations(counts: np.ndarray, bundle: dict, resolution_s: float, clients: dict[str, np.ndarray] | None = None,
                    t: ArrivalModelSettings = ArrivalModelSettings()) -> dict | None:
    """The pooled modulation fitted to `counts` (the clients without one of their own), with
    `clients`: each dominant client's own, fitted to its counts (a client too sparse to fit joins the pool)."""
    window_s, m = float(bundle["window_s"]), t.modulation
    pooled = fit_modulation(counts, m.bin_s, window_s, resolution_s, m) if len(counts) else None
    own = {cid: f for cid, c in (clients or {}).items()
           if len(c) and (f := fit_modulation(c, m.bin_s, window_s, resolution_s, m))}
    if not own:
        return pooled
    if pooled is None:  # every client has its own: the pooled one is unused
        pooled = {"kind": "log-gaussian OU", "theta_s": list(m.theta_s), "sigma2": [0.0] * len(m.theta_s), "bin_s": m.bin_s}
    return {**pooled, "clients": {cid: {"sigma2": f["sigma2"], "fit": f["fit"]} for cid, f in own.items()}}


def simplest_within_noise(evidence: dict, scored: list[str]) -> str:
    """The lowest score, unless it is a modulated candidate that beats `renewal` by no more than
    the seed-to-seed IDC floor (mean over the `scored` scales; the larger of its own and
    renewal's, each read from one pair of traces): then `renewal`, the simpler model, as the
    evidence cannot tell them apart."""
    best = min(evidence, key=lambda n: evidence[n]["score"])
    if best == "renewal" or "renewal" not in evidence:
        return best
    floor = max(_mean([evidence[n]["idc_seed_floor"].get(k) for k in scored]) or 0.0 for n in (best, "renewal"))
    return best if evidence["renewal"]["score"] - evidence[best]["score"] > floor else "renewal"


def choose(arrival_s: np.ndarray, counts: np.ndarray, bundle: dict,
           t: ArrivalModelSettings = ArrivalModelSettings(), clients: dict[str, np.ndarray] | None = None,
           share: float | None = None) -> dict:
    """The `arrival_model` entry: the fitted modulation (per dominant client in `clients`, their
    counts; `counts` the others'), each candidate's evidence, the winner. `share`: the arrivals
    are session starts, this share of the requests (candidates run at the window rates x share)."""
    from servetrace.generation import GenerateOptions
    from servetrace.generation.compose import prepare
    from servetrace.generation.modulation import shared_draws

    arrival_s = np.sort(np.asarray(arrival_s, dtype=float), kind="stable")  # sorted already, as a rule: one run
    tick = clock.clock_of(arrival_s)  # BurstGPT's timestamps: whole seconds
    modulation = fit_modulations(counts, bundle, tick or 0.0, clients, t)
    sample = arrival_s[:t.max_rows]
    start, end = float(sample[0]), float(sample[-1])
    options = [GenerateOptions(seed=s, start_s=start, duration_s=max(end - start, 1e-9), rate_scale=share) for s in t.seeds]
    work = Scratch()  # the figures' work arrays, one set for every trace
    figures = Figures(sample, t.scales_s, work)
    source_idc = {str(int(s)): figures.idc[s] for s in t.scales_s}
    untestable = ks_untestable(figures.gaps, tick)  # then the KS is absent and scores nothing
    # a scale scores only with min_bins whole bins: an IDC of a dozen bins is mostly noise
    scored = [str(int(s)) for s in t.scales_s if (end - start) / s >= t.min_bins] or [str(int(t.scales_s[0]))]
    names = [n for n in t.candidates if n == "renewal" or modulation is not None]
    testable = untestable is None  # else no KS is computed, and the gaps need no sort

    def seed_traces(o: GenerateOptions) -> dict[str, tuple[Figures, dict]]:
        """Each candidate's trace of one seed, its figures and score."""
        own, out = Scratch(), {}
        with shared_draws():  # a seed's cox and cox-renewal traces run in the same modulated time
            for name in names:
                trial = {k: v for k, v in bundle.items() if k not in ("sessions", "prefix", "agents")}  # arrivals alone
                trial["arrival_model"] = {"chosen": name, "modulation": modulation, "candidates": {}}
                # read on the source's clock: a coarse clock's ties are compared with ties
                trace = Figures(clock.on_clock(prepare(trial, o).arrival_times(), tick, in_place=True), t.scales_s,
                                own, ks=testable)
                out[name] = trace, score(figures, trace, t.scales_s, ks=testable)
        own.clear()
        return out

    # the seeds side by side, each on a thread of its own (generation, sorts and searches are numpy,
    # which lets go of the GIL), each with its own work arrays and shared draws
    with ThreadPoolExecutor(len(options)) as pool:
        runs = list(pool.map(seed_traces, options))
    made = {name: [run[name] for run in runs] for name in names}
    work.clear()
    evidence = {}
    for name, pairs in made.items():
        traces, runs = [trace for trace, _ in pairs], [run for _, run in pairs]
        per_scale = {k: _mean([r["idc_error"][k] for r in runs]) for k in runs[0]["idc_error"]}
        # seed to seed: the same metric between the candidate's own two traces (its noise floor)
        floor = score(traces[0], traces[1], t.scales_s, ks=False)["idc_error"]
        idc_err = _mean([per_scale[k] for k in scored])
        ks = None if untestable else _mean([r["iat_ks"] for r in runs])
        evidence[name] = {"idc_error": per_scale, "idc_seed_floor": floor, "idc_error_mean": idc_err,
                          "iat_ks": {"absent": untestable} if untestable else ks,
                          "iat_cv": _mean([r["iat_cv"] for r in runs]), "score": (idc_err or 0.0) + (ks or 0.0)}
    best = simplest_within_noise(evidence, scored)
    on = {"fitted_on": "session starts", "start_share": share} if share else {"fitted_on": "requests"}
    return {"chosen": best, **on, "modulation": modulation, "candidates": evidence,
            "scales_s": list(t.scales_s), "scored_scales_s": [float(k) for k in scored],
            "source": {"idc": source_idc, "iat_cv": figures.cv, "requests": int(len(sample)),
                       "clock_s": tick},
            "note": f"source IDC {source_idc}, IAT CV {figures.cv}; score = mean IDC relative "
                    f"error over the scales + inter-arrival KS{' (absent: ' + untestable + ')' if untestable else ''}, "
                    f"mean of seeds {list(t.seeds)}, over the source's first {len(sample):,} requests"}


def with_start_arrival_model(bundle: dict, path: Path, reuse, t: ArrivalModelSettings = ArrivalModelSettings()) -> dict:
    """A session trace's bundle (sessions, no agents) with its arrival model fitted on the
    sessions' first requests (bundle/sessions.session_starts): follow-up turns cluster after their
    start, and a model fitted on every request would count that clustering as rate modulation,
    which the session layer then adds again on top of its turn gaps. Other bundles as they are."""
    from servetrace.bundle.sessions import session_starts

    if not bundle.get("sessions") or bundle.get("agents"):
        return bundle
    starts = session_starts(path, reuse)
    frame = pl.scan_parquet(io.parquet_parts(path))
    rows = io.parquet_rows(path)
    if starts is None or len(starts) < 3 or not rows:
        return bundle
    first = (frame.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
             .join(pl.LazyFrame({"_row": starts.astype(np.int64)}), on="_row", how="semi").drop("_row"))
    return with_arrival_model(bundle, first, t, len(starts) / rows)


def with_arrival_model(bundle: dict, requests: str | Path | pl.LazyFrame,
                       t: ArrivalModelSettings = ArrivalModelSettings(), share: float | None = None,
                       groups: Codes | None = None, counted: BinCounts | None = None) -> dict:
    """The bundle with its `arrival_model`, from a requests Parquet file sorted by arrival (as
    ingest writes it) or a frame: counts per `modulation.bin_s` bin over the whole trace and of each
    dominant client (one aggregation each; given the file's `groups`, the codes of the bundle's
    clients, one read of the arrivals, bundle/bin_counts.py; `counted`: those counts, made on the
    fit's second pass, used when they are of this bundle's first window and dominant clients) and
    the first `max_rows` arrival times (a file's first rows: nothing more is read into memory)."""
    frame = requests if isinstance(requests, pl.LazyFrame) else pl.scan_parquet(io.parquet_parts(requests))
    scan = frame.select("arrival_s")
    head = (scan.sort("arrival_s") if isinstance(requests, pl.LazyFrame) else scan).head(t.max_rows).collect()
    head = head["arrival_s"].to_numpy()
    if len(head) < 3:
        return bundle
    g0 = float(bundle["aggregate"]["window_start_s"][0])
    ids = dominant_clients(bundle, t)
    if counted is not None and counted.fits(g0, t.modulation.bin_s, ids):
        return arrival_model_of(bundle, head, *counted.whole, t, counted.own, share)
    if groups is not None and not isinstance(requests, pl.LazyFrame) and set(ids) <= set(groups.levels):
        (bins, counts), own = bin_counts(Path(requests), g0, t.modulation.bin_s, groups, ids)
        return arrival_model_of(bundle, head, bins, counts, t, own, share)
    b = ((pl.col("arrival_s") - g0) / t.modulation.bin_s).floor().cast(pl.Int64).alias("b")

    def bins_of(rows: pl.LazyFrame) -> tuple[np.ndarray, np.ndarray]:
        got = rows.select(b).group_by("b").len().collect()
        return got["b"].to_numpy(), got["len"].to_numpy()

    cols, own = bundle["group_by"].split(","), {}
    if set(cols) <= set(frame.collect_schema().names()):
        name = pl.concat_str([pl.col(c).cast(pl.String).fill_null("(none)") for c in cols], separator="|")
        # one pass for all of them, not one per client; counted per (columns, bin) first: a client's name is built per count, not per row
        got = frame.select(*cols, b).group_by(*cols, "b").len().select(name.alias("_cid"), "b", "len") \
            .filter(pl.col("_cid").is_in(ids)).collect() if ids else None
        own = {cid: (part["b"].to_numpy(), part["len"].to_numpy()) for cid in ids
               for part in [got.filter(pl.col("_cid") == cid)]}
    return arrival_model_of(bundle, head, *bins_of(scan), t, own, share)


def arrival_model_of(bundle: dict, head: np.ndarray, bins: np.ndarray, counts: np.ndarray,
                     t: ArrivalModelSettings = ArrivalModelSettings(),
                     own: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, share: float | None = None) -> dict:
    """The bundle with its `arrival_model`, from the source's first `max_rows` arrival times
    (sorted) and its requests per `modulation.bin_s` bin counted from the first window start
    (`bins`, `counts`), and `own`: the same of each dominant client (`dominant_clients`), whose
    requests the pooled counts the modulation of the others is fitted on leave out."""
    if len(head) < 3:
        return bundle
    ok = bins >= 0
    bins, counts = bins[ok], np.asarray(counts[ok], dtype=np.int64)
    order = np.argsort(bins)
    bins, tail = bins[order], counts[order]
    mine = {}
    for cid, (b, n) in (own or {}).items():
        keep = b >= 0
        b, n = b[keep], np.asarray(n[keep], dtype=np.int64)
        np.subtract.at(tail, np.searchsorted(bins, b), n)  # a client's bins are among the trace's
        mine[cid] = covered_counts(b, n, bundle, t)
    pooled = covered_counts(bins, tail, bundle, t) if not mine or tail.sum() else covered_counts(bins, counts[order], bundle, t)
    return {**bundle, "arrival_model": choose(head, pooled, bundle, t, mine, share)}
