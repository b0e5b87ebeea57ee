"""Two characterize output directories compared number by number: findings.json and bundle.json
key by key (the creation time left out), every table of tables/ as Arrow data (equal, equal as a set
of rows, or the largest difference of each float column).

    python -m bench.compare_outputs BEFORE_DIR AFTER_DIR     # exit 1 when anything differs
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import polars as pl

SKIP = ("created_at",)  # differs between any two runs


def json_differences(a, b, path: str = "") -> list[tuple[str, object, object]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k in SKIP:
                continue
            if k not in a or k not in b:
                out.append((f"{path}/{k}", a.get(k, "<missing>"), b.get(k, "<missing>")))
            else:
                out.extend(json_differences(a[k], b[k], f"{path}/{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [(f"{path}[len]", len(a), len(b))] if len(a) != len(b) else []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_differences(x, y, f"{path}[{i}]"))
        return out
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return [] if a == b or nan else [(path, a, b)]


def table_difference(a: pl.DataFrame, b: pl.DataFrame) -> str | None:
    """None when equal (as a set of rows), else what differs."""
    if a.schema != b.schema or a.height != b.height:
        return f"schema or rows differ ({a.height} vs {b.height} rows)"
    if a.equals(b):
        return None
    sa, sb = a.sort(a.columns, nulls_last=True), b.sort(b.columns, nulls_last=True)
    if sa.equals(sb):
        return None
    parts = []
    for c in a.columns:
        if a[c].dtype.is_float():
            d = (sa[c] - sb[c]).abs()
            if d.max():
                rel = (d / sa[c].abs().clip(1e-300)).max()
                parts.append(f"{c}: max abs {d.max():.3g}, rel {rel:.3g}")
        elif not sa[c].equals(sb[c]):
            parts.append(f"{c}: differs")
    return "; ".join(parts) or "row order differs"


def compare(before: Path, after: Path) -> int:
    differences = 0
    for name in ("findings.json", "bundle.json"):
        found = json_differences(json.loads((before / name).read_text()), json.loads((after / name).read_text()))
        differences += len(found)
        print(f"{name}: {len(found)} differences")
        for path, x, y in found:
            print(f"    {path}: {x!r} -> {y!r}")
    tables = sorted({p.name for d in (before, after) for p in (d / "tables").glob("*.parquet")})
    for name in tables:
        if not ((before / "tables" / name).exists() and (after / "tables" / name).exists()):
            print(f"tables/{name}: in one directory only")
            differences += 1
            continue
        found = table_difference(pl.read_parquet(before / "tables" / name), pl.read_parquet(after / "tables" / name))
        if found:
            print(f"tables/{name}: {found}")
            differences += 1
    print(f"{differences} differences")
    return differences


if __name__ == "__main__":
    sys.exit(1 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 0)
