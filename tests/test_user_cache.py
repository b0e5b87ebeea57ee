"""What servetrace derives once and keeps in the user's cache: the compiled bundle validator and
the report templates' bytecode. Loaded from the cache they behave as freshly made ones; a cache
that is corrupt or cannot be written only costs the time."""

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


def test_the_cached_validator_judges_as_fastjsonschema_compile(cache, monkeypatch):
    doc = json.loads(SAMPLE.read_text())
    want = fastjsonschema.compile(bundle_schema(), handlers={}, use_default=False)
    made = resources.schema_validator(bundle_schema())
    assert len(list((cache / "validators").iterdir())) == 1
    monkeypatch.setattr(fastjsonschema, "compile_to_code", lambda *a, **k: pytest.fail("regenerated"))
    loaded = resources.schema_validator(bundle_schema())
    for validate in (made, loaded):
        assert verdict(validate, doc) == "ok"
        assert [verdict(validate, d) for d in spoiled(doc)] == [verdict(want, d) for d in spoiled(doc)]
    assert all(verdict(loaded, d) != "ok" for d in spoiled(doc))


def test_a_corrupt_or_unwritable_cache_costs_only_time(cache, tmp_path, monkeypatch):
    doc = json.loads(SAMPLE.read_text())
    resources.schema_validator(bundle_schema())
    (entry,) = (cache / "validators").iterdir()
    entry.write_bytes(b"\x00 not marshal")
    assert verdict(resources.schema_validator(bundle_schema()), doc) == "ok"
    assert verdict(resources.schema_validator(bundle_schema()), doc) == "ok"  # rewritten, loads again
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the cache folder cannot be made
    assert verdict(resources.schema_validator(bundle_schema()), doc) == "ok"
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
