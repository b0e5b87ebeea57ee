"""The layout rule the README states: small modules."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_no_module_holds_a_sql_statement():
    """SQL lives in sql/: no Python line starts a statement's clause (a select, a CTE, a join)."""
    import re

    clause = re.compile(r"^\s*(f?[\"']{1,3})?\s*(select\s+[\w*(]|with\s+\w+\s+as\s*\(|from\s+\(\s*select|"
                        r"(left\s+|asof\s+)*join\s+\w+\s+(on|using)\b|group\s+by\s+\w|copy\s*\(\s*select)")
    found = {f"{p.relative_to(PACKAGE)}:{i}": line.strip() for p in PACKAGE.rglob("*.py")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if clause.match(line)}
    assert found == {}
