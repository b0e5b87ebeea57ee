"""Export a bundle as a ServeGen client pool: `PATH/data/<category>/<model>/chunk-<id>-{trace.csv,dataset.json}`.

Every rule of servegen-format.md: integer ids, header-less 6-field trace lines with the same window
starts for every client (inactive `ts,0,0,,0,0`), dataset keys that are trace starts, PMFs written
as Python dict literals in strings summing to 1, all 501 reason_ratio bins, all eight multimodal
fields. The id mapping and any time shift go to `servetrace-export.json` beside the files, which
ServeGen's loader ignores (it reads only `*-dataset.json` and `*-trace.csv`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from servetrace.bundle.coverage import covered_seconds_at, covered_span, window_lengths
from servetrace.bundle.model import CATEGORY_FIELDS
from servetrace.errors import ServetraceError
from servetrace.io import atomic_dir, dumps_json
from servetrace.stats.names import SERVEGEN_NAMES
from servetrace.stats.pmf import REASON_BINS

_MODEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
ZERO_PMF = {"values": [0], "probs": [1.0]}


def _num(x: float) -> str:
    """Shortest text that reads back as the same float (ints without a fraction)."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def pmf_literal(pmf: dict, field: str) -> str:
    """The dict-literal string ServeGen evals: int keys for counts, the 501 i/501 keys for reason_ratio."""
    values = np.asarray(pmf["values"], dtype=float)
    probs = np.asarray(pmf["probs"], dtype=float)
    probs = probs / probs.sum()
    if field == "reason_ratio":
        dense = np.zeros(REASON_BINS + 1)
        np.add.at(dense, np.clip(np.rint(values * REASON_BINS).astype(int), 0, REASON_BINS), probs)
        return "{" + ", ".join(f"{repr(i / (REASON_BINS + 1))}: {repr(float(p))}" for i, p in enumerate(dense)) + "}"
    return "{" + ", ".join(f"{int(v)}: {repr(float(p))}" for v, p in zip(np.rint(values), probs)) + "}"


def _chunk_ids(clients: list[dict]) -> list[int]:
    """Keep ServeGen's own integer ids when every client has one (a round trip), else number 0..n-1."""
    ids = [c["id"] for c in clients]
    if all(i.isdigit() for i in ids) and len(set(map(int, ids))) == len(ids):
        return [int(i) for i in ids]
    return list(range(len(clients)))


def full_window_rate(rate: float, covered_s: float, length_s: float) -> float:
    """The rate over the whole window that gives the window's requests (rate x covered seconds):
    ServeGen fills every window it generates and draws ceil(rate x window) arrivals, so a window the
    source covered in part keeps its count only at this diluted rate. Nudged down where float
    rounding would lift rate x window just past a whole count (ceil would add a request)."""
    n = rate * covered_s
    out = n / length_s if length_s > 0 else rate
    whole = round(n)
    if abs(n - whole) < 1e-9 * max(1.0, n) and out * length_s > whole:
        out = float(np.nextafter(out, 0.0))
    return out


def _window_fields(w: dict, k: int, covered_s: float, length_s: float) -> tuple[str, str, str, str, str]:
    rate, cv, fam, shape, scale = (w[key][k] for key in ("rate_rps", "cv", "family", "shape", "scale"))
    if rate > 0 and covered_s != length_s:
        full = full_window_rate(rate, covered_s, length_s)
        scale = None if scale is None else scale * rate / full  # the same shape, the mean gap 1 / rate
        rate = full
    if fam is None:
        if rate <= 0:
            return "0", "0", "", "0", "0"
        # too few arrivals to fit: Poisson, i.e. Gamma with shape 1 and mean 1 / rate
        return _num(rate), "1", SERVEGEN_NAMES["gamma"], "1", _num(1.0 / rate)
    if cv is None:
        cv = 1.0 / np.sqrt(shape) if fam == "gamma" else 1.0
    return _num(rate), _num(cv), SERVEGEN_NAMES[fam], _num(shape), _num(scale)


def trace_csv(client: dict, grid: np.ndarray, shift: int, covered: np.ndarray, length: np.ndarray) -> str:
    """One line per grid window; `covered` / `length`: each grid window's covered and whole seconds."""
    w = client["windows"]
    index = {int(s): k for k, s in enumerate(w["start_s"])}
    lines = []
    for j, ts in enumerate(grid.tolist()):
        k = index.get(int(ts))
        fields = _window_fields(w, k, covered[j], length[j]) if k is not None else ("0", "0", "", "0", "0")
        lines.append(f"{int(ts) - shift}," + ",".join(fields))
    return "\n".join(lines) + "\n"


def dataset_json(client: dict, fields: tuple[str, ...], shift: int) -> str:
    ln = client["lengths"]
    starts = list(ln["window_start_s"])
    active = [s for s, r in zip(client["windows"]["start_s"], client["windows"]["rate_rps"]) if r > 0]
    if active and starts and active[0] < starts[0]:
        starts[0] = active[0]  # ServeGen raises for an active window before any dataset window
    out = {}
    for k, ts in enumerate(starts):
        out[str(int(ts) - shift)] = {
            f: pmf_literal(ln["fields"][f][k] if f in ln["fields"] else ZERO_PMF, f) for f in fields
        }
    return json.dumps(out)


def export_servegen(bundle: dict, out: str | Path, category: str | None = None, model: str | None = None) -> dict:
    """Write the pool under `out`/data/<category>/<model>; returns a summary."""
    category = category or bundle["category"]
    if category not in CATEGORY_FIELDS:
        raise ServetraceError(f"--category {category!r}: expected one of {', '.join(CATEGORY_FIELDS)}")
    model = model or bundle["source"].get("model") or "servetrace"
    if not _MODEL_RE.match(model):
        raise ServetraceError(f"--model {model!r}: use letters, digits, '_', '.', '-' (it becomes a directory name)")
    fields = CATEGORY_FIELDS[category]
    if category == "reason" and not any("reason_ratio" in c["lengths"]["fields"] for c in bundle["clients"]):
        raise ServetraceError("category reason: the bundle has no reason_ratio distribution (no reasoning tokens)")
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=np.int64)
    shift = int(grid[0]) if grid.size else 0
    clients = [c for c in bundle["clients"] if c["lengths"]["window_start_s"]]
    skipped = [c["id"] for c in bundle["clients"] if not c["lengths"]["window_start_s"]]
    if not clients:
        raise ServetraceError("no client has length distributions: nothing ServeGen could load")
    ids = _chunk_ids(clients)
    covered, length = covered_seconds_at(bundle, grid), window_lengths(bundle)
    pool = Path(out) / "data" / category / model
    with atomic_dir(pool) as tmp:
        for cid, client in zip(ids, clients):
            (tmp / f"chunk-{cid}-trace.csv").write_text(trace_csv(client, grid, shift, covered, length), encoding="utf-8")
            (tmp / f"chunk-{cid}-dataset.json").write_text(dataset_json(client, fields, shift), encoding="utf-8")
        sidecar = {
            "format": "servegen client pool",
            "source": bundle["source"],
            "category": category,
            "model": model,
            "time_unit": "s",
            "shift_s": shift,
            "window_s": bundle["window_s"],
            "covered": {k: v - shift if k != "seconds" else v for k, v in covered_span(bundle).items()},
            "covered_note": "the source covered only [start_s, end_s] (shifted times) of its first and last "
                            "windows; their rates here are diluted over the whole window so that ServeGen, "
                            "which fills every window, generates the source's request count",
            "clients": {str(cid): {"id": c["id"], "safe_id": c["safe_id"], "share": c["share"]}
                        for cid, c in zip(ids, clients)},
            "skipped_without_lengths": skipped,
            "note": "ServeGen samples every field of a request with one uniform number (comonotonic) "
                    "and fixes each window's count; the bundle's copula is not expressible here.",
        }
        (tmp / "servetrace-export.json").write_text(dumps_json(sidecar), encoding="utf-8")
    return {"format": "servegen", "path": str(pool), "clients": len(clients), "windows": int(grid.size),
            "category": category, "model": model, "skipped": skipped, "shift_s": shift}
