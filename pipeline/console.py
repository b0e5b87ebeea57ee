"""What each command prints: its summary dict as a few lines of text, written here and nowhere else.

Every command returns a summary dict (what `--json` prints); `text(command, summary)` is its human form.
"""

from __future__ import annotations

from typing import Callable


def ingest(s: dict) -> str:
    line = (
        f"{s['source']}: {s['format']} -> {s['requests']}\n"
        f"rows read {s['rows_read']:,} = kept {s['rows_kept']:,} + rejected {s['rows_rejected']:,}"
    )
    if s.get("cached"):
        line += " (unchanged source: reused)"
    if s.get("was_sorted") is False:
        line += "\ninput was not in arrival order: sorted"
    if s.get("reject_reasons"):
        line += "\nrejects: " + ", ".join(f"{r} ({n:,})" for r, n in s["reject_reasons"].items())
    return line


def characterize(s: dict) -> str:
    """Row accounting, one statement per finding, what is absent; last, where the outputs are."""
    if s.get("characterized") is False:  # a ServeGen pool: imported, not characterized
        return (f"{s['source']}: imported as a bundle\n{servegen_import(s['imported'])}\n"
                f"not characterized: {s['not_characterized']}")
    lines = [f"{s['source']}: {s['rows_kept']:,} requests kept of {s['rows_read']:,} read"
             + (" (unchanged source: ingest reused)" if s.get("cached") else "")]
    lines += [f"  {area}: {text}" for area, text in s["statements"].items()]
    lines += [f"  {area}: absent ({why})" for area, why in s["absent"].items()]
    lines += ["outputs:",
              f"  report    {s['report']}",
              f"  findings  {s['findings']} ({len(s['tables'])} tables in {s['tables_dir']})",
              f"  bundle    {s['bundle']}"]
    return "\n".join(lines)


def fit(s: dict) -> str:
    return (f"{s['bundle']}: {s['clients']} clients (by {s['group_by']}), {s['category']}, "
            f"{s['windows']} windows, {s['bytes'] / 1e6:.2f} MB")


def servegen_import(s: dict) -> str:
    text = fit(s)
    if s["missing_datasets"]:
        text += (f"\n{len(s['missing_datasets'])} trace file(s) without a dataset file upstream (ServeGen skips them too): "
                 + ", ".join(s["missing_datasets"]))
    if s["dropped_dataset_windows"]:
        text += f"\n{s['dropped_dataset_windows']} dataset window(s) with an empty field skipped, as ServeGen does"
    return text


def generate(s: dict) -> str:
    rate = f"{s['requests_per_s'] / 1e6:.2f} M requests/s" if s["requests_per_s"] else ""
    return (f"{s['out']}: {s['requests']:,} requests from {s['clients']} clients over {s['duration_s']:g} s "
            f"({s['format']}; {rate}; {s.get('arrival_model', 'renewal')} arrivals)" + (f"\nwarning: {s['pool_exhausted_cells']} window(s) cut short"
                                          if s["pool_exhausted_cells"] else ""))


def validate(result: dict) -> str:
    failed = [k for k, c in result["checks"].items() if c["pass"] is False]
    head = "fidelity: all checks pass" if result["pass"] else f"fidelity: {len(failed)} check(s) fail: {', '.join(failed)}"
    lines = [head, f"  {'check':<24} {'value':>10}  {'threshold':<11} {'':<4}  noise floor: seed/seed  half/half"]
    for k, c in result["checks"].items():
        mark = {True: "pass", False: "FAIL", None: "skip"}[c["pass"]]
        line = f"  {k:<24} {_num(c['value']):>10}  <= {c['threshold']:<8g} {mark}"
        floor = c.get("noise_floor")
        if isinstance(floor, dict):  # the arrival checks: both floors, and whether a miss is within them
            within = {True: "  within noise", False: "  beyond noise", None: ""}[c["within_noise"]]
            line += f"  {_num(floor['seed_to_seed']):>21}  {_num(floor['half_to_half']):>9}{within}"
        lines.append(line)
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.4g}"


def provision(result: dict) -> str:
    lines = [f"target: {result['latency']}"]
    for name, cap in result["capacity"].items():
        err = result["error"].get(name)
        extra = "" if err is None else f"  ({err:+.1%} vs source)"
        why = result["search"][name].get("reason")
        lines.append(f"  {name:<8} {cap if cap is not None else '–':>7} servers{extra}" + (f"  [{why}]" if why else ""))
    return "\n".join(lines)


def export(s: dict) -> str:
    return f"{s['format']}: wrote {s['path']}" + "".join(
        f"\n{c['release']}: {c['command']}" for c in s.get("commands", {}).values())


def report(s: dict) -> str:
    return f"report: {s['report']}"


TEXT: dict[str, Callable[[dict], str]] = {
    "ingest": ingest, "characterize": characterize, "fit": fit, "bundle from-servegen": servegen_import,
    "generate": generate, "validate": validate, "provision": provision, "export": export, "report": report,
}


def text(command: str, summary: dict) -> str:
    """The human output of `command` for its summary."""
    return TEXT[command](summary)
