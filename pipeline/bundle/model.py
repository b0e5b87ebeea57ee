"""The workload bundle (`bundle.json`, schema `servetrace.bundle/v2`; v1 bundles still load): load, validate, save.

A bundle is plain JSON, columnar (per-window values are parallel arrays), validated against
`pipeline/schemas/bundle.schema.json` plus semantic checks on write and on load. Fields:

- `schema`: "servetrace.bundle/v2" (written); "servetrace.bundle/v1" (no session or prefix model) still loads.
- `sessions`, `prefix` (optional, v2): the session model and the shared-prefix model, documented
  in `pipeline/bundle/sessions.py`.
- `agents` (optional, v2, traces with agent columns): the agent model, documented in
  `pipeline/bundle/agents.py`; `generate` runs it in place of the session model.
- `created_at`: ISO-8601 UTC time the bundle was made.
- `source`: `path` (trace or pool it was fitted from), `sha256` (of that file; null for a pool
  directory), `rows` (requests read; null for a pool), `format` (e.g. "burstgpt", "servegen");
  imports add `missing_datasets` (client files upstream left without a dataset file) and
  `dropped_dataset_windows` (dataset windows with an empty field, which ServeGen skips too).
- `settings`: the Settings used (window_s, seed, ...), as a dict.
- `window_s`: rate-window length in seconds (600 like ServeGen); a window lasts until the next start.
- `dataset_window_s`: length-distribution window in seconds (21600 = 6 h like ServeGen).
- `span_s`: seconds of the window grid, from the first window start to the end of the last window.
- `covered` (optional; a fitted trace has it, an import has not): `start_s`, `end_s`, the source's
  first and last arrival. Rates of windows the trace covers only in part are per covered second,
  and a generator reproduces the source by generating over this span (its default).
- `arrival_model` (optional; absent in older bundles and imports, which generate `renewal`):
  `chosen` ("renewal" | "cox" | "cox-renewal", see bundle/arrival_model.py), `modulation` (the
  fitted multi-scale log-Gaussian rate modulation: `theta_s`, `sigma2`, `bin_s`, `fit` with the
  observed and modelled within-window dispersion; null when not fitted; with `clients`: per
  dominant client id its own `sigma2` and `fit`, the top level then the other clients' pooled
  modulation), `candidates` (per model: IDC relative error per scale, its seed-to-seed floor,
  inter-arrival KS and CV, score), `scales_s`, `scored_scales_s`, `source` (IDC per scale, IAT CV,
  requests), `note`, `fitted_on` ("requests", or "session starts" with their `start_share`: a
  session trace's starts run in the model, its turns follow them); findings.json repeats it.
- `group_by`: what a "client" is: "client_id", or the fallback grouping ("model,service", ...).
- `category`: "language" | "reason" | "multimodal" (decides which length fields exist). `pmf_binning`: how token-count PMFs were compressed: counts below `exact_below` are exact;
  above it, log-spaced bins of relative width `log_step` (0.02 = 2 %) each represented by the
  probability-weighted mean count of the bin, rounded. `log_step` 0 means no binning.
- `aggregate`: `window_start_s` (the full window grid, ascending ints, shared by all clients) and
  `rate_rps` (summed rate of all clients per window); optional `cv`: the inter-arrival CV of all
  requests together per window (null where too few; absent for an import, which cannot know it).
- `failures` (optional; absent when no request failed or the source cannot tell): `rate`, the
  share of failed requests overall, and `zero_output`, true when the source marks a failure by an
  output of 0 tokens (BurstGPT, generic traces): a generator then writes failed requests that way.
- `clients`: one object per client (or group), largest share first:
  - `id`: the client id as in the source; `safe_id`: the same made safe as a file name
    (`[A-Za-z0-9_][A-Za-z0-9_.-]*`, unique; unsafe ids get a hash suffix); id -> safe_id is the mapping.
  - `share`: the client's fraction of all requests (shares sum to 1); `requests`: its request count
    (for an import: sum of rate x window length).
  - `failure_rate` (optional): the client's share of failed requests.
  - `iat`: the whole-span inter-arrival model: `family` ("gamma" | "weibull" | "exponential"),
    `params` {`shape`, `scale`} in scipy's parametrization (gamma(a=shape, scale=scale),
    weibull_min(c=shape, scale=scale), exponential: shape 1), `cv` (inter-arrival CV), `ks`
    (Kolmogorov-Smirnov distance of the fit, null when not measured).
  - `windows`: the client's windows with arrivals, parallel arrays: `start_s` (subset of the grid,
    ascending), `rate_rps` (>= 0), `cv` (>= 0 or null), `family` ("gamma" | "weibull" | null when too
    few arrivals to fit), `shape`, `scale` (scipy parameters, null with a null family), optional
    `failure_rate` (share of the window's requests that failed, in [0, 1]). A grid window not listed
    is inactive (rate 0).
  - `lengths`: `window_start_s` (dataset windows, ascending ints on the rate grid) and `fields`:
    for each length field one PMF per dataset window, `{"values": [...], "probs": [...]}` with
    values ascending and probs >= 0 summing to 1 (+-1e-6). Token and count fields hold counts;
    `reason_ratio` holds reasoning/output ratios on [0, 1] (multiples of 1/500, ServeGen's bins).
    `fit`: per field the best of several families over the client's whole span: `family`
    ("lognormal" | "exponential" | "gamma" | "weibull" | "constant" | "empirical"), `params`
    (lognormal: mu, sigma; exponential: mean; gamma / weibull: shape, scale; constant: value),
    `ks` (distance of the fit to the client's pooled PMF), `mean`, `cv` of that PMF.
  - `joint`: the joint structure of the length fields: `fields` (their order), `spearman`
    ({"input_tokens:output_tokens": rho, ...}; null where unmeasured), `copula`
    ("gaussian": sample correlated normals with `corr`, map each through its PMF;
    "comonotonic": one uniform for all fields, as ServeGen does; "independent"), `corr`
    (the copula's correlation matrix, square, in `fields` order).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import orjson

from servetrace.bundle.text import compact_numbers
from servetrace.errors import ServetraceError
from servetrace.io import write_text
from servetrace.outputs import bundle_path as bundle_file
from servetrace.stats.names import LEGACY_NAMES

SCHEMA_ID = "servetrace.bundle/v2"
READABLE_SCHEMAS = ("servetrace.bundle/v1", SCHEMA_ID)
WINDOW_FAMILIES = ("gamma", "weibull")
IAT_FAMILIES = ("gamma", "weibull", "exponential")
LENGTH_FAMILIES = ("lognormal", "exponential", "gamma", "weibull", "constant", "empirical")
CATEGORY_FIELDS = {
    "language": ("input_tokens", "output_tokens"),
    "reason": ("input_tokens", "output_tokens", "reason_ratio"),
    "multimodal": ("text_tokens", "image_tokens", "audio_tokens", "video_tokens",
                   "image_count", "audio_count", "video_count", "output_tokens"),
}
PMF_SUM_TOL = 1e-6
_PMF_KEYS = {"values", "probs"}
_WINDOW_FAMILY_SET = {*WINDOW_FAMILIES, None}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@functools.lru_cache(maxsize=1)
def bundle_schema() -> dict:
    text = resources.files("servetrace").joinpath("schemas/bundle.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _reference_validator():
    """jsonschema's validator: the reference, and the source of readable error messages."""
    import jsonschema

    schema = bundle_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@functools.lru_cache(maxsize=1)
def _fast_validator():
    """The same schema compiled to Python by fastjsonschema (~20x faster on big bundles): bundle/schema_check.py."""
    from servetrace.resources import schema_validator

    return schema_validator(bundle_schema(), "servetrace.bundle.schema_check")


def _schema_errors(doc: Any, name: str) -> None:
    import fastjsonschema

    try:
        _fast_validator()(doc)
        return
    except fastjsonschema.JsonSchemaException as fast_err:
        import jsonschema  # only to word the error: the fast validator decides

        err = jsonschema.exceptions.best_match(_reference_validator().iter_errors(doc))
        if err is None:  # the two disagree: report what the fast one saw
            raise ServetraceError(f"{name}: {fast_err.message[:200]}") from None
    path = "/".join(str(p) for p in err.absolute_path) or "(root)"
    raise ServetraceError(f"{name}: {path}: {err.message[:200]}")


def safe_client_id(raw: str, taken: set[str] | None = None) -> str:
    """A file-name-safe, unique id for `raw`; `raw` itself when it already is one."""
    taken = taken if taken is not None else set()
    if _SAFE_ID.match(raw) and raw not in taken:
        taken.add(raw)
        return raw
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip(".-")[:100] or "client"
    if not re.match(r"^[A-Za-z0-9_]", base):
        base = "_" + base
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    for n in itertools.count(8, 4):
        candidate = f"{base}-{digest[:n]}" if n <= 64 else f"{base}-{digest}-{n}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- validation


def _pruned(obj: Any, keep: int = 3, key: str = "") -> Any:
    """A copy with long arrays cut to `keep` items (all clients are kept): jsonschema checks the
    structure and item types on that sample, numpy and `_check_pmfs` check every element, which
    keeps loading a 147-client, 14-day pool under 1 s."""
    if isinstance(obj, dict):
        return {k: _pruned(v, keep, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_pruned(v, keep) for v in (obj if key == "clients" else obj[:keep])]
    return obj


def _floats(values: Iterable, what: str, nullable: bool = False) -> np.ndarray:
    values = values if isinstance(values, list) else list(values)
    arr = np.array(values) if values else np.zeros(0)
    if arr.dtype.kind == "O" and nullable:
        arr = np.array([np.nan if v is None else v for v in values])
    if arr.dtype.kind not in "fiu":
        raise ServetraceError(f"{what}: non-numeric value")
    arr = arr.astype(float, copy=False)
    if not nullable and np.isnan(arr).any():
        raise ServetraceError(f"{what}: NaN where a number is required")
    if np.isinf(arr).any():
        raise ServetraceError(f"{what}: infinite value")
    return arr


def _ints(values: list, what: str) -> np.ndarray:
    arr = np.array(values) if values else np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ServetraceError(f"{what}: window starts must be integers")
    return arr.astype(float)


def _ascending(arr: np.ndarray, what: str) -> None:
    if arr.size > 1 and not (np.diff(arr) > 0).all():
        raise ServetraceError(f"{what}: not strictly ascending")


def _check_pmfs(pmfs: list[dict], what: str, unit_interval: bool) -> None:
    if not pmfs:
        return
    if not all(type(p) is dict and p.keys() == _PMF_KEYS for p in pmfs):
        raise ServetraceError(f"{what}: a PMF must be an object with exactly 'values' and 'probs'")
    sizes = np.fromiter((len(p["probs"]) for p in pmfs), dtype=np.int64, count=len(pmfs))
    vsizes = np.fromiter((len(p["values"]) for p in pmfs), dtype=np.int64, count=len(pmfs))
    if (sizes != vsizes).any():
        raise ServetraceError(f"{what}: a PMF has values and probs of different lengths")
    probs = _floats(itertools.chain.from_iterable(p["probs"] for p in pmfs), f"{what} probs")
    values = _floats(itertools.chain.from_iterable(p["values"] for p in pmfs), f"{what} values")
    if (probs < 0).any():
        raise ServetraceError(f"{what}: negative probability")
    if (values < 0).any() or (unit_interval and (values > 1).any()):
        raise ServetraceError(f"{what}: value out of range")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sums = np.add.reduceat(probs, starts) if probs.size else np.zeros(0)
    bad = np.flatnonzero(np.abs(sums - 1.0) > PMF_SUM_TOL)
    if bad.size:
        raise ServetraceError(f"{what}: PMF #{bad[0]} sums to {sums[bad[0]]:.9g}, not 1")
    steps = np.diff(values)
    same_pmf = np.ones(values.size - 1 if values.size else 0, dtype=bool)
    same_pmf[starts[1:] - 1] = False
    if (steps[same_pmf] <= 0).any():
        raise ServetraceError(f"{what}: PMF values not strictly ascending")


def _check_client(c: dict, grid: np.ndarray, where: str) -> None:
    w = c["windows"]
    n = len(w["start_s"])
    for key in ("rate_rps", "cv", "family", "shape", "scale", *(("failure_rate",) if "failure_rate" in w else ())):
        if len(w[key]) != n:
            raise ServetraceError(f"{where}.windows.{key}: {len(w[key])} items, start_s has {n}")
    start = _ints(w["start_s"], f"{where}.windows.start_s")
    if not set(w["family"]) <= _WINDOW_FAMILY_SET:
        raise ServetraceError(f"{where}.windows.family: unknown family in {sorted(map(str, set(w['family'])))}")
    _ascending(start, f"{where}.windows.start_s")
    if not np.isin(start, grid).all():
        raise ServetraceError(f"{where}.windows.start_s: a start is not on the aggregate window grid")
    rate = _floats(w["rate_rps"], f"{where}.windows.rate_rps")
    if (rate < 0).any():
        raise ServetraceError(f"{where}.windows.rate_rps: negative rate")
    cv = _floats(w["cv"], f"{where}.windows.cv", nullable=True)
    if (cv < 0).any():
        raise ServetraceError(f"{where}.windows.cv: negative CV")
    if "failure_rate" in w:
        fr = _floats(w["failure_rate"], f"{where}.windows.failure_rate", nullable=True)
        if ((fr < 0) | (fr > 1)).any():
            raise ServetraceError(f"{where}.windows.failure_rate: a share outside [0, 1]")
    fam = np.array([f is not None for f in w["family"]], dtype=bool)
    for key in ("shape", "scale"):
        par = _floats(w[key], f"{where}.windows.{key}", nullable=True)
        if (fam & ~(par > 0)).any():
            raise ServetraceError(f"{where}.windows.{key}: a fitted window needs {key} > 0")
    ln = c["lengths"]
    m = len(ln["window_start_s"])
    lstart = _ints(ln["window_start_s"], f"{where}.lengths.window_start_s")
    _ascending(lstart, f"{where}.lengths.window_start_s")
    if not np.isin(lstart, grid).all():
        raise ServetraceError(f"{where}.lengths.window_start_s: a start is not on the aggregate window grid")
    for name, pmfs in ln["fields"].items():
        if len(pmfs) != m:
            raise ServetraceError(f"{where}.lengths.fields.{name}: {len(pmfs)} PMFs for {m} dataset windows")
        _check_pmfs(pmfs, f"{where}.lengths.fields.{name}", unit_interval=name == "reason_ratio")
    j = c["joint"]
    k = len(j["fields"])
    corr = np.asarray(j["corr"], dtype=float) if k else np.zeros((0, 0))
    if corr.shape != (k, k):
        raise ServetraceError(f"{where}.joint.corr: shape {corr.shape}, expected ({k}, {k})")
    if k and (np.abs(corr) > 1 + 1e-9).any():
        raise ServetraceError(f"{where}.joint.corr: a correlation outside [-1, 1]")
    if k and (not np.allclose(corr, corr.T, atol=1e-9) or not np.allclose(np.diag(corr), 1.0)):
        raise ServetraceError(f"{where}.joint.corr: not a symmetric matrix with unit diagonal")


def _current_names(bundle: dict) -> None:
    """Bundles written before the names were unified (v1, early v2) spell the inter-arrival families
    "Gamma" / "Weibull" / "Exponential":
    rename them in place to the one vocabulary (servetrace.stats.families)."""
    for c in bundle.get("clients") or []:
        if not isinstance(c, dict):
            continue
        iat, w = c.get("iat"), c.get("windows")
        if isinstance(iat, dict) and iat.get("family") in LEGACY_NAMES:
            iat["family"] = LEGACY_NAMES[iat["family"]]
        if isinstance(w, dict) and isinstance(w.get("family"), list) and not {"Gamma", "Weibull"}.isdisjoint(w["family"]):
            w["family"] = [LEGACY_NAMES.get(f, f) if isinstance(f, str) else f for f in w["family"]]


def validate_bundle(bundle: Any, name: str = "bundle") -> dict:
    """Raise ServetraceError (one line, naming `name` and the problem) unless `bundle` is a valid v1 bundle."""
    if not isinstance(bundle, dict):
        raise ServetraceError(f"{name}: a bundle is a JSON object")
    if bundle.get("schema") not in READABLE_SCHEMAS:
        raise ServetraceError(f"{name}: schema is {bundle.get('schema')!r}, expected one of {', '.join(READABLE_SCHEMAS)}")
    _current_names(bundle)
    _schema_errors(_pruned(bundle), name)
    agg = bundle["aggregate"]
    grid = _ints(agg["window_start_s"], f"{name}: aggregate.window_start_s")
    _ascending(grid, f"{name}: aggregate.window_start_s")
    if len(agg["rate_rps"]) != grid.size:
        raise ServetraceError(f"{name}: aggregate.rate_rps and window_start_s differ in length")
    if (_floats(agg["rate_rps"], f"{name}: aggregate.rate_rps") < 0).any():
        raise ServetraceError(f"{name}: aggregate.rate_rps: negative rate")
    if "cv" in agg:
        if len(agg["cv"]) != grid.size:
            raise ServetraceError(f"{name}: aggregate.cv and window_start_s differ in length")
        if (_floats(agg["cv"], f"{name}: aggregate.cv", nullable=True) < 0).any():
            raise ServetraceError(f"{name}: aggregate.cv: negative CV")
    if "covered" in bundle:
        cov = bundle["covered"]
        if not cov["end_s"] >= cov["start_s"]:
            raise ServetraceError(f"{name}: covered: end_s {cov['end_s']} before start_s {cov['start_s']}")
    seen: set[str] = set()
    for i, c in enumerate(bundle["clients"]):
        where = f"{name}: clients[{i}] ({c['id']!r})"
        if c["safe_id"] in seen:
            raise ServetraceError(f"{where}: duplicate safe_id {c['safe_id']!r}")
        seen.add(c["safe_id"])
        _check_client(c, grid, where)
    _check_reuse_models(bundle, name)
    shares = _floats((c["share"] for c in bundle["clients"]), f"{name}: clients share")
    if shares.size and abs(shares.sum() - 1.0) > 1e-6:
        raise ServetraceError(f"{name}: client shares sum to {shares.sum():.9g}, not 1")
    return bundle


def _check_reuse_models(bundle: dict, name: str) -> None:
    """v2's session and prefix models: a turns PMF, ascending quantile functions, popularities summing to 1."""
    sess = bundle.get("sessions")
    if sess:
        _check_pmfs([{"values": sess["turns"]["values"], "probs": sess["turns"]["probs"]}], f"{name}: sessions.turns", False)
        for key in ("gap_s", "think_s", "first_new_tokens", "new_prompt_tokens", "growth_tokens"):
            q = sess.get(key)
            if q:
                if (np.diff(_floats(q["quantiles"], f"{name}: sessions.{key}")) < 0).any():
                    raise ServetraceError(f"{name}: sessions.{key}.quantiles: decreasing")
    agents = bundle.get("agents")
    if agents:
        pmfs = [agents["turns"], agents["calls_per_turn"], *(c[k] for c in agents.get("clients") or [] for k in ("main", "subagent") if c[k])]
        sub = agents.get("subagents")
        if sub:
            pmfs += [p for p in (sub["fanout"], sub["calls"]) if p]
            if not 0 <= sub["spawn_share"] <= 1:
                raise ServetraceError(f"{name}: agents.subagents.spawn_share: not a share")
        _check_pmfs([{"values": p["values"], "probs": p["probs"]} for p in pmfs], f"{name}: agents", False)
        quantiles = [agents.get(k) for k in ("latency_s", "think_gap_s", "tool_gap_s", "subagent_gap_s")]
        for group in ("input_tokens", "cached_ratio", "output_tokens"):
            quantiles += list((agents.get(group) or {}).values())
        for q in quantiles + [(sub or {}).get("start_s")]:
            if q and (np.diff(_floats(q["quantiles"], f"{name}: agents")) < 0).any():
                raise ServetraceError(f"{name}: agents: a quantile function decreases")
    pre = bundle.get("prefix")
    if pre:
        pop = _floats(pre["groups"]["popularity"], f"{name}: prefix.groups.popularity")
        if len(pop) != len(pre["groups"]["tokens"]):
            raise ServetraceError(f"{name}: prefix.groups: tokens and popularity differ in length")
        if len(pop) and (abs(pop.sum() - 1) > 1e-6 or (pop < 0).any()):
            raise ServetraceError(f"{name}: prefix.groups.popularity: not a distribution")


# ---------------------------------------------------------------- load / save


def dumps_bundle(bundle: dict) -> str:
    """Validated, compact JSON text of `bundle` (what save_bundle writes)."""
    compact = compact_numbers(bundle)
    validate_bundle(compact, "bundle")
    return json.dumps(compact, separators=(",", ":"), allow_nan=False) + "\n"


def save_bundle(path: str | os.PathLike, bundle: dict) -> Path:
    """Validate `bundle` (before and after rounding) and write it atomically to `path`."""
    validate_bundle(bundle, str(path))
    return write_text(path, dumps_bundle(bundle))


def load_bundle(path: str | os.PathLike) -> dict:
    """Read and validate a bundle; a directory means DIR/bundle.json. Bad input -> ServetraceError."""
    path = bundle_file(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ServetraceError(f"{path}: no such bundle") from None
    except OSError as exc:
        raise ServetraceError(f"{path}: cannot read ({exc})") from None
    try:
        bundle = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ServetraceError(f"{path}: not valid JSON ({exc})") from None
    return validate_bundle(bundle, str(path))
