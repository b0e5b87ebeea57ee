"""Each input format as a mapping from its columns onto the canonical ones.

A FormatSpec names, for each canonical column it fills, the source column it comes from; the
SQL in canonical.py does the parsing, so a format is data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servetrace.errors import ServetraceError
from servetrace.ingest.source import Source
from servetrace.schema import AGENT_COLUMNS


@dataclass(frozen=True)
class FormatSpec:
    name: str  # the detected format, e.g. "burstgpt-v3"
    columns: dict[str, str]  # canonical column -> source column
    time_unit: str  # s | ms | us | ns | datetime | auto
    origin: str  # day: shift to local midnight of day 0 | none: keep the source clock
    failed: str = "false"  # SQL over canonical columns: when a row is a failed request
    service_map: str | None = None  # "logtype": BurstGPT 'Conversation log' -> 'conversation'
    required: tuple[str, ...] = ("arrival_s", "input_tokens", "output_tokens")
    json_paths: dict[str, str] = field(default_factory=dict)  # JSONL: source column -> JSON key
    hash_ids: str | None = None  # source column with KV block ids
    parent_link: tuple[str, str] | None = None  # Bailian (chat_id, parent_chat_id): sessions
    flattened: bool = False  # read from an agentic format's flattened intermediate (ingest/agentic)


BURSTGPT_V1 = ("Timestamp", "Model", "Request tokens", "Response tokens", "Log Type")
AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE = ("timestamp", "input_length", "output_length")
BAILIAN = ("chat_id", "timestamp", "input_length", "output_length")
# Names a generic file may use for a canonical column without a --map.
ALIASES = {
    "arrival_s": ("arrival_s", "timestamp", "ts", "time", "arrival", "arrival_time", "created_at"),
    "client_id": ("client_id", "client", "user", "user_id", "customer", "api_key", "tenant"),
    "session_id": ("session_id", "session", "conversation_id", "chat_id"),
    "model": ("model", "model_name"),
    "service": ("service", "log_type", "type", "endpoint"),
    "input_tokens": ("input_tokens", "input_length", "prompt_tokens", "request_tokens", "context_tokens"),
    "output_tokens": ("output_tokens", "output_length", "completion_tokens", "response_tokens", "generated_tokens"),
    "reason_tokens": ("reason_tokens", "reasoning_tokens"),
    "image_count": ("image_count", "num_images", "images"),
    "image_tokens": ("image_tokens",),
    "latency_s": ("latency_s", "latency", "elapsed_s", "elapsed_time"),
    "failed": ("failed", "is_failed", "error"),
    **{name: (name,) for name in AGENT_COLUMNS},  # the agent columns by their canonical names only
}


def _has(header: list[str], names: tuple[str, ...]) -> bool:
    return set(names) <= set(header)


def detect_format(src: Source) -> str:
    h = src.header
    if src.container == "jsonl":
        if "chat_id" in h:
            return "bailian"
        if _has(h, MOONCAKE):
            return "mooncake"
        return "generic"
    if _has(h, BURSTGPT_V1):
        return "burstgpt"
    if _has(h, AZURE):
        return "azure"
    return "generic"


def _require(src: Source, fmt: str, names: tuple[str, ...], jsonl: bool = False) -> None:
    if jsonl and src.container != "jsonl":
        raise ServetraceError(f"{src.path}: not a {fmt} trace: expected JSON lines")
    missing = [n for n in names if n not in src.header]
    if missing:
        raise ServetraceError(
            f"{src.path}: not a {fmt} trace: missing column(s) {', '.join(missing)} (found: {', '.join(src.header[:12])})"
        )


def format_spec(src: Source, fmt: str, mapping: dict[str, str], time_unit: str) -> FormatSpec:
    """The spec for `fmt` ("auto" detects it) checked against the file's header."""
    if fmt == "auto":
        fmt = detect_format(src)
    if fmt == "burstgpt":
        _require(src, fmt, BURSTGPT_V1)
        cols = {
            "arrival_s": "Timestamp",
            "model": "Model",
            "input_tokens": "Request tokens",
            "output_tokens": "Response tokens",
            "service": "Log Type",
        }
        v3 = "Session ID" in src.header
        if v3:
            cols["session_id"] = "Session ID"
            if "Elapsed time" in src.header:
                cols["latency_s"] = "Elapsed time"
        return FormatSpec(
            "burstgpt-v3" if v3 else "burstgpt-v1",
            cols,
            "s",
            "day",
            failed="output_tokens = 0",
            service_map="logtype",
        )
    if fmt == "azure":
        _require(src, fmt, AZURE)
        cols = {"arrival_s": "TIMESTAMP", "input_tokens": "ContextTokens", "output_tokens": "GeneratedTokens"}
        name = "azure"
        if "NumImages" in src.header:
            cols["image_count"] = "NumImages"
            name = "azure-multimodal"
        return FormatSpec(name, cols, "datetime", "day")
    if fmt == "mooncake":
        _require(src, fmt, MOONCAKE, jsonl=True)
        cols = {"arrival_s": "timestamp", "input_tokens": "input_length", "output_tokens": "output_length"}
        if "session_id" in src.header:
            cols["session_id"] = "session_id"
        paths = {c: c for c in cols.values()}
        has_hash = "hash_ids" in src.header
        return FormatSpec("mooncake", cols, "ms", "none", json_paths=paths, hash_ids="hash_ids" if has_hash else None)
    if fmt == "bailian":
        _require(src, fmt, BAILIAN, jsonl=True)
        cols = {"arrival_s": "timestamp", "input_tokens": "input_length", "output_tokens": "output_length"}
        if "type" in src.header:
            cols["service"] = "type"
        if "turn" in src.header:
            cols["turn"] = "turn"
        keys = list(cols.values()) + ["chat_id"] + (["parent_chat_id"] if "parent_chat_id" in src.header else [])
        return FormatSpec(
            "bailian",
            cols,
            "s",
            "day",
            json_paths={k: k for k in keys},
            hash_ids="hash_ids" if "hash_ids" in src.header else None,
            parent_link=("chat_id", "parent_chat_id") if "parent_chat_id" in src.header else ("chat_id", ""),
        )
    if fmt == "generic":
        return generic_spec(src, mapping, time_unit)
    raise ServetraceError(f"{src.path}: format {fmt!r} cannot be read as a row trace")


def generic_spec(src: Source, mapping: dict[str, str], time_unit: str) -> FormatSpec:
    unknown = [s for s in mapping if s not in src.header]
    if unknown:
        raise ServetraceError(f"{src.path}: --map names column(s) not in the file: {', '.join(unknown)}")
    cols = {dst: s for s, dst in mapping.items()}
    lower = {h.lower(): h for h in src.header}
    for canonical, names in ALIASES.items():
        if canonical in cols:
            continue
        for name in names:
            if name in lower and lower[name] not in cols.values():
                cols[canonical] = lower[name]
                break
    missing = [c for c in ("arrival_s", "input_tokens", "output_tokens") if c not in cols]
    if missing and src.container == "csv" and sum(map(_numeric, src.header)) * 2 >= len(src.header):
        raise ServetraceError(f"{src.path}: no header line (the first line is data: {','.join(src.header[:6])})")
    if missing:
        raise ServetraceError(
            f"{src.path}: cannot find column(s) for {', '.join(missing)}; "
            f"name them with --map SRC=canonical (found: {', '.join(src.header[:12])})"
        )
    paths = {c: c for c in cols.values()} if src.container == "jsonl" else {}
    hash_ids = "hash_ids" if "hash_ids" in src.header else None
    # A `failed` column, when mapped, is parsed in canonical.py; without one, a request that
    # produced no output failed, as BurstGPT defines it.
    return FormatSpec("generic", cols, time_unit, "day", json_paths=paths, hash_ids=hash_ids,
                      failed="output_tokens = 0")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
