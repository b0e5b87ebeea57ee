"""The fidelity page: the checks as a table, then the source and synthetic traces side by side."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.blocks import h2, note, page_html, table_html

W, H = 460, 220


def _checks_table(f: dict) -> dict:
    """Each check beside its noise floors (seed to seed, half to half: validation/noise.py, and for
    the reuse checks validation/reuse.py) and whether its value is within them."""
    rows, classes = [], []
    for name, c in f["checks"].items():
        verdict = "skipped" if c["pass"] is None else ("pass" if c["pass"] else "fail")
        floor = c.get("noise_floor")
        seed, half = (floor["seed_to_seed"], floor["half_to_half"]) if isinstance(floor, dict) else (None, floor)
        noise = {True: "within", False: "beyond", None: ""}[c.get("within_noise")]
        rows.append([name, c["value"], c["threshold"], verdict if c["pass"] is not None else c.get("reason", ""),
                     seed, half, noise])
        classes.append({"pass": "pass", "fail": "fail"}.get(verdict, "skip"))
    return table_html(["check", "value", "threshold", "result", "floor: seed to seed", "floor: half to half",
                       "noise"], rows, classes)


def _side_by_side(f: dict) -> dict:
    rows = [["rows", f["rows"]["source"], f["rows"]["synthetic"]],
            ["mean rate (req/s)", f["mean_rps"]["source"], f["mean_rps"]["synthetic"]],
            ["inter-arrival CV", f["iat_cv"]["source"], f["iat_cv"]["synthetic"]]]
    rows += [[f"IDC at {s} s", p["source"], p["synthetic"]] for s, p in f["idc"].items()]
    rows += [[f"mean {k[5:]} tokens", p["source"], p["synthetic"]] for k, p in f.items() if k.startswith("mean_")
             and k != "mean_rps"]
    rows += [[f"Spearman {k.replace('_', '-')}", p["source"], p["synthetic"]] for k, p in f["spearman"].items()]
    rows += [[f"top-{k} client share", p["source"], p["synthetic"]] for k, p in f["top_share"].items()]
    rows.append(["failure rate", f["failure_rate"]["source"], f["failure_rate"]["synthetic"]])
    return table_html(["metric", "source", "synthetic"], rows)


def _rate_chart(windows: pl.DataFrame) -> dict:
    long = windows.unpivot(index="window_start_s", on=["source_rps", "synthetic_rps"],
                           variable_name="trace", value_name="rps")
    long = long.with_columns(pl.col("trace").str.replace("_rps", ""), (pl.col("window_start_s") / 3600).alias("hour"))
    rates = vl.chart(long, vl.mark("line", point=True), x=vl.field("hour:Q", title="hours since origin"),
                     y=vl.field("rps:Q", title="requests / s"), color="trace:N")
    ape = vl.chart(windows.with_columns((pl.col("window_start_s") / 3600).alias("hour"),
                                        (pl.col("ape") * 100).alias("ape_pct")), "bar",
                   x=vl.field("hour:Q", title="hours since origin"), y=vl.field("ape_pct:Q", title="abs. error (%)"))
    return vl.hconcat({**rates, "width": W, "height": H, "title": "Rate per window"},
                      {**ape, "width": W, "height": H, "title": "Rate error per window"})


def _idc_chart(f: dict) -> dict:
    rows = [{"scale_s": s, "trace": t, "idc": p[t]} for s, p in f["idc"].items() for t in ("source", "synthetic")
            if p[t] is not None]
    return {**vl.chart(rows, "bar", x=vl.field("scale_s:N", title="bin (s)", sort=None), xOffset="trace:N",
                       y=vl.field("idc:Q", title="index of dispersion", scale={"type": "log"}), color="trace:N"),
            "width": W, "height": H, "title": "Index of dispersion of counts"}


def _length_chart(q: pl.DataFrame) -> dict:
    return {**vl.chart(q.filter(pl.col("tokens") > 0), "line",
                       x=vl.field("tokens:Q", scale={"type": "log"}, title="tokens"), y=vl.field("prob:Q", title="CDF"),
                       color="trace:N", column=vl.field("field:N", title=None)),
            "width": 300, "height": H, "title": "Length distributions"}


def fidelity_page(f: dict, tables: dict[str, pl.DataFrame], title: str) -> str:
    verdict = "all checks pass" if f["pass"] else "some checks fail"
    blocks: list = [note(f"{verdict}; {f['windows_compared']} rate windows of {f['window_s']} s compared"),
                    h2("Checks"), _checks_table(f), h2("Side by side"), _side_by_side(f)]
    if tables["windows"].height:
        blocks += [h2("Rate"), _rate_chart(tables["windows"])]
    blocks += [h2("Burstiness"), _idc_chart(f)]
    if tables["length_quantiles"].height:
        blocks += [h2("Lengths"), _length_chart(tables["length_quantiles"])]
    return page_html(title, blocks)
