"""Arrivals and burstiness: inter-arrival distribution with fits, IDC by time scale, CV per window."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import (DECADE_LABELS, HEIGHT, WIDTH, Figure, table_with, frame, group_label, positive, rule_at, series,
                                     thin, time_axis, time_x)
from servetrace.report.values import family_name, fmt_duration, fmt_number, is_number, lookup


def family_label(findings: dict, family: str) -> str:
    """'gamma · KS 0.018 (best)': a fitted family as its legend names it, from arrivals.fits."""
    ks = lookup(findings, f"arrivals.fits.{family}.ks")
    label = family_name(family) + (f" · KS {fmt_number(ks)}" if is_number(ks) else "")
    return label + (" (best)" if lookup(findings, "arrivals.best_fit.family") == family else "")


def iat_distribution(inp) -> Figure:
    title = "Inter-arrival times, with the fitted families"
    df, cols = table_with(inp, "iat_hist", ("iat_s", "density"))
    if df is None:
        return Figure.absent("iat", title, cols)
    x, y = cols
    shown = positive(thin(df.select(pl.col(x).alias("iat_s"), pl.col(y).alias("density"))), "iat_s", "density")
    enc = dict(x=vl.field("iat_s:Q", scale={"type": "log"}, title="inter-arrival time (s)",
                          axis={"labelExpr": DECADE_LABELS}),
               y=vl.field("density:Q", scale={"type": "log"}, axis={"labelExpr": DECADE_LABELS},
                          title="probability density (1/s)"))
    layers = [vl.chart(shown, vl.mark("point", filled=True, size=18, color="#222"),
                       **enc, tooltip=[vl.field("iat_s:Q", format=".3g"), vl.field("density:Q", format=".3g")])]
    fits, fit_cols = table_with(inp, "iat_fit", ("family", "iat_s", "density"))
    if fits is not None:
        fam, fx, fy = fit_cols
        floor = shown["density"].min() / 10 if shown.height else 0.0
        families = fits[fam].cast(pl.String).unique(maintain_order=True).to_list()
        labels = {f: family_label(inp.findings, f) for f in families}
        curves = positive(fits.select(pl.col(fam).cast(pl.String).replace_strict(labels).alias("family"),
                                      pl.col(fx).alias("iat_s"), pl.col(fy).alias("density")), "iat_s", "density")
        # Fitted tails fall many decades below anything observed; drawing them would flatten the data.
        curves = curves.filter(pl.col("density") >= floor)
        layers.append(vl.chart(
            thin(curves), vl.mark("line", strokeWidth=1.6),
            **enc, color=vl.field("family:N", title="fitted family", sort=list(labels.values()),
                                  legend={"orient": "bottom", "columns": 2, "labelLimit": 0}),
            strokeDash=vl.field("family:N", sort=list(labels.values()), legend=None)))
    best = lookup(inp.findings, "arrivals.best_fit.family")
    caption = ("Dots: the observed density of the gaps between consecutive requests (log-log). Lines: each fitted "
               "family, with its Kolmogorov-Smirnov distance (smaller fits better).")
    if best:
        caption += f" Best fit: {family_name(best)}."
    return Figure.of("iat", title, frame(vl.layer(*layers)), caption)


def idc_by_scale(inp) -> Figure:
    title = "Index of dispersion of counts by time scale"
    idc = lookup(inp.findings, "arrivals.idc")
    points = [(float(k), float(v)) for k, v in (idc or {}).items()
              if is_number(v) and str(k).replace(".", "", 1).isdigit()] if isinstance(idc, dict) else []
    if not points:
        return Figure.absent("idc", title, "no arrivals.idc in findings.json")
    df = pl.DataFrame(points, schema=["scale_s", "idc"], orient="row").sort("scale_s")
    line = vl.chart(df, vl.mark("line", point=True),
                    x=vl.field("scale_s:Q", scale={"type": "log"}, title="counting window (s)"),
                    y=vl.field("idc:Q", scale={"type": "log"}, title="IDC = Var(N) / E(N)"),
                    tooltip=["scale_s", "idc"])
    caption = "A Poisson process has IDC = 1 at every scale; growth with the scale means burstiness at long scales."
    return Figure.of("idc", title, frame(vl.layer(line, rule_at(1.0, "Poisson", at="end"))), caption)


def window_cv(inp) -> Figure:
    title = "Inter-arrival CV per window"
    df, cols = table_with(inp, "window_rates", ("window_start_s", "iat_cv", "iat_cv_derounded"))
    if df is None:
        return Figure.absent("window-cv", title, cols)
    t, cv, _ = cols
    # De-rounded CV (timestamps on a grid inflate the raw one) shown beside the raw when the stage made it.
    named = {cv: "raw", "iat_cv_derounded": "de-rounded"}
    derounded = is_number(lookup(inp.findings, "arrivals.iat_cv_derounded"))  # else the column repeats the raw CV
    present = [c for c in named if df[c].drop_nulls().len() and (c == cv or derounded)]
    long = series(df.select(pl.col(t).alias("t"), *present)).unpivot(index="t", variable_name="series",
                                                                      value_name="cv").drop_nulls()
    long, x = time_axis(long.with_columns(pl.col("series").replace(named)), "t")
    points = vl.chart(long, vl.mark("point", size=14, filled=True, opacity=0.6),
                      x=time_x(x), y=vl.field("cv:Q", title="CV of inter-arrival times"),
                      color=vl.field("series:N", title=None, legend={} if len(present) > 1 else None))
    window = lookup(inp.findings, "settings.window_s")
    caption = ("Each point is one window" + (f" of {fmt_duration(window)}" if is_number(window) else "")
               + "; above the dashed line (CV = 1) arrivals are burstier than Poisson.")
    jitter = lookup(inp.findings, "quality.jitter_s")
    if len(present) > 1:
        caption += (" Raw: the CV of the recorded times; de-rounded: with each time spread uniformly over its "
                    f"{fmt_duration(jitter) if is_number(jitter) else 'rounding'} grid step, since rounded timestamps "
                    "inflate the raw CV.")
    return Figure.of("window-cv", title, frame(vl.layer(points, rule_at(1.0, "Poisson"))), caption)


def cv_by_group(inp) -> Figure:
    title = "Burstiness by service, model and group"
    df, cols = table_with(inp, "arrivals_by_group", ("dimension", "level", "iat_cv"))
    if df is None:
        return Figure.absent("cv-group", title, cols)
    shown = df.select(group_label(lookup(inp.findings, "clients.group_by")).alias("group"),
                      pl.col("iat_cv").cast(pl.Float64)).drop_nulls().head(25)
    bars = vl.chart(shown, vl.mark("bar", color="#1f4e79"),
                    y=vl.field("group:N", sort="-x", title=None, axis={"labelLimit": 150}),
                    x=vl.field("iat_cv:Q", title="CV of inter-arrival times (dashed: Poisson)"),
                    tooltip=["group", vl.field("iat_cv:Q", format=".3g")])
    return Figure.of("cv-group", title, vl.layer(bars, rule_at(1.0, "Poisson", axis="x"),
                                                 width=WIDTH - 160, height=max(HEIGHT, 14 * shown.height)),
        "The CV of each service's, model's and largest group's own arrivals, burstiest first; CV = 1 is Poisson.")


def window_families(inp) -> Figure:
    title = "Best inter-arrival family per window"
    shares = lookup(inp.findings, "arrivals.windows.family_share")
    if not isinstance(shares, dict) or not shares:
        return Figure.absent("window-family", title, "no arrivals.windows.family_share in findings.json")
    df = pl.DataFrame({"family": list(shares), "share": [float(v or 0) for v in shares.values()]})
    bars = vl.chart(df, vl.mark("bar", color="#1f4e79"), x=vl.field("family:N", sort="-y", title=None),
                    y=vl.field("share:Q", title="share of windows", axis={"format": "%"}))
    fitted = lookup(inp.findings, "arrivals.windows.fitted")
    return Figure.of("window-family", title, frame(bars),
                     "Which family fits each window best" + (f" ({fitted:,} windows fitted)." if isinstance(fitted, int)
                                                             else "."))
