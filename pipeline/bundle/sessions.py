"""The bundle's session and prefix models (schema v2), fitted from a canonical trace.

`sessions`: `source` ("session ids" | "inferred from prefix chains"); `sessions` (count);
`grouped_share` (of sessions starting under a shared prefix); `follow_up_share`;
`turns` (PMF of turns per session, corrected for the sessions the span end cuts (bundle/turns.py),
`fit`: geometric p with its KS); `gap_s` (arrival to
arrival) and `think_s` (from the previous turn's end, only where latency is known; null
otherwise) as quantile functions (`quantiles` at `probs`) with a lognormal `fit` and KS;
`first_new_tokens` (a first turn's input beyond its shared prefix, >= 1), `by_turns` (by class of
turns per session, `turns_from` each class's least turns: `first_new` quantile functions
[without, with a shared prefix], `grouped_share` the share with one, `gap_s` the gaps' quantile
functions by quarter of the session, null for the pooled one; `gap_rho` the Gaussian-copula
correlation of a gap (its normal score in its class and quarter) with its session's first input
(its normal score in its class)), `new_prompt_tokens`
(a follow-up's input - previous input - previous output, >= 1) and `growth_tokens` (input -
previous input), quantile functions; `start_share` (`origin_s`, `bin_s`, `share`: per bin, `start_bins`
to a bundle window or `start_bin_requests` requests long, the share of its requests that start a
session; `requests`: its requests, what generation's return clock is solved for); `window`
(sessions under way at the span start and whether follow-ups return at one pace over it:
bundle/under_way.py); `clients` (per bundle client, where the bundle's clients are
client groups: its own session model with these fields, or null) and `tail` (the other clients'
sessions pooled, or null: the trace's model; `client_sessions`). `prefix` (traces with hash_ids): `block_size`, `groups`
(`tokens`: shared-prefix length, `popularity`: share of grouped sessions starting with it, most
popular first, at most `max_groups`; `owners`: per group, runs [first token, owner group]: a
block is the owner's, so groups sharing part of their prefix share those blocks), `grouped_share`
and `grouped_sessions` (sessions whose first turn starts with a shared prefix), `clients` (per
bundle client, where the bundle's clients are client groups: its own `grouped_share` and group
`popularity`, or null for the pooled model; bundle/prefix_model.py `client_prefix`), `zipf` (exponent of popularity
against rank, least squares on logs, with the KS
of the fitted popularity against the observed).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace import io
from servetrace.bundle import session_sql
from servetrace.bundle.prefix_model import prefix_model, prefix_model_on
from servetrace.bundle.session_sql import HASH_MOD, keep_below
from servetrace.bundle.turns import turns_model
from servetrace.bundle.under_way import session_window
from servetrace.reuse.analysis import Reuse, analyze
from servetrace.schema import HASH_IDS
from servetrace.settings import ReuseSettings, SessionModelSettings
from servetrace.stages.prefix import session_codes


def _quantiles(x: np.ndarray, points: int) -> dict | None:
    x = x[np.isfinite(x)]
    if not len(x):
        return None
    probs = np.linspace(0, 1, points)
    return {"probs": probs.tolist(), "quantiles": np.quantile(x, probs).tolist(), "n": int(len(x))}


def _lognormal(x: np.ndarray) -> dict | None:
    x = x[np.isfinite(x) & (x > 0)]
    if len(x) < 2:
        return None
    mu, sigma = float(np.log(x).mean()), float(np.log(x).std())
    from scipy import stats  # here: a trace without sessions never loads scipy.stats (~1 s of start-up)

    ks = float(stats.kstest(x, stats.lognorm(s=max(sigma, 1e-9), scale=np.exp(mu)).cdf).statistic)
    return {"family": "lognormal", "params": {"mu": mu, "sigma": sigma}, "ks": ks}


def gap_quarter(turn: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Quarter (0-3) of its session a follow-up's gap ends in: ceil(4 (turn - 1) / (turns - 1)) - 1."""
    return np.clip(np.ceil(4 * (turn - 1) / np.maximum(turns - 1, 1)).astype(np.int64) - 1, 0, 3)


def normal_scores(x: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Normal score of each x's mid-rank among the x of the same key."""
    from scipy.special import ndtri

    frame = pl.DataFrame({"x": x, "k": key})
    u = frame.select((pl.col("x").rank().over("k") - 0.5) / pl.len().over("k"))["x"].to_numpy()
    return ndtri(u)


def class_scores(values: np.ndarray, cls: np.ndarray, x: np.ndarray, x_cls: np.ndarray) -> np.ndarray:
    """Normal score of each x's mid-rank among the `values` of its class."""
    from scipy.special import ndtri

    out = np.zeros(len(x))
    for c in np.unique(x_cls):  # a loop over classes
        v = np.sort(values[cls == c])
        at = x_cls == c
        rank = (np.searchsorted(v, x[at], "left") + np.searchsorted(v, x[at], "right")) / 2
        out[at] = ndtri(np.clip(rank / max(len(v), 1), 0.5 / len(v), 1 - 0.5 / len(v)))
    return out


def _by_turns(first_new: np.ndarray, turns: np.ndarray, grouped: np.ndarray, gap_turn: np.ndarray,
              gap_turns: np.ndarray, gaps: np.ndarray, t: SessionModelSettings, first_in=None,
              gap_first_in=None) -> dict | None:
    """The first turn's new prompt and the gaps between turns by class of turns per session (1,
    2-3, 4-7, ...; a class of fewer than `class_min` sessions merges into the one below). New
    prompts apart for sessions that start under a shared prefix and the others, with each class's
    share of such sessions. Long sessions start with long prompts (Mooncake's follow-ups return
    to long documents), a grouped session's new prompt is short (its prefix carries the length)
    and long sessions come back sooner, sooner still as they go on (Mooncake, median gap: 118 s at
    2-3 turns; at 8+, 87 s in a session's first quarter, 9 s in its last): drawn independently,
    short prompts got many turns and the cache saw the wrong reuse distances. Gaps by class and
    quarter of the session (`gap_quarter`), coupled to the session's first input (`gap_rho`):
    sessions on long documents come back later (Mooncake: 0.12 / 0.07 / 0.03 at 2-3 / 4-7 / 8+
    turns), and the cache sees a long context's many blocks wait that long. A cell of fewer than
    `cell_min` sessions (gaps) takes its class's pooled prompts (gaps; null: the trace's pooled gaps)."""
    if len(first_new) < t.by_turns_min:
        return None
    quantiles = lambda x: _quantiles(x, t.quantile_points)
    edges = turn_classes(np.bincount(np.floor(np.log2(turns)).astype(np.int64)), t.class_min)
    bucket = np.searchsorted(edges, turns, side="right") - 1
    gap_bucket = np.searchsorted(edges, gap_turns, side="right") - 1
    quarter = gap_quarter(gap_turn, gap_turns)
    out = {"turns_from": edges.tolist(), "grouped_share": [], "first_new": [], "gap_s": [], "gap_rho": []}
    ok = np.isfinite(gaps)
    zg = np.full(len(gaps), np.nan)
    zc = np.full(len(gaps), np.nan)
    if first_in is not None and ok.any():
        zg[ok] = normal_scores(gaps[ok], (gap_bucket * 4 + quarter)[ok])
        zc[ok] = class_scores(first_in, bucket, gap_first_in[ok], gap_bucket[ok])
    for b in range(len(edges)):  # a loop over classes
        at = bucket == b
        pooled = quantiles(first_new[at])
        out["first_new"].append([quantiles(first_new[at & (grouped == g)]) if (at & (grouped == g)).sum() >= t.cell_min
                                 else pooled for g in (False, True)])
        out["grouped_share"].append(float(grouped[at].mean()))
        at = (gap_bucket == b) & np.isfinite(gaps)
        pooled = quantiles(gaps[at]) if at.sum() >= t.cell_min else None
        out["gap_s"].append([quantiles(gaps[at & (quarter == k)]) if (at & (quarter == k)).sum() >= t.cell_min
                             else pooled for k in range(4)])
        both = at & np.isfinite(zg) & np.isfinite(zc)
        out["gap_rho"].append(float(np.corrcoef(zg[both], zc[both])[0, 1]) if both.sum() >= t.cell_min else 0.0)
    return out


def turn_classes(counts: np.ndarray, class_min: int) -> np.ndarray:
    """The least turns of each class of turns per session, from the sessions per floor(log2 turns)."""
    lows, acc = [], 0
    for c in range(len(counts) - 1, -1, -1):  # a loop over classes (log2 of the longest session)
        acc += counts[c]
        if c == 0 and acc == 0 and lows:  # no session of one turn: the lowest class starts at 1
            lows[-1] = 1
        elif acc >= class_min or c == 0:
            lows.append(1 << c)
            acc = 0
    return np.array(sorted(lows))


def session_hash(key: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer of each session key (its first request's row), as
    sql/sessions/session_requests.sql computes it (stg_requests.sql's `u` of that row at seed 0)."""
    m = np.uint64(0xFFFFFFFF)
    k = np.asarray(key, np.int64).astype(np.uint64)
    h = (((k & m) ^ np.uint64(0x85EBCA6B)) + (((k >> np.uint64(32)) * np.uint64(0x61C88647)) & m)) & m
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & m
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & m
    return h ^ (h >> np.uint64(16))


def session_frame(path, codes: np.ndarray | None, reuse: Reuse | None,
                  max_rows: int = SessionModelSettings.session_rows) -> pl.DataFrame | None:
    """Requests of (a sample of) the sessions, in session and turn order, with their turn
    number, gap, think time, context growth and new prompt, and the seconds from the session's
    last turn to the trace's last arrival (`left_s`: how likely the span end cut it). Past `max_rows` requests, whole
    sessions are kept by a hash of their key, the row of their first request (about `max_rows` requests:
    `session_hash`, as the engines' SQL form session_sql.py keeps them)."""
    if codes is None and reuse is not None:
        codes = reuse.session
    if codes is None:
        return None
    cols = ["arrival_s", "input_tokens", "output_tokens", "latency_s"]
    frame = pl.from_arrow(io.read_parquet(path, cols)).with_row_index("row")
    frame = frame.with_columns(session=pl.Series(codes))
    if reuse is not None and reuse.shared_blocks is not None:
        frame = frame.with_columns(shared_tokens=pl.Series(reuse.shared_blocks * reuse.block_size))
    else:
        frame = frame.with_columns(shared_tokens=pl.lit(0, pl.Int64))
    frame = frame.with_columns(left_s=pl.col("arrival_s").max() - pl.col("arrival_s").max().over("session"))
    if frame.height > max_rows:
        keep = session_hash(frame["session"].to_numpy()) % np.uint64(HASH_MOD) < keep_below(frame.height, max_rows)
        frame = frame.filter(pl.Series(keep))
    return (frame.sort(["session", "arrival_s", "row"])
            .with_columns(turn=pl.int_range(1, pl.len() + 1).over("session"),
                          gap_s=pl.col("arrival_s") - pl.col("arrival_s").shift(1).over("session"),
                          think_s=pl.col("arrival_s") - (pl.col("arrival_s") + pl.col("latency_s")).shift(1).over("session"),
                          growth=pl.col("input_tokens") - pl.col("input_tokens").shift(1).over("session"),
                          new_prompt=pl.col("input_tokens") - pl.col("input_tokens").shift(1).over("session")
                          - pl.col("output_tokens").shift(1).over("session")))


def client_index(path, bundle: dict, other: str) -> tuple[np.ndarray, int] | None:
    """(the bundle client of each request (file order; -1: none), named from the grouping columns
    as the fit names them; the number of clients), or None when the bundle's clients are not
    client groups (all, sessions)."""
    names = session_sql.client_names(path, bundle, other)
    if names is None:
        return None
    cols = bundle["group_by"].split(",")
    table = pl.from_arrow(io.read_parquet(path, cols))
    labels = table.select(pl.concat_str([pl.col(c).cast(pl.String).fill_null("(none)") for c in cols], separator="|"))
    index = labels.to_series().replace_strict(names[0], default=names[1], return_dtype=pl.Int64).to_numpy()
    return index, len(names[0])


def session_model(frame: pl.DataFrame, t: SessionModelSettings) -> dict:
    """The session model of `session_frame`'s requests (with `turns` and `first_in` per session)."""
    quantiles = lambda x: _quantiles(x, t.quantile_points)
    follow = frame.filter(pl.col("turn") > 1)
    first = frame.filter(pl.col("turn") == 1)
    turns = first["turns"].to_numpy()
    first_new = np.maximum((first["input_tokens"] - first["shared_tokens"]).cast(pl.Float64).to_numpy(), 1)
    f = lambda c, df=follow: df[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
    think = f("think_s")
    return {
        "sessions": int(first.height),
        "grouped_share": float((first["shared_tokens"] > 0).mean()),
        "follow_up_share": float(follow.height / frame.height),
        "turns": turns_model(turns, first["left_s"].to_numpy(), f("gap_s"), follow["turn"].to_numpy() - 1),
        "by_turns": _by_turns(first_new, turns, first["shared_tokens"].to_numpy() > 0,
                              follow["turn"].to_numpy(), follow["turns"].to_numpy(), f("gap_s"), t,
                              first["input_tokens"].to_numpy(), follow["first_in"].to_numpy()),
        "gap_s": {**(quantiles(f("gap_s")) or {}), "fit": _lognormal(f("gap_s"))} if follow.height else None,
        "think_s": {**quantiles(think), "fit": _lognormal(think)} if np.isfinite(think).any() else None,
        "first_new_tokens": quantiles(first_new),
        "new_prompt_tokens": quantiles(np.maximum(f("new_prompt"), 1)) if follow.height else None,
        "growth_tokens": quantiles(f("growth")) if follow.height else None,
    }


def client_sessions(frame: pl.DataFrame, n_clients: int, t: SessionModelSettings) -> dict:
    """Session models per client: each of the `client_models` clients that started the most
    sessions, at least `client_session_min`, gets its own (`clients`: per bundle client, its
    model or null); the other clients' sessions pooled make `tail` (null when no client has a
    model of its own or the tail started fewer than `client_session_min`: the trace's model).
    A session is its first request's client's. A model's `starts_per_request`: the sessions its
    clients started over their own requests (the rate their session starts run at): where a
    session's turns change client (BurstGPT: a conversation moving from ChatGPT to GPT-4), the
    requests of a client's sessions are not its requests. `frame`: `session_frame`'s, with each
    request's own bundle client (`client`, -1: none) among `n_clients`."""
    client = frame["client"].to_numpy()
    frame = frame.with_columns(pl.col("client").first().over("session"))
    starts = frame.filter(pl.col("turn") == 1)["client"].to_numpy()
    n = np.bincount(starts[starts >= 0], minlength=n_clients)
    req = np.bincount(client[client >= 0], minlength=n_clients)
    own = [int(c) for c in np.argsort(-n, kind="stable")[:t.client_models] if n[c] >= t.client_session_min]
    models: list = [None] * n_clients
    for c in own:  # a loop over the dominant clients
        models[c] = {**session_model(frame.filter(pl.col("client") == c), t), "starts_per_request": float(n[c] / req[c])}
    rest = frame.filter(~pl.col("client").is_in(own))
    tail = None
    if own and rest.filter(pl.col("turn") == 1).height >= t.client_session_min:
        others = np.setdiff1d(np.arange(n_clients), own)
        tail = {**session_model(rest, t), "starts_per_request": float(n[others].sum() / max(req[others].sum(), 1))}
    return {"clients": models if own else None, "tail": tail}


ANALYZE = object()  # fit_reuse_models's default: make the block reuse analysis


def analyzed(path, seed: int = 0, reuse_settings: ReuseSettings = ReuseSettings()) -> Reuse | None:
    """The block reuse analysis of `path` (None without hash_ids), sessions by their ids where the trace has them."""
    names = io.parquet_columns(path)
    codes = session_codes(path) if "session_id" in names else None
    return analyze(path, sessions=codes, seed=seed, t=reuse_settings) if HASH_IDS in names else None


def session_starts(path, reuse: Reuse | None) -> np.ndarray | None:
    """Rows (file order, ascending) of each session's first request: by session id, else by the
    reuse analysis' prefix chains; None without sessions. The file is sorted by arrival."""
    codes = session_codes(path) if "session_id" in io.parquet_columns(path) else None
    codes = reuse.session if codes is None and reuse is not None else codes
    return None if codes is None else np.sort(np.unique(codes, return_index=True)[1])


def start_share(frame: pl.DataFrame, window_start_s, window_s: float, t: SessionModelSettings) -> dict:
    """{origin_s, bin_s, share, requests}: per bin from the bundle's first window start, the share
    of its requests that start a session (null for a bin without any) and its requests (of
    `frame`: a sample's where the sessions were sampled). A bin is `start_bins` to a window
    or long enough for `start_bin_requests` requests at the trace's mean rate, the longer: a
    share of a few requests is mostly noise."""
    origin, bin_s, n_bins = start_bins(window_start_s, window_s, frame.height, t)
    at = np.clip(np.floor((frame["arrival_s"].to_numpy() - origin) / bin_s).astype(np.int64), 0, n_bins - 1)
    n = np.bincount(at, minlength=n_bins)
    first = np.bincount(at, weights=(frame["turn"] == 1).to_numpy().astype(float), minlength=n_bins)
    return start_share_of(origin, bin_s, n, first)


def start_bins(window_start_s, window_s: float, height: int, t: SessionModelSettings) -> tuple[float, float, int]:
    """`start_share`'s (origin, bin length, bins) for a frame of `height` requests."""
    origin, span = float(window_start_s[0]), float(len(window_start_s) * window_s)
    bin_s = max(float(window_s) / t.start_bins, t.start_bin_requests * span / max(height, 1))
    return origin, bin_s, max(int(np.ceil(span / bin_s - 1e-9)), 1)


def start_share_of(origin: float, bin_s: float, n: np.ndarray, first: np.ndarray) -> dict:
    return {"origin_s": origin, "bin_s": bin_s, "share": [float(f / c) if c else None for f, c in zip(first, n)],
            "requests": n.tolist()}


def fit_reuse_models(path, seed: int = 0, reuse: Reuse | None | object = ANALYZE, clients=None,
                     t: SessionModelSettings = SessionModelSettings(),
                     reuse_settings: ReuseSettings = ReuseSettings(), windows: tuple | None = None,
                     con=None, names: tuple | None = None) -> dict:
    """{"sessions": ..., "prefix": ...}: what the trace supports (empty when neither). `reuse`: the
    block reuse analysis of `path` with this seed and `reuse_settings` when the caller made it
    already (None: no blocks). `clients()`: `client_index`'s answer, asked only for a prefix model
    (per-client models). `t`: the models' thresholds. `windows`: the bundle's (window starts, window_s),
    for `sessions.start_share`. `con`: an engine's connection with `stg_requests`, where the session
    frame is made by SQL (session_sql.py; Spark's: only the sampled sessions reach the driver), the
    clients named by `names` (`session_sql.client_names`) instead of `clients()`."""
    explicit = "session_id" in io.parquet_columns(path)
    if reuse is ANALYZE:
        reuse = analyzed(path, seed, reuse_settings)
    out = {}
    index, frame = None, None
    if con is None:
        codes = session_codes(path) if explicit else None
        by_ids = codes is not None
        frame = session_frame(path, codes, reuse, t.session_rows)
    else:
        by_ids = explicit and session_sql.has_ids(con)
        session_sql.register_clients(con, names)
        if session_sql.has_keys(con, reuse, by_ids):  # the model from SQL aggregates: no session row to the driver
            from servetrace.bundle.session_stats import sessions_on

            session_sql.requests_on(con, io.parquet_rows(path), t.session_rows)
            stats = sessions_on(con, io.parquet_rows(path), t, windows, len(names[0]) if names is not None else None)
            if stats is not None:
                out["sessions"] = {"source": "session ids" if by_ids else "inferred from prefix chains", **stats}
    if frame is not None and frame.height:
        frame = frame.with_columns(turns=pl.len().over("session"), first_in=pl.col("input_tokens").first().over("session"))
        out["sessions"] = {"source": "session ids" if by_ids else "inferred from prefix chains",
                           **session_model(frame, t)}
        if windows is not None and len(windows[0]):
            out["sessions"]["start_share"] = start_share(frame, *windows, t)
        out["sessions"]["window"] = session_window(frame, io.parquet_rows(path) / frame.height)
        index = clients() if clients is not None else None
        if index is not None:
            out["sessions"].update(client_sessions(frame.with_columns(client=pl.Series(index[0]).gather(frame["row"])),
                                                   index[1], t))
    if reuse is not None and con is not None:
        out["prefix"] = prefix_model_on(con, reuse, t, len(names[0]) if names is not None else None)
    elif reuse is not None and reuse.groups is not None:
        if index is None and clients is not None:
            index = clients()
        out["prefix"] = prefix_model(reuse, t, index)
    return out
