"""What servetrace derives once: the bundle validator (shipped as Python, else compiled once per process) and the report
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
    want = fastjsonschema.compile(copy.deepcopy(bundle_schema()), handlers={}, use_default=False)  # it adds to its input
    made = resources.schema_validator(bundle_schema())
    assert resources.schema_validator(bundle_schema()) is made  # compiled once per process
    assert verdict(made, doc) == "ok"
    assert [verdict(made, d) for d in spoiled(doc)] == [verdict(want, d) for d in spoiled(doc)]
    assert all(verdict(made, d) != "ok" for d in spoiled(doc))
    assert not (cache / "validators").exists()  # no code is kept between processes


def test_the_shipped_bundle_check_is_the_schema_s_and_judges_as_compiled():
    """bundle/schema_check.py is fastjsonschema's code for the schema as it is now (`make schema-check`
    after a schema edit), and the bundle's validation takes it instead of compiling the schema."""
    from servetrace.bundle import model, schema_check

    text = json.dumps(bundle_schema(), sort_keys=True)
    assert schema_check.SCHEMA_SHA256 == resources._fingerprint(text), "stale: run `make schema-check`"
    if schema_check.VERSION == fastjsonschema.VERSION:  # the same generator writes the same code
        shipped = (Path(model.__file__).with_name("schema_check.py")).read_text(encoding="utf-8")
        assert resources.schema_code(bundle_schema(), "schemas/bundle.schema.json") == shipped
    model._fast_validator.cache_clear()
    assert model._fast_validator() is schema_check.validate
    doc = json.loads(SAMPLE.read_text())
    want = fastjsonschema.compile(copy.deepcopy(bundle_schema()), handlers={}, use_default=False)
    assert verdict(schema_check.validate, doc) == "ok"
    assert [verdict(schema_check.validate, d) for d in spoiled(doc)] == [verdict(want, d) for d in spoiled(doc)]


def test_a_stale_shipped_check_is_not_used(monkeypatch):
    from servetrace.bundle import schema_check

    monkeypatch.setattr(schema_check, "SCHEMA_SHA256", "0" * 64)  # made from another schema
    made = resources.schema_validator(bundle_schema(), "servetrace.bundle.schema_check")
    assert made is not schema_check.validate
    assert made is resources.schema_validator(bundle_schema())  # compiled, once per process
    assert resources.schema_validator(bundle_schema(), "servetrace.no_such_module") is made


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
