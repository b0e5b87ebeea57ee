"""Pages from the jinja2 templates in the top-level reports/ folder (package data when installed).

Autoescape is on: every value a template prints is HTML-escaped unless it is `Markup` made here
(the styles, the inlined scripts, and chart specs already made safe inside <script> by
`assets.script_json`)."""

from __future__ import annotations

import functools
import json

from markupsafe import Markup

from servetrace.resources import resource_dir, template_cache

REPORTS_DIR = resource_dir("reports")


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2

    from servetrace.report.summary import Num

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(REPORTS_DIR / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             bytecode_cache=template_cache())
    env.tests["num"] = lambda x: isinstance(x, Num)
    env.globals["json"] = json.dumps
    return env


def style(name: str) -> Markup:
    """reports/styles/NAME.css, inlined in the page."""
    return Markup((REPORTS_DIR / "styles" / f"{name}.css").read_text(encoding="utf-8"))


def render_page(template: str, **context) -> str:
    """reports/templates/TEMPLATE rendered with `context`."""
    return environment().get_template(template).render(**context)
