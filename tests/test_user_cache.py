"""What servetrace derives once: the compiled bundle validator (once per process) and the report
templates' bytecode (kept in the user's cache). Loaded from the cache they behave as freshly made
ones; a cache that cannot be written only costs the time."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import fastjsonschema
import pytest

from servetrace import resources
from servetrace.bundle.model import bundle_schema

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "burstgpt_sample.bundle.json"


def spoiled(doc: dict) -> list[dict]:
    a, b, c = copy.deepcopy(doc), copy.deepcopy(doc), copy.deepcopy(doc)
    a["window_s"] = "600"
    del b["clients"]
    c["clients"][0]["safe_id"] = "not a safe id!"  # the pattern (a compiled regex in the generated code)
    return [a, b, c]


def verdict(validate, doc) -> str:
    try:
        validate(doc)
        return "ok"
    except fastjsonschema.JsonSchemaException as exc:
        return exc.message


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "servetrace"


def test_the_validator_judges_as_fastjsonschema_compile(cache):
    doc = json.loads(SAMPLE.read_text())
    want = fastjsonschema.compile(bundle_schema(), handlers={}, use_default=False)
    made = resources.schema_validator(bundle_schema())
    assert resources.schema_validator(bundle_schema()) is made  # compiled once per process
    assert verdict(made, doc) == "ok"
    assert [verdict(made, d) for d in spoiled(doc)] == [verdict(want, d) for d in spoiled(doc)]
    assert all(verdict(made, d) != "ok" for d in spoiled(doc))
    assert not (cache / "validators").exists()  # no code is kept between processes


def test_an_unwritable_cache_costs_only_time(cache, tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the cache folder cannot be made
    assert resources.template_cache() is None


def test_templates_render_the_same_from_their_bytecode_cache(cache):
    from servetrace.report import templates

    def page() -> str:
        templates.environment.cache_clear()
        return templates.render_page("shell.html.j2", title="t", css=templates.style("report"), body="<p>x</p>")

    try:
        first = page()
        assert list((cache / "templates").iterdir())
        assert page() == first
    finally:
        templates.environment.cache_clear()
