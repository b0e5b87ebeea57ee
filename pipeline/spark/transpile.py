"""DuckDB SQL (the files in sql/) to Spark SQL, with sqlglot.

What does not carry over by dialect alone is rewritten on the parsed tree, once per file:
- `getvariable('x')` becomes the run's value of x, as a literal (Spark has no session variables
  that a view could read);
- the macros of sql/macros.sql are expanded in place, their parameters replaced by the call's
  arguments;
- ingest's parsing functions: `isfinite`, `regexp_full_match`, `strlen`, `list_count`,
  `left(s, -n)`, `epoch(timestamp)` and a cast of JSON text to a list of integers, each as the
  Spark expression that answers the same (`_ingest_function`);
- `hash(...)` (DuckDB's unsigned 64-bit hash, which the stages compare for equality only: exact
  duplicate rows) becomes Spark's `xxhash64(...)` shifted to unsigned: other numbers, equal where
  DuckDB's are. The seeded uniforms are a portable hash in plain arithmetic (stg_requests.sql),
  the same bits on both engines;
- bit operations (`xor(a, b)`, `&`, `|`, `<<`, `>>`) are parenthesized (Spark's `^` binds looser
  than `+`).
"""

from __future__ import annotations

import re
from functools import lru_cache

import sqlglot
import sqlglot.expressions as exp

from servetrace.resources import SQL_DIR

_MACRO = re.compile(r"create\s+or\s+replace\s+macro\s+(\w+)\s*\(([^)]*)\)\s+as\s+(.*?);", re.I | re.S)
_SIGNED_OFFSET = 9223372036854775808.0  # 2^63: xxhash64 is signed
BITWISE = (exp.BitwiseXor, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseLeftShift, exp.BitwiseRightShift)


def _literal(value) -> exp.Expression:
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[_literal(v) for v in value])
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if value is None:
        return exp.Null()
    if isinstance(value, float):
        return _double(exp.Literal.number(repr(value)))  # repr keeps every digit
    return exp.Literal.number(value)


def _double(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("double"))


def _is_fractional(node: exp.Expression) -> bool:
    """A numeric literal with a point or an exponent: DuckDB reads it as a double, Spark as a
    decimal (whose arithmetic rounds to a fixed scale), so it is cast to double."""
    return isinstance(node, exp.Literal) and not node.is_string and any(c in node.this for c in ".eE")


@lru_cache(maxsize=None)
def _macros() -> dict[str, tuple[list[str], str]]:
    text = "\n".join(line for line in (SQL_DIR / "macros.sql").read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("--"))
    return {m.group(1).lower(): ([p.strip() for p in m.group(2).split(",")], m.group(3))
            for m in _MACRO.finditer(text)}


def _function_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return None


def to_spark(duckdb_sql: str, variables: dict, types: dict[str, str] | None = None) -> str:
    """One DuckDB SELECT as Spark SQL, variables bound. `types`: the Spark types (simple strings)
    of the columns it reads, where known: a cast of a column that is not text needs no guard."""
    return _tree(duckdb_sql, variables, types).sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)


def to_spark_steps(name: str, duckdb_sql: str, variables: dict) -> list[tuple[str, str]]:
    """A stage file as Spark SQL steps: each CTE its own temporary view `<name>__<cte>`, then the
    final query as `name`. Spark 4.1's optimizer fails on some CTE chains with grouping sets
    ("key not found" in its CTE rules); views of the same queries are inlined as plain subqueries."""
    tree = _tree(duckdb_sql, variables)
    with_ = tree.args.get("with_") or tree.args.get("with")
    ctes = list(with_.expressions) if with_ else []
    renamed = {cte.alias: f"{name}__{cte.alias}" for cte in ctes}

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in renamed:
            alias = node.args.get("alias")
            return exp.Table(this=exp.to_identifier(renamed[node.name]),
                             alias=alias.copy() if alias else exp.TableAlias(this=exp.to_identifier(node.name)))
        return node

    steps = []
    for cte in ctes:
        steps.append((renamed[cte.alias], cte.this.copy().transform(rename)))
    body = tree.copy()
    body.set("with_", None)
    body.set("with", None)
    steps.append((name, body.transform(rename)))
    return [(view, query.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)) for view, query in steps]


def _tree(duckdb_sql: str, variables: dict, types: dict[str, str] | None = None) -> exp.Expression:
    macros = _macros()

    def rewrite(node: exp.Expression) -> exp.Expression:
        name = _function_name(node)
        if name == "getvariable":
            key = node.expressions[0].name
            if key not in variables:
                raise KeyError(f"SQL reads variable {key!r}, which the run did not set")
            return _literal(variables[key])
        if name in macros:
            params, body = macros[name]
            args = dict(zip(params, node.expressions))
            tree = sqlglot.parse_one(body, read="duckdb")
            tree = tree.transform(lambda n: args[n.name].copy()
                                  if isinstance(n, exp.Column) and not n.table and n.name in args else n)
            return exp.Paren(this=tree.transform(rewrite))
        if isinstance(node, exp.Log) and node.expression is not None and node.this.name in ("2", "10"):
            # Spark's LOG(10, x) is ln(x) / ln(10): 2.9999999999999996 for 1000, so bins on powers
            # of ten (or two) would move; its LOG10 and LOG2 are exact there, as DuckDB's are
            return exp.Anonymous(this=f"LOG{node.this.name}", expressions=[node.expression.copy().transform(rewrite)])
        if isinstance(node, exp.PercentileCont) and not isinstance(node.parent, exp.WithinGroup):
            # quantile_cont(x, q): Spark's PERCENTILE interpolates linearly, as DuckDB does, and
            # takes an array of fractions too
            return exp.Anonymous(this="PERCENTILE", expressions=[node.this.copy().transform(rewrite),
                                                                 node.expression.copy().transform(rewrite)])
        if _is_fractional(node) and not isinstance(node.parent, exp.Cast):
            return _double(node.copy())
        if isinstance(node, BITWISE) and not isinstance(node.parent, exp.Paren):
            # DuckDB's xor(a, b) is Spark's a ^ b, which binds looser than + there: sqlglot writes
            # xor(a, b) + c as a ^ b + c, i.e. a ^ (b + c); parenthesized, it means what it says
            grouped = node.copy()
            for arg in ("this", "expression"):
                grouped.set(arg, grouped.args[arg].transform(rewrite))
            return exp.Paren(this=grouped)
        spark_form = _ingest_function(node, name, types or {})
        if spark_form is not None:
            return spark_form.transform(rewrite)
        if name == "hash":
            hashed = exp.Anonymous(this="xxhash64", expressions=[e.copy().transform(rewrite) for e in node.expressions])
            return exp.Paren(this=exp.Add(this=hashed, expression=exp.Literal.number(repr(_SIGNED_OFFSET))))
        return node

    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(rewrite)
    for group in tree.find_all(exp.Group):
        if group.args.get("all"):
            _expand_group_by_all(group)
    for select in list(tree.find_all(exp.Select)):
        _posexplode(select)
    return tree


def _spark(template: str, **parts: exp.Expression) -> exp.Expression:
    """A Spark SQL expression with the columns named in `parts` replaced by those expressions."""
    tree = sqlglot.parse_one(template, read="spark")
    return tree.transform(lambda n: parts[n.name].copy()
                          if isinstance(n, exp.Column) and not n.table and n.name in parts else n)


_INT_LIST = exp.DataType.build("bigint[]", dialect="duckdb")
# DuckDB's trim() strips Unicode space separators (category Zs), Spark's only ' '
_SPACES = "".join(map(chr, (0x20, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000)))
# A cast of text strips, on Spark, every character up to ' ' from both ends; on DuckDB none before a
# boolean, and only \t \n \v \f \r and ' ' before a number: where those differ, Spark's is null too.
# (Ordered so that a usual character, above ' ', is tested once per end.)
_EDGES = {exp.DataType.Type.BOOLEAN: "ASCII(x__) <= 32 OR ASCII(RIGHT(x__, 1)) <= 32",
          exp.DataType.Type.DOUBLE: "ASCII(x__) < 32 AND (ASCII(x__) < 9 OR ASCII(x__) > 13) "
                                    "OR ASCII(RIGHT(x__, 1)) < 32 AND (ASCII(RIGHT(x__, 1)) < 9 OR ASCII(RIGHT(x__, 1)) > 13)"}
_NUMBERS = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg)  # Spark's arithmetic answers a number, never text


def _not_text(node: exp.Expression, types: dict[str, str]) -> bool:
    """Whether `node`'s value is known not to be text with characters at its ends that the engines'
    casts treat apart (then its cast needs no guard): a number, boolean or null by its kind, a column
    of a known type that is not text, a literal without them, a cast to another type; else False."""
    if isinstance(node, exp.Paren):
        return _not_text(node.this, types)
    if isinstance(node, exp.Literal):
        return not node.is_string or not node.this or (ord(node.this[0]) > 32 and ord(node.this[-1]) > 32)
    if isinstance(node, exp.Column):
        kind = types.get(node.name)
        return kind is not None and not kind.startswith(("string", "varchar", "char"))
    if isinstance(node, exp.Cast):  # a TRY_CAST too
        return not node.to.is_type(*exp.DataType.TEXT_TYPES)
    if isinstance(node, exp.Coalesce):
        return all(_not_text(arg, types) for arg in (node.this, *node.expressions))
    return isinstance(node, (exp.Null, exp.Boolean, exp.Predicate, exp.Connector, exp.Not, *_NUMBERS))


def _ingest_function(node: exp.Expression, name: str | None, types: dict[str, str]) -> exp.Expression | None:
    """The Spark form of a DuckDB function ingest's checks use, or None."""
    if name == "isfinite":  # null stays null, as DuckDB's does
        return exp.Paren(this=_spark("NOT (ISNAN(x__) OR ABS(x__) = CAST('Infinity' AS DOUBLE))", x__=node.expressions[0]))
    if name == "strlen":  # bytes, not characters
        return _spark("OCTET_LENGTH(x__)", x__=node.expressions[0])
    if name == "list_count":  # the non-null elements
        return _spark("SIZE(FILTER(x__, v__ -> v__ IS NOT NULL))", x__=node.expressions[0])
    if isinstance(node, exp.RegexpFullMatch) and isinstance(node.expression, exp.Literal):
        return exp.RegexpLike(this=node.this.copy(), expression=exp.Literal.string(f"^(?:{node.expression.this})$"))
    if isinstance(node, exp.TryCast) and node.to == _INT_LIST:
        # JSON text of a list: each element read exactly (decimal), an integer past int64 becomes null
        return _spark("TRANSFORM(FROM_JSON(CAST(x__ AS STRING), 'array<decimal(38,0)>'), v__ -> TRY_CAST(v__ AS BIGINT))",
                      x__=node.this)
    if isinstance(node, exp.Trim) and node.expression is None and not node.args.get("position"):
        return exp.Trim(this=node.this.copy(), expression=exp.Literal.string(_SPACES), position="BOTH")
    if (isinstance(node, exp.TryCast) and node.to.this in _EDGES and not node.args.get("guarded")
            and not _not_text(node.this, types)):
        cast = node.copy()
        cast.set("guarded", True)
        return _spark(f"CASE WHEN {_EDGES[node.to.this]} THEN NULL ELSE c__ END", x__=node.this, c__=cast)
    if isinstance(node, exp.TimeToUnix):  # seconds with their fraction (Spark's UNIX_TIMESTAMP drops it)
        return _spark("UNIX_MICROS(x__) / CAST(1000000 AS DOUBLE)", x__=node.this)
    if isinstance(node, exp.Left) and isinstance(node.expression, exp.Neg):  # all but the last n characters
        return _spark("SUBSTRING(s__, 1, LENGTH(s__) - n__)", s__=node.this, n__=node.expression.this)
    return None


def _posexplode(select: exp.Select) -> None:
    """`unnest(list) as v, generate_subscripts(list, 1) as p` (each element with its 1-based
    position; Spark has no generate_subscripts and allows one generator per select) becomes
    `posexplode(list) as (p0, v)` in a subquery, with p = p0 + 1 outside it."""
    items = select.expressions
    exploded = [i for i in items if isinstance(i, exp.Alias) and isinstance(i.this, exp.Explode)]
    positions = [i for i in items if isinstance(i, exp.Alias) and _function_name(i.this) == "generate_subscripts"]
    if not (exploded and positions):
        return
    value, position = exploded[0], positions[0]
    if value.this.this != position.this.expressions[0]:
        return
    zero_based = f"{position.alias}__0"
    inner = select.copy()
    inner.set("expressions", [
        exp.Aliases(this=exp.Posexplode(this=value.this.this.copy()),
                    expressions=[exp.to_identifier(zero_based), exp.to_identifier(value.alias)])
        if item.alias == value.alias else item.copy()
        for item in items if item.alias != position.alias])
    outer = [exp.alias_(exp.Add(this=exp.column(zero_based), expression=exp.Literal.number(1)), position.alias)
             if item.alias == position.alias else exp.column(item.alias_or_name) for item in items]
    replacement = exp.select(*outer).from_(inner.subquery("posexploded"))
    select.replace(replacement)


def _expand_group_by_all(group: exp.Group) -> None:
    """`group by all` as the list of the select's expressions that are not aggregates (Spark's own
    GROUP BY ALL fails to resolve beside a join's USING columns)."""
    select = group.parent
    keys = [item.unalias().copy() for item in select.expressions
            if not item.unalias().find(exp.AggFunc)]
    group.set("all", None)
    group.set("expressions", keys)


def sql_file(name: str) -> str:
    from servetrace.stages.sql import sql_text

    return sql_text(name)
