"""How one CSV line moves the quote state, as DuckDB's reader moves it (both engines use this).

A quote character opens a quoted field only where a field starts (first in the record or after a
delimiter), or after one space there (two spaces make it text). Elsewhere (`gpt"4`) it is a
character of the value. Inside a quoted field a quote closes it; a quote right after it (`""`),
or after spaces (`"a" "b"`), opens it again.
After the close, anything up to the delimiter makes the record unreadable ("unquoted value") and
is read as an unquoted field's text, whose quotes are characters.

So a line is one of four functions of the state it starts in (inside a quoted field or not):
keep, flip, set open, set closed. Two regular expressions (RE2 in DuckDB, java.util.regex in
Spark: the same syntax, no look-around) say where a line ends when it starts outside a quoted
field (`opens`) and when it starts inside one (`stays_open`). The state at a line is the value
of the last constant line before it, flipped once per flip between; a line with no quote keeps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuotePatterns:
    """Whole-line regular expressions: `opens`: starting outside a quoted field, the line ends
    inside one; `stays_open`: starting inside, it ends inside; `clean`: a whole record (its
    lines joined by newlines) with no text after a closing quote and no open quote. In a record
    with no open quote followed by a delimiter, `token` finds each field with its delimiter (a
    field with text after its closing quote is one field, as DuckDB counts it), and `quoted`
    matches a quoted one (group 1: between its quotes, where `" *"` is a quote or the spaces)."""

    opens: str
    stays_open: str
    clean: str
    token: str
    quoted: str


def quote_patterns(delimiter: str) -> QuotePatterns:
    d = regex_literal(delimiter)
    body = '[^"]*(?:" *"[^"]*)*'  # inside a quoted field: a quote followed by (spaces and) a quote reopens it
    quoted = f'"{body}"'  # a closed quoted field
    after = f' *(?:[^ "{d}][^{d}]*)?'  # after the close: spaces, or unreadable text read as unquoted
    text = f'(?:(?:[^ "{d}]| [^"{d}])[^{d}]*| ?)'  # an unquoted field: no quote first, nor after one space
    field = f'(?: ?{quoted}{after}|{text})'
    fields = f'(?:{field}{d})*'  # whole fields from the record's start
    opens = f'{fields} ?"{body}'
    stays_open = f'{body}(?:"{after}{d}{fields} ?"{body})?'
    clean = f'(?: ?{quoted} *|{text})'
    return QuotePatterns(opens, stays_open, f'{clean}(?:{d}{clean})*', f'{field}{d}', f'^ ?"({body})" *{d}$')


def regex_literal(ch: str) -> str:
    """A delimiter inside a regular expression's character class or sequence."""
    return "\\" + ch if not ch.isalnum() and ch not in ("\t", " ") else ch
