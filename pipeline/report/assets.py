"""What the page carries inline: the Vega / Vega-Lite / vega-embed bundle, the chart theme and CSS."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path

from servetrace.io import write_text


def _cache_path(vl_version: str) -> Path:
    import vl_convert

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "servetrace"
    return root / f"vega-bundle-{vl_convert.__version__}-vl{vl_version}.js"


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script (from vl-convert), so the page needs no network.

    Bundling takes seconds, so the result is kept in the user's cache directory, keyed by versions.
    """
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    vl_version = vl_version_for_vl_convert()
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

CSS = """
:root { --ink: #222; --muted: #666; --rule: #ddd; --accent: #1f4e79; --bg-note: #f7f7f4; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.55 Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, serif; }
main { max-width: 1020px; margin: 0 auto; padding: 28px 32px 64px; }
header h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 4px; font-weight: 600; }
header .subtitle { color: var(--muted); margin: 0 0 16px; }
dl.trace { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 0 0 20px; padding: 10px 0;
  border-top: 1px solid var(--rule); border-bottom: 1px solid var(--rule); font-size: .92rem; }
dl.trace div { display: flex; gap: 6px; } dl.trace dt { color: var(--muted); } dl.trace dd { margin: 0; }
.abstract { background: var(--bg-note); border-left: 3px solid var(--accent); padding: 12px 20px 12px 16px; margin: 0 0 24px; }
.abstract h2 { font-size: 1.05rem; margin: 0 0 6px; text-transform: uppercase; letter-spacing: .05em; }
.abstract ol { margin: 0; padding-left: 22px; } .abstract li { margin: 4px 0; }
.abstract a { color: inherit; text-decoration: none; border-bottom: 1px dotted var(--accent); }
.num { font-variant-numeric: tabular-nums; font-weight: 600; }
nav.toc { font-size: .9rem; columns: 2; margin: 0 0 12px; } nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc ol { margin: 0; padding-left: 22px; }
section { border-top: 1px solid var(--rule); margin-top: 28px; padding-top: 6px; }
h2 { font-size: 1.3rem; margin: 14px 0 6px; font-weight: 600; }
h2 .n { color: var(--muted); margin-right: 8px; font-weight: normal; }
p.intro { color: var(--muted); margin: 0 0 10px; font-style: italic; }
ul.statements { margin: 6px 0 12px; padding-left: 20px; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 18px 24px; margin: 12px 0; }
.figures.wide { grid-template-columns: 1fr; }
figure { margin: 0; } figcaption { font-size: .86rem; color: #444; margin-top: 4px; }
figcaption b { font-weight: 600; }
.chart { min-height: 60px; overflow-x: auto; }
.note { font-size: .88rem; color: var(--muted); background: var(--bg-note); padding: 6px 10px; margin: 6px 0; }
table { border-collapse: collapse; font-size: .86rem; margin: 8px 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); font-size: .86rem; padding-bottom: 4px; }
th, td { padding: 3px 12px 3px 0; text-align: left; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid #bbb; }
td.v { text-align: right; }
details { margin: 8px 0; font-size: .9rem; } summary { cursor: pointer; color: var(--accent); }
pre { background: var(--bg-note); padding: 10px 12px; overflow-x: auto; font-size: .82rem; white-space: pre-wrap;
  word-break: break-all; }
code { font-size: .86em; }
p.code-caption { color: var(--muted); font-size: .86rem; margin: 12px 0 0; }
footer { margin-top: 40px; color: var(--muted); font-size: .8rem; }
"""
