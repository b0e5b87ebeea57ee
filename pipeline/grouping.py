"""What a client is: the one `--group-by` vocabulary, the default choice, and how a group is named.

A grouping is a set of the request table's grouping columns, always in the order of `COLUMNS`,
or none ("all": every request in one group). `characterize` (the stages) and `fit` (the bundle)
take the same words and choose the same default:
- `client_id`, `session_id`, `model`, `service`, or several joined by "," (`model,service`);
- `all`: one group;
- default: client ids when the trace has any, else model and service (those present) when either
  takes more than one value (a null counts as a value), else sessions, else one group.

A group's name is its columns' values joined by "|" in that order, a null value named "(none)":
"GPT-4|api" under `model,service`. The same name is a bundle client's `id` and a stage table's
`group_key` / `level`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from servetrace.errors import ServetraceError

COLUMNS = ("client_id", "session_id", "model", "service")
IDS = ("client_id", "session_id")  # high-cardinality columns: named from the row, not by counting
ALL = "all"
SEPARATOR = "|"
NONE = "(none)"  # the name of a missing value
CHOICES = ("client_id", "session_id", "model", "service", "model,service", ALL)  # the usual ones, for help text
HELP = (f"Client grouping: {'|'.join(CHOICES)}, or grouping columns joined by ',' "
        "(default: client_id when present, else model,service, else session_id, else all).")


@dataclass(frozen=True)
class Grouping:
    columns: tuple[str, ...]
    reason: str = "chosen with --group-by"

    @property
    def name(self) -> str:
        """How outputs record it: the columns joined by ',' ('all' for none)."""
        return ",".join(self.columns) if self.columns else ALL

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in IDS)

    def sql_variables(self) -> dict:
        """What sql/macros.sql's group_key_of and stg_requests' key_part read."""
        return {"group_by": self.name, "group_ids": ",".join(self.ids),
                "group_model": "model" in self.columns, "group_service": "service" in self.columns}


def parse(text: str) -> Grouping:
    """The grouping a `--group-by` value names; a clear error for anything else."""
    words = [w.strip() for w in str(text).split(",")]
    if words == [ALL]:
        return Grouping(())
    unknown = [w for w in words if w not in COLUMNS]
    if unknown or len(set(words)) != len(words):
        raise ServetraceError(f"--group-by {text!r}: choose {', '.join(CHOICES)}, "
                              f"or columns of {', '.join(COLUMNS)} joined by ','")
    return Grouping(tuple(c for c in COLUMNS if c in words))


def choose(requested: str | None, present: Callable[[str], bool], varies: Callable[[str], bool]) -> Grouping:
    """The grouping to use: `requested` when given, else the default. `present(c)`: column c has a
    non-null value; `varies(c)`: it takes more than one value, a null counting as one."""
    if requested:
        return parse(requested)
    if present("client_id"):
        return Grouping(("client_id",), "client ids present")
    if any(varies(c) for c in ("model", "service")):
        cols = tuple(c for c in ("model", "service") if present(c))
        return Grouping(cols, f"no client ids: grouped by {' x '.join(cols)}")
    if present("session_id"):
        return Grouping(("session_id",), "no client ids, one model and service: grouped by session")
    return Grouping((), "no client ids and nothing to group by: one group")


def from_profile(profile: dict, requested: str | None) -> Grouping:
    """`choose` from the stages' trace profile (sql/marts/trace_profile.sql)."""
    n = int(profile.get("requests") or 0)

    def rows(c: str) -> int:
        return int(profile.get(f"{c}_rows") or 0)

    def varies(c: str) -> bool:
        return int(profile.get(f"{c}s") or 0) + (rows(c) < n) > 1

    return choose(requested, lambda c: rows(c) > 0, varies)


def name_parts(parts: list[str]) -> str:
    """A group's name from its columns' values (already '(none)' for nulls), in COLUMNS order."""
    return SEPARATOR.join(parts) if parts else ALL
