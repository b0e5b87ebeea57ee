"""The HTML findings report: findings.json and tables/ laid out as sections and charts, one offline page.

`write_report(out_dir)` writes out_dir/report.html; `write_comparison(a, b, out)` draws two traces
side by side. The layers: inputs (read files) -> sections / summary / charts (layout) -> render (HTML).
"""

from __future__ import annotations

from pathlib import Path

from servetrace.io import output_lock, write_text
from servetrace.outputs import REPORT
from servetrace.report.inputs import load_inputs


def write_report(out_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render DIR/findings.json (+ tables/, bundle/fidelity/provision when present) to DIR/report.html."""
    from servetrace.report.page import build_page
    from servetrace.report.render import render

    if not Path(out_dir).is_dir():
        load_inputs(out_dir)  # the clear error, without making the directory
    with output_lock(out_dir):  # no characterize / validate run swaps the inputs while they are read
        inp = load_inputs(out_dir)
        return write_text(Path(out) if out else Path(out_dir) / REPORT, render(build_page(inp)))


def write_comparison(a: str | Path, b: str | Path, out_dir: str | Path) -> Path:
    """Two characterized traces side by side in out_dir/report.html."""
    from servetrace.report.compare import build_comparison
    from servetrace.report.render import render

    with output_lock(out_dir):
        page = build_comparison(load_inputs(a), load_inputs(b))
        return write_text(Path(out_dir) / REPORT, render(page))


__all__ = ["REPORT", "write_report", "write_comparison"]
