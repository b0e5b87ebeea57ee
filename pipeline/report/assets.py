"""What the page carries inline: the Vega / Vega-Lite / vega-embed bundle and the chart theme (the
styles and templates are in the top-level reports/ folder)."""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path

from servetrace.io import write_text
from servetrace.resources import user_cache
from servetrace.report.specs import VEGA_LITE


def _cache_path(vl_version: str) -> Path:
    import vl_convert

    return user_cache() / f"vega-bundle-{vl_convert.__version__}-vl{vl_version}.js"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script (from vl-convert), so the page needs no network.

    Bundling takes seconds, so the result is kept in the user's cache directory, keyed by versions.
    """
    import vl_convert

    vl_version = "v" + "_".join(VEGA_LITE.split(".")[:2])  # vl-convert names a Vega-Lite release v6_4
    cached = _cache_path(vl_version)
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    # The bundle is inlined in a <script>: it must not close that element early.
    js = vl_convert.javascript_bundle(vl_version=vl_version).replace("</script", "<\\/script")
    with contextlib.suppress(OSError):  # a read-only home only costs the next run the bundling time
        write_text(cached, js)
    return js


def script_json(obj) -> str:
    """JSON safe inside a <script> element: `<`, `>` and `&` become \\u escapes, so `</script>` cannot end it."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# One theme for every chart, applied by vega-embed: quiet axes, a paper's typography.
CHART_CONFIG = {
    "font": "Helvetica Neue, Helvetica, Arial, sans-serif",
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal", "gridColor": "#ececec",
             "domainColor": "#888", "tickColor": "#888",
             # Log axes label 1, 2, 3 ... per decade; these keep neighbouring labels from running together.
             "labelOverlap": "greedy", "labelSeparation": 6},
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal", "orient": "bottom"},
    "title": {"fontSize": 12, "fontWeight": "normal", "anchor": "start", "color": "#333"},
    "range": {"category": ["#1f4e79", "#c0504d", "#6a8d3a", "#e08a2c", "#7a5195", "#4a9fb5", "#9c755f", "#888"]},
}

# Charts draw one at a time in page order, each in its own task: the text shows and scrolls at once and
# the charts at the top appear first, instead of the page waiting for every chart to compile.
# data-charts-ready (count drawn) and data-charts-ms (time to draw them all) mark the end.
EMBED_SCRIPT = """
(function () {
  var specs = JSON.parse(document.getElementById('servetrace-specs').textContent);
  var config = JSON.parse(document.getElementById('servetrace-chart-config').textContent);
  var queue = Array.prototype.slice.call(document.querySelectorAll('.chart[data-figure]'));
  var total = queue.length, failed = 0;
  function finish() {
    document.body.setAttribute('data-charts-ms', String(Math.round(performance.now())));
    document.body.setAttribute('data-charts-ready', String(total - failed));
  }
  function next() {
    var el = queue.shift();
    if (!el) { finish(); return; }
    var spec = specs[el.getAttribute('data-figure')];
    vegaEmbed(el, spec, {actions: false, renderer: 'svg', config: config, tooltip: true})
      .catch(function (err) { failed++; el.textContent = 'chart failed: ' + err; console.error(err); })
      .then(function () { setTimeout(next, 0); });
  }
  next();
})();
"""
