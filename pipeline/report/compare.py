"""Two characterized traces side by side: last month and this month, or production and a benchmark."""

from __future__ import annotations

from servetrace.report import specs as vl
from servetrace.report.figures import Figure
from servetrace.report.inputs import ReportInputs
from servetrace.report.render import Page
from servetrace.report.sections import AREAS, Section, Table, area_section, quality_section
from servetrace.report.summary import num
from servetrace.report.values import fmt_number

# (label, findings path, format) rows of the summary table.
ROWS = [
    ("rows kept", "trace.rows_kept", "number"), ("rows rejected", "trace.rows_rejected", "number"),
    ("span", "trace.span_s", "duration"), ("mean rate (req/s)", "arrivals.rate_rps", "number"),
    ("inter-arrival CV", "arrivals.iat_cv", "number"), ("peak-to-mean rate", "arrivals.peak_to_mean", "number"),
    ("IDC at 1 s", "arrivals.idc.1", "number"), ("IDC at 600 s", "arrivals.idc.600", "number"),
    ("clients / groups", "clients.count", "number"), ("top-1 share", "clients.top_share.1", "percent"),
    ("Gini", "clients.gini", "number"), ("input mean (tokens)", "lengths.input.mean", "number"),
    ("input p99", "lengths.input.p99", "number"), ("output mean (tokens)", "lengths.output.mean", "number"),
    ("output p99", "lengths.output.p99", "number"), ("Spearman input/output", "lengths.correlation.spearman", "number"),
    ("failure rate", "failures.rate", "percent"), ("diurnal peak hour", "diurnal.peak_hour", "number"),
    ("peak-to-trough", "diurnal.peak_to_trough", "number"),
]


def summary_table(a: ReportInputs, b: ReportInputs) -> Table:
    rows = []
    for label, path, kind in ROWS:
        va, vb = num(a.findings, path, kind), num(b.findings, path, kind)
        if va or vb:
            rows.append([label, va or "—", vb or "—"])
    return Table("The two traces", ["", a.label, b.label], rows)


def side_by_side(fa: Figure, fb: Figure, la: str, lb: str) -> Figure:
    """One figure drawing A left and B right with a shared y scale, or the one that exists with a note."""
    if fa.spec is None and fb.spec is None:
        return Figure.absent(fa.key, fa.title, f"{la}: {fa.missing}; {lb}: {fb.missing}")
    if fa.spec is None or fb.spec is None:
        present, label, other = (fb, lb, la) if fa.spec is None else (fa, la, lb)
        missing = fa.missing if fa.spec is None else fb.missing
        return Figure.of(f"side-{present.key}", f"{present.title} ({label} only)", {**present.chart, "title": label},
                         f"{present.caption} Not in {other}: {missing}.")
    # Legends stay with their own chart: the same name can carry a different number (a KS, a weight) in each.
    chart = vl.hconcat({**fa.chart, "title": la}, {**fb.chart, "title": lb},
                       resolve={"scale": {"y": "shared", "color": "independent", "strokeDash": "independent"}})
    return Figure.of(f"side-{fa.key}", fa.title, chart, paired_caption(fa.caption, fb.caption, la, lb))


def paired_caption(a: str, b: str, la: str, lb: str) -> str:
    """The sentences both captions share, then what each says of its own trace."""
    sa, sb = a.split(". "), b.split(". ")
    n = next((i for i, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
    if n == len(sa) == len(sb):
        return a
    shared = ". ".join(sa[:n]) + ("." if n and not sa[n - 1].endswith(".") else "")
    own = [f"{label}: {'. '.join(rest)}" for label, rest in ((la, sa[n:]), (lb, sb[n:])) if rest]
    return " ".join([shared, *own]).strip()


def paired_section(a: ReportInputs, b: ReportInputs, sa: Section, sb: Section) -> Section:
    la, lb = a.label, b.label
    out = Section(sa.key, sa.title, text=sa.text)
    out.statements = [f"{la}: {s}" for s in sa.statements] + [f"{lb}: {s}" for s in sb.statements]
    if sa.absent and sb.absent:
        out.absent = f"{la}: {sa.absent}; {lb}: {sb.absent}"
        return out
    fa = {f.key: f for f in sa.figures}
    fb = {f.key: f for f in sb.figures}
    blank = Figure.absent("", "", sa.absent or sb.absent or "not drawn")
    out.figures = [side_by_side(fa.get(k, blank), fb.get(k, blank), la, lb) for k in dict.fromkeys([*fa, *fb])]
    facts_a, facts_b = dict(sa.facts), dict(sb.facts)
    keys = dict.fromkeys([*facts_a, *facts_b])
    if keys:
        out.tables.append(Table("All numbers", ["finding", la, lb],
                                [[k, facts_a.get(k, "—"), facts_b.get(k, "—")] for k in keys]))
    return out


def build_comparison(a: ReportInputs, b: ReportInputs) -> Page:
    if a.label == b.label:
        a.name, b.name = f"A: {a.label}", f"B: {b.label}"
    sections = [paired_section(a, b, quality_section(a), quality_section(b))]
    sections += [paired_section(a, b, area_section(a, *spec), area_section(b, *spec)) for spec in AREAS]
    return Page(
        title=f"{a.label} and {b.label}, side by side",
        subtitle=f"Two characterized traces compared: {fmt_number(len(sections))} areas, each drawn for both.",
        trace=[("A", str(a.out_dir)), ("B", str(b.out_dir))], key_findings=[], sections=sections,
        summary_tables=[summary_table(a, b)], footer="servetrace comparison report · self-contained: opens offline.")
