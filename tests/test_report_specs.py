"""The report's Vega-Lite specs as plain dicts (servetrace/report/specs.py): channel types from the
data, shared data given once on a layer, frames written once as named datasets."""

from __future__ import annotations

import math

import polars as pl
import pytest

from servetrace.report import specs as vl


def test_a_field_takes_its_type_from_the_shorthand_or_the_data():
    df = pl.DataFrame({"n": [1, 2], "x": [0.5, 1.5], "name": ["a", "b"], "ok": [True, False]})
    spec = vl.chart(df, "point", x="x", y=vl.field("n", title="count"), color="name", shape="ok",
                    tooltip=["name", vl.field("x:O", format=".2f")], size=vl.value(3), y2=vl.datum(0))
    assert spec["mark"] == {"type": "point"}
    enc = spec["encoding"]
    assert enc["x"] == {"field": "x", "type": "quantitative"}
    assert enc["y"] == {"field": "n", "title": "count", "type": "quantitative"}
    assert enc["color"] == {"field": "name", "type": "nominal"}
    assert enc["shape"] == {"field": "ok", "type": "nominal"}
    assert enc["tooltip"] == [{"field": "name", "type": "nominal"}, {"field": "x", "type": "ordinal", "format": ".2f"}]
    assert enc["size"] == {"value": 3} and enc["y2"] == {"datum": 0}
    # a second position channel has no type of its own in Vega-Lite
    assert vl.chart(df, "rect", x2="x:Q")["encoding"]["x2"] == {"field": "x"}
    # a colon inside a title-like field name is not a type
    assert vl.field("time (h): start")["field"] == "time (h): start"
    with pytest.raises(ValueError, match="needs its type"):
        vl.chart([{"a": 1}], "point", x="a")


def test_layers_share_one_frame_and_one_size():
    base = pl.DataFrame({"v": [1.0], "label": ["Poisson"]})
    other = pl.DataFrame({"t": [0.0, 1.0], "y": [2.0, 3.0]})
    shared = vl.layer(vl.chart(base, "rule", y="v:Q"), vl.chart(base, "text", y="v:Q", text="label:N"))
    assert shared["data"] is base and all("data" not in s for s in shared["layer"])
    # equal frames that are different objects stay with their views
    assert "data" not in vl.layer(vl.chart(base, "rule", y="v:Q"), vl.chart(base.clone(), "rule", y="v:Q"))
    sized = vl.layer({**vl.chart(other, "line", x="t:Q", y="y:Q"), "width": 300, "height": 200},
                     vl.chart(other.head(1), "point", x="t:Q", y="y:Q"))
    assert (sized["width"], sized["height"]) == (300, 200)
    assert all("width" not in s and "height" not in s for s in sized["layer"])
    with pytest.raises(ValueError, match="width"):
        vl.layer({**vl.chart(other, "line"), "width": 1}, {**vl.chart(other, "line"), "width": 2})


def test_the_top_level_spec_names_each_frame_once():
    base = pl.DataFrame({"v": [1.0, math.nan], "label": ["a", None]})
    spec = vl.top_level({**vl.layer(vl.chart(base, "rule", y="v:Q"), vl.chart(base, "text", text="label:N")),
                         "width": 10})
    assert spec["$schema"] == vl.SCHEMA_URL and spec["config"] == vl.VIEW_CONFIG
    (name, rows), = spec["datasets"].items()
    assert spec["data"] == {"name": name} and name.startswith("data-") and len(name) == 5 + 32
    assert rows == [{"v": 1.0, "label": "a"}, {"v": None, "label": None}]  # JSON has no NaN
    again = vl.top_level(vl.chart(base.clone(), "point", x="v:Q"))
    assert list(again["datasets"]) == [name]  # named by content
    inline = vl.top_level(vl.chart([{"a": 1}], "bar", x="a:Q"))
    assert inline["data"] == {"values": [{"a": 1}]} and "datasets" not in inline
