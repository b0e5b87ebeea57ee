"""bench/RESULTS.md from results.json: targets, every figure with its ratios, scaling, generation."""

from __future__ import annotations

from pathlib import Path

NOTES = Path(__file__).with_name("profile_notes.md")


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or (isinstance(v, float) and v >= 1000):
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _met(m: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[m]


def render(doc: dict) -> str:
    mach, load = doc["machine"], doc["load"]
    out = ["# servetrace bench results", "",
           f"Made by `{doc['command']}` on {doc['created_at']} (commit {str(doc['git']['commit'])[:10]}, "
           f"{doc['git']['dirty_files']} files uncommitted). Each figure is the median of {doc['repeat']} runs "
           "of the whole process (wall time; peak RSS of the process tree, polled every 20 ms and "
           "checked against the kernel's maximum)."
           + (f" Merged: {', '.join(doc['merged']['measured_now'])} measured by this command; the other "
              f"{doc['merged']['kept']} figures come from `{doc['merged']['previous_command']}` of "
              f"{doc['merged']['previous_created_at']}." if doc.get("merged") else ""), "",
           f"Machine: {mach['cpus']} cores, {mach['memory_gb']} GB, {mach['platform']}, Python {mach['python']}, "
           + ", ".join(f"{k} {v}" for k, v in mach["versions"].items()) + ". "
           f"Load average (1 / 5 / 15 min) {' / '.join(f'{x:.2f}' for x in load['start'])} at the start, "
           f"{' / '.join(f'{x:.2f}' for x in load['end'])} at the end: the machine is shared, so absolute "
           "seconds are noisy; the ratios, measured side by side in one run, are the figures to read.", ""]

    out += ["## Targets", ""]
    out += _table(["target", "where", "value", "result", "note"],
                  [[t["target"], t["where"], _num(t["value"]), _met(t["met"]), t.get("note") or ""]
                   for t in doc["targets"]])

    out += ["## Every figure", "",
            "`x proxy`: median time over the DuckDB proxy's on the same trace; `x pandas`: over the pandas "
            "baseline's (below 1 = faster than pandas). `CPU s`: user + system seconds of the process and its "
            "children, summed over threads (less sensitive to the machine's load than wall time).", ""]
    measured = [m for m in doc["measurements"] if m["status"] == "ok"]
    out += _table(["trace", "rows", "measurement", "median s", "min s", "CPU s", "rows/s", "peak RSS MB", "x proxy",
                   "x proxy (CPU)", "x pandas", "load (1 min)"],
                  [[m["trace"] or "–", _num(m["rows"]), m["name"], _num(m["median_s"]), _num(m["min_s"]), _num(m.get("cpu_s")),
                    _num(m["rows_per_s"]), _num(m["peak_rss_mb"]), _num(m.get("x_proxy")),
                    _num(m.get("x_proxy_cpu")), _num(m.get("x_pandas")), _num(m.get("load_1m"))]
                   for m in measured])
    not_run = [m for m in doc["measurements"] if m["status"] != "ok"]
    if not_run:
        out += ["Not measured in this run:", ""]
        out += [f"- {m['name']}" + (f" ({m['trace']})" if m["trace"] else "") + f": {m['status']}, {m['reason']}"
                for m in not_run] + [""]

    parts = [m for m in measured if m.get("timings_s")]
    if parts:
        names = ["ingest", "stages", "bundle", "report"]
        out += ["## characterize by part", "",
                "Wall seconds of each part as the command clocks them (`--json` `timings_s`, last run); the "
                "rest of the process time is start-up and imports.", ""]
        out += _table(["trace", "measurement", *names, "process s"],
                      [[m["trace"], m["name"], *(_num(m["timings_s"].get(n)) for n in names), _num(m["median_s"])]
                       for m in parts])

    if doc["scaling"]:
        out += ["## Time vs rows", "",
                "Exponent b of t ~ rows^b between consecutive sizes: 1 is linear; below 1 while the fixed "
                "start-up cost (Python, imports) still weighs.", ""]
        out += _table(["measurement", "schema", "rows -> median s (peak RSS MB)", "exponents"],
                      [[s["name"], s["schema"], "; ".join(f"{_num(p['rows'])} -> {_num(p['median_s'])} s "
                                                           f"({_num(p['peak_rss_mb'])})" for p in s["points"]),
                        ", ".join(_num(e) for e in s["exponents"])] for s in doc["scaling"]])

    gens = [m for m in measured if (m["name"].startswith("generate") or m["name"].startswith("bundle"))
            and m.get("requested") is None]
    anchor = doc["servegen_anchor"]
    out += ["## Generation and the ServeGen anchor", "",
            f"ServeGen's own `generate_workload` cannot be installed here, so the comparison is with its "
            f"published figure: {anchor['requests']:,} requests for one hour of {anchor['pool']} in "
            f"{anchor['wall_s']:g} s, about {anchor['requests_per_s'] / 1e3:.0f} k requests/s "
            "(and about 30 s to load that pool).", ""]
    out += _table(["measurement", "median s", "requests", "requests/s (generate + write)",
                   "requests/s (whole process)", "x ServeGen", "peak RSS MB", "how"],
                  [[m["name"], _num(m["median_s"]), _num(m.get("requests")), _num(m.get("requests_per_s_inner")),
                    _num(m.get("requests_per_s_process")), _num(m.get("x_servegen")), _num(m["peak_rss_mb"]),
                    m.get("via") or m.get("note") or ""] for m in gens])

    out += sized_section(doc)
    if NOTES.exists():
        out += [NOTES.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)


def sized_section(doc: dict) -> list[str]:
    """Sized generation (`--generate-requests`): CPU and wall rates, peak RSS, the load each ran at."""
    sized = [m for m in doc["measurements"] if m.get("requested") is not None]
    if not sized:
        return []
    out = ["## Sized generation", "",
           "`servetrace generate` of the Azure 2023 conversation bundle with `--rate-scale` chosen for each "
           "size; one run at 100 M and above. Per CPU second: requests over user + system seconds of "
           "generation + write (the command's own CPU clock) and of the whole process (start-up included); "
           "per wall second: generation + write from the command's own clock. Targets: >= 2 M requests/s "
           "(the first rate where measured), peak RSS <= 1 GiB.", ""]
    rows = []
    for m in sized:
        load = m.get("load_1min") or [None, None]
        rows.append([f"{m['requested']:,}", _num(m["rows"]) if m["status"] == "ok" else m["status"], _num(m.get("cpu_s")),
                     _num(m.get("requests_per_s_cpu_inner")), _num(m.get("requests_per_s_cpu")), _num(m["median_s"]),
                     _num(m.get("requests_per_s_inner")),
                     _num(m["peak_rss_mb"]), _num(m.get("output_mb")), f"{_num(load[0])} -> {_num(load[1])}",
                     _num(m.get("nice"))])
    return out + _table(["requested", "written", "CPU s", "requests / CPU s (generate + write)",
                         "requests / CPU s (process)", "wall s", "requests / wall s (generate + write)",
                         "peak RSS MB", "output MB", "load (1 min)", "nice"], rows)

