"""Vega-Lite specs as plain dicts: a chart's data, mark and channels, layers and side-by-side views,
and the finished top-level spec a page embeds (its frames as named datasets).

A channel is `field("name:Q", title=...)` or a shorthand string `"name:Q"`; a field given without its
type takes it from the chart's data (numbers quantitative, strings and booleans nominal).
While a chart is built its data is the polars frame itself, so layers drawing one frame share it;
`top_level` writes each frame once, as rows under `datasets`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl

VEGA_LITE = "6.4.1"  # the schema the specs are written for and the page's Vega-Lite draws
SCHEMA_URL = f"https://vega.github.io/schema/vega-lite/v{VEGA_LITE}.json"
# A view without a width or height of its own (a facet's cells) is drawn at this size.
VIEW_CONFIG = {"view": {"continuousWidth": 300, "continuousHeight": 300}}
LAYER_SIZE = ("height", "width", "view")
SECONDARY = {"x2", "y2", "theta2", "radius2", "latitude2", "longitude2", "xError", "xError2", "yError", "yError2"}
TYPES = {"Q": "quantitative", "N": "nominal", "O": "ordinal", "T": "temporal", "G": "geojson"}


def field(shorthand: str, **props: Any) -> dict:
    """A field channel: "name:Q" (or "name", typed from the data) with its properties (title, scale, axis...)."""
    name, _, code = shorthand.rpartition(":")
    if code not in TYPES:
        return {"field": shorthand, **props}
    return {"field": name, "type": TYPES[code], **props}


def value(v: Any) -> dict:
    return {"value": v}


def datum(v: Any) -> dict:
    return {"datum": v}


def chart(data: pl.DataFrame | list[dict] | None, mark: str | dict, transform: list | None = None,
          **channels: Any) -> dict:
    """One view: `data` a frame (or rows), `mark` a type or {"type": ..., props}, `channels` by name."""
    spec: dict[str, Any] = {} if data is None else {"data": data}
    spec["mark"] = {"type": mark} if isinstance(mark, str) else mark
    if transform:
        spec["transform"] = transform
    spec["encoding"] = {k: _channel(v, data) for k, v in channels.items()}
    for k in SECONDARY.intersection(channels):  # a second position takes its type from the first
        if isinstance(spec["encoding"][k], dict):
            spec["encoding"][k].pop("type", None)
    return spec


def mark(kind: str, **props: Any) -> dict:
    return {"type": kind, **props}


def layer(*specs: dict, **props: Any) -> dict:
    """Views drawn over each other; data they all share is given once, on the layer, and so are a
    view's width and height (Vega-Lite sizes a layer as a whole)."""
    sized = {}
    for prop in LAYER_SIZE:
        values = [s[prop] for s in specs if prop in s]
        if values and prop not in props:
            if any(v != values[0] for v in values):
                raise ValueError(f"layers of different {prop}: {values}")
            sized[prop] = values[0]
    if sized:
        specs = tuple({k: v for k, v in s.items() if k not in sized} for s in specs)
    return _compound("layer", specs, {**props, **sized})


def hconcat(*specs: dict, **props: Any) -> dict:
    return _compound("hconcat", specs, props)


def top_level(spec: dict) -> dict:
    """The spec a page embeds: its frames as named rows under `datasets`, the schema and the view size."""
    datasets: dict[str, list] = {}
    body = _named(spec, datasets)
    return {"config": VIEW_CONFIG, **body, "$schema": SCHEMA_URL, **({"datasets": datasets} if datasets else {})}


def _compound(kind: str, specs: tuple[dict, ...], props: dict) -> dict:
    first = specs[0].get("data") if specs else None
    if first is not None and all(s.get("data") is first for s in specs):
        return {kind: [{k: v for k, v in s.items() if k != "data"} for s in specs], "data": first, **props}
    return {kind: list(specs), **props}


def _channel(v: Any, data) -> Any:
    if isinstance(v, str):
        v = field(v)
    if isinstance(v, list):
        return [_channel(x, data) for x in v]
    if isinstance(v, dict) and "field" in v and "type" not in v:
        return {**v, "type": _type_of(data, v["field"])}
    return v


def _type_of(data, name: str) -> str:
    if not isinstance(data, pl.DataFrame):
        raise ValueError(f"field {name!r} needs its type: the chart's data does not say it")
    dtype = data.schema[name]
    if dtype in (pl.String, pl.Categorical, pl.Boolean):
        return "nominal"
    if dtype.is_numeric():
        return "quantitative"
    raise ValueError(f"field {name!r} has type {dtype}, which a chart cannot draw")


def _named(node: Any, datasets: dict) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "data" and isinstance(v, pl.DataFrame):
                rows = v.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None)).to_dicts()  # JSON has no NaN
                name = "data-" + hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:32]
                datasets[name] = rows
                out[k] = {"name": name}
            elif k == "data" and isinstance(v, list):
                out[k] = {"values": v}
            else:
                out[k] = _named(v, datasets)
        return out
    if isinstance(node, list):
        return [_named(x, datasets) for x in node]
    return node
