"""Import a ServeGen client pool directory (`chunk-<id>-trace.csv` + `chunk-<id>-dataset.json`)
into a bundle. The dataset files hold Python dict literals in strings: parsed with a strict regex,
never evaluated. Loader rules follow servegen-format.md (a client is one with a dataset file; a
dataset window with an empty field is skipped; reason_ratio bin i means i / 500)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import gammaln

from servetrace.bundle.model import CATEGORY_FIELDS, SCHEMA_ID, safe_client_id
from servetrace.errors import ServetraceError
from servetrace.stats.families import weibull_shape_for_cv
from servetrace.stats.names import LEGACY_NAMES
from servetrace.settings import DEFAULTS
from servetrace.stats.pmf import REASON_BINS, binned_pmf, pmf_fit, pooled_pmf

TRACE_RE = re.compile(r"^chunk-(\d+)-trace\.csv$")
DATASET_RE = re.compile(r"^chunk-(\d+)-dataset\.json$")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = rf"\s*{_NUM}\s*:\s*{_NUM}\s*"
_DICT_RE = re.compile(rf"\{{(?:{_PAIR}(?:,{_PAIR})*,?)?\s*\}}")
_PAIR_RE = re.compile(rf"({_NUM})\s*:\s*({_NUM})")
_TRACE_SCHEMA = {"start": pl.Int64, "rate": pl.Float64, "cv": pl.Float64, "pattern": pl.String,
                 "shape": pl.Float64, "scale": pl.Float64}


def is_servegen_pool(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any(TRACE_RE.match(p.name) for p in path.iterdir())


def parse_pmf_literal(text: str, where: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(keys, probs, keys_are_ints) of a dict literal like "{224: 0.0003, 225: 0.0011}"."""
    if not isinstance(text, str) or not _DICT_RE.fullmatch(text.strip()):
        raise ServetraceError(f"{where}: not a dict literal of numbers")
    pairs = _PAIR_RE.findall(text)
    if not pairs:
        return np.zeros(0), np.zeros(0), True
    keys = [k for k, _ in pairs]
    int_keys = not any(c in keys[0] for c in ".eE")
    return np.asarray(keys, dtype=float), np.asarray([p for _, p in pairs], dtype=float), int_keys


def _servegen_pmf(text: str, where: str, binning: dict) -> dict | None:
    """One field of one dataset window as a bundle PMF, or None when empty (ServeGen skips the window)."""
    keys, probs, int_keys = parse_pmf_literal(text, where)
    if keys.size == 0:
        return None
    if (probs < 0).any() or abs(probs.sum() - 1.0) > 1e-6:
        raise ServetraceError(f"{where}: probabilities must be >= 0 and sum to 1 (sum {probs.sum():.9g})")
    if int_keys:
        if (keys < 0).any():
            raise ServetraceError(f"{where}: negative token count")
        values, probs = binned_pmf(keys, probs, binning)
        values = values.astype(np.int64)
    else:  # ServeGen keeps only the values, in file order: bin i stands for i / 500
        if keys.size > REASON_BINS + 1:
            raise ServetraceError(f"{where}: {keys.size} ratio bins, at most {REASON_BINS + 1}")
        values = np.arange(keys.size) / REASON_BINS
        keep = probs > 0
        values, probs = values[keep], probs[keep] / probs[keep].sum()
    return {"values": values.tolist(), "probs": probs.tolist()}


def _read_trace(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, has_header=False, new_columns=list(_TRACE_SCHEMA), schema_overrides=_TRACE_SCHEMA)
    except Exception as exc:  # noqa: BLE001 - polars raises several types for a malformed CSV
        raise ServetraceError(f"{path}: not a 6-field ServeGen trace CSV ({str(exc).splitlines()[0]})") from None
    if frame.width != 6 or frame["start"].null_count():
        raise ServetraceError(f"{path}: not a 6-field ServeGen trace CSV")
    return frame


def _read_dataset(path: Path, binning: dict) -> tuple[list[int], dict[str, list], int]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServetraceError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ServetraceError(f"{path}: expected an object keyed by window start")
    starts, fields, dropped = [], {}, 0
    for ts in sorted(raw, key=lambda k: int(k) if str(k).lstrip("-").isdigit() else -1):
        if not str(ts).isdigit() or not isinstance(raw[ts], dict):
            raise ServetraceError(f"{path}: key {ts!r} is not a window start with a field object")
        pmfs = {name: _servegen_pmf(text, f"{path} [{ts}][{name}]", binning) for name, text in raw[ts].items()}
        if not pmfs or any(p is None for p in pmfs.values()):
            dropped += 1
            continue
        if fields and set(pmfs) != set(fields):
            raise ServetraceError(f"{path}: window {ts} has fields {sorted(pmfs)}, others {sorted(fields)}")
        starts.append(int(ts))
        for name, pmf in pmfs.items():
            fields.setdefault(name, []).append(pmf)
    return starts, fields, dropped


def _category(pool: Path, field_names: set[str]) -> str:
    if pool.parent.name in CATEGORY_FIELDS:
        return pool.parent.name
    if "reason_ratio" in field_names:
        return "reason"
    return "multimodal" if "text_tokens" in field_names else "language"


def iat_summary(family: list, cv: np.ndarray, requests: np.ndarray, active_s: np.ndarray) -> dict:
    """A whole-span inter-arrival model from a client's windows: the family carrying most requests,
    the request-weighted CV, and a mean inter-arrival time of active seconds per request."""
    fam_arr = np.asarray(family, dtype=object)
    fitted = (fam_arr != None) & (requests > 0)  # noqa: E711 - elementwise
    fam = "gamma"
    if fitted.any() and requests[fitted & (fam_arr == "weibull")].sum() > requests[fitted & (fam_arr == "gamma")].sum():
        fam = "weibull"
    cv_ok = fitted & np.isfinite(np.asarray(cv, dtype=float))
    mean_cv = float(np.average(np.asarray(cv, dtype=float)[cv_ok], weights=requests[cv_ok])) if cv_ok.any() else 1.0
    mean_cv = max(mean_cv, 1e-3)
    mean_iat = float(active_s.sum() / requests.sum()) if requests.sum() > 0 else 1.0
    if fam == "weibull":
        k = float(weibull_shape_for_cv(mean_cv))
        params = {"shape": k, "scale": mean_iat / float(np.exp(gammaln(1 + 1 / k)))}
    else:
        shape = 1.0 / mean_cv**2
        params = {"shape": shape, "scale": mean_iat / shape}
    return {"family": fam, "params": params, "cv": mean_cv, "ks": None}


def import_servegen_pool(pool_dir: str | Path, binning: dict | None = None) -> dict:
    """A bundle (dict, not yet saved) from a ServeGen pool directory."""
    pool = Path(pool_dir)
    binning = dict(binning or DEFAULTS.fit.binning())
    if not pool.is_dir():
        raise ServetraceError(f"{pool}: not a directory")
    traces = {int(m.group(1)): p for p in pool.iterdir() if (m := TRACE_RE.match(p.name))}
    datasets = {int(m.group(1)): p for p in pool.iterdir() if (m := DATASET_RE.match(p.name))}
    if not datasets:
        raise ServetraceError(f"{pool}: no chunk-<id>-dataset.json files: not a ServeGen pool")
    orphans = sorted(set(datasets) - set(traces))
    if orphans:
        raise ServetraceError(f"{pool}: chunk-{orphans[0]}-dataset.json has no trace file (ServeGen refuses it)")
    missing = sorted(set(traces) - set(datasets))
    ids = sorted(datasets)

    frames = [_read_trace(traces[i]).with_columns(pl.lit(i).alias("client")) for i in ids]
    grid = frames[0]["start"].to_numpy()
    if grid.size == 0 or (np.diff(grid) <= 0).any():
        raise ServetraceError(f"{traces[ids[0]]}: window starts must be ascending")
    for i, f in zip(ids, frames):
        if not np.array_equal(f["start"].to_numpy(), grid):
            raise ServetraceError(f"{traces[i]}: window starts differ from {traces[ids[0]].name}'s (ServeGen requires one set)")
    window_s = float(np.median(np.diff(grid))) if grid.size > 1 else 600.0
    lengths_s = np.r_[np.diff(grid), window_s].astype(float)
    trace = pl.concat(frames)
    bad = trace.filter((pl.col("rate") < 0) | (pl.col("cv") < 0))
    if bad.height:
        raise ServetraceError(f"{traces[bad['client'][0]]}: negative rate or CV at window {bad['start'][0]}")
    unknown = trace.filter(pl.col("pattern").is_not_null() & ~pl.col("pattern").is_in(["Gamma", "Weibull"]))
    if unknown.height:
        raise ServetraceError(f"{traces[unknown['client'][0]]}: unknown arrival pattern {unknown['pattern'][0]!r}")

    clients, dropped, field_names = [], 0, set()
    taken: set[str] = set()
    for i, frame in zip(ids, frames):
        starts, fields, n_dropped = _read_dataset(datasets[i], binning)
        dropped += n_dropped
        field_names |= set(fields)
        active = frame.filter(pl.col("pattern").is_not_null())
        rate = active["rate"].to_numpy()
        win_len = lengths_s[np.searchsorted(grid, active["start"].to_numpy())]
        weight = rate * win_len
        extra = set(starts) - set(grid.tolist())
        if extra:
            raise ServetraceError(f"{datasets[i]}: dataset window {min(extra)} is not a trace window start")
        # requests per dataset window: a trace window uses the latest dataset window at or before it
        owner = np.searchsorted(np.asarray(starts), active["start"].to_numpy(), side="right") - 1
        dw = np.bincount(owner[owner >= 0], weights=weight[owner >= 0], minlength=len(starts)) if starts else np.zeros(0)
        families = [LEGACY_NAMES.get(p, p) for p in active["pattern"].to_list()]  # ServeGen's "Gamma" -> "gamma"
        fit = {name: pmf_fit(*pooled_pmf(pmfs, dw if dw.sum() > 0 else np.ones(len(pmfs))),
                             continuous=name == "reason_ratio")
               for name, pmfs in fields.items()}
        names = list(fields)
        clients.append({
            "id": str(i),
            "safe_id": safe_client_id(str(i), taken),
            "share": 0.0,
            "requests": float(weight.sum()),
            "iat": iat_summary(families, active["cv"].to_numpy(), weight, win_len * (rate > 0)),
            "windows": {"start_s": active["start"].to_list(), "rate_rps": rate.tolist(),
                        "cv": active["cv"].to_list(), "family": families,
                        "shape": active["shape"].to_list(), "scale": active["scale"].to_list()},
            "lengths": {"window_start_s": starts, "fields": fields, "fit": fit},
            "joint": {"fields": names, "copula": "comonotonic",
                      "corr": np.ones((len(names), len(names))).tolist(),
                      "spearman": {f"{a}:{b}": None for k, a in enumerate(names) for b in names[k + 1:]}},
        })
    total = sum(c["requests"] for c in clients)
    for c in clients:
        c["share"] = c["requests"] / total if total > 0 else 1.0 / len(clients)
    clients.sort(key=lambda c: (-round(c["share"], 12), c["id"]))
    aggregate = (trace.filter(pl.col("pattern").is_not_null()).group_by("start").agg(pl.col("rate").sum())
                 .join(pl.DataFrame({"start": grid}), on="start", how="right")
                 .with_columns(pl.col("rate").fill_null(0.0)).sort("start"))
    category = _category(pool, field_names)
    return {
        "schema": SCHEMA_ID,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": str(pool), "sha256": None, "rows": None, "format": "servegen",
                   "model": pool.name, "clients_with_data": len(ids),
                   "missing_datasets": [traces[m].name for m in missing],
                   "dropped_dataset_windows": dropped},
        "settings": {"window_s": window_s, "pmf_binning": binning},
        "window_s": window_s,
        "dataset_window_s": _dataset_window_s(clients, window_s),
        "span_s": float(grid[-1] - grid[0] + lengths_s[-1]),
        "group_by": "client_id",
        "category": category,
        "pmf_binning": binning,
        "aggregate": {"window_start_s": aggregate["start"].to_list(), "rate_rps": aggregate["rate"].to_list()},
        "clients": clients,
    }


def _dataset_window_s(clients: list[dict], window_s: float) -> float:
    steps = np.concatenate([np.diff(c["lengths"]["window_start_s"]) for c in clients] or [np.zeros(0)])
    steps = steps[steps > 0]
    return float(steps.min()) if steps.size else 21600.0
