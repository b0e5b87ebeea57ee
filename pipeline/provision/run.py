"""`servetrace provision`: capacity for the source, our synthetic trace and the naive one."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from servetrace.io import WRITTEN_BY, output_lock, write_json, write_parquet, write_text
from servetrace.outputs import INPUTS, PROVISION, PROVISION_CURVE, PROVISION_PAGE, table_path
from servetrace.provision import model as model_doc
from servetrace.provision.capacity import Requests, latency_curve, min_servers, server_grid
from servetrace.provision.model import work_s
from servetrace.settings import ServingModel
from servetrace.provision.naive import naive_requests
from servetrace.report import specs as vl
from servetrace.report.blocks import h2, note, page_html, table_html
from servetrace.validation.inputs import load_requests

SCHEMA = "servetrace.provision/v1"


def capacity_error(capacity: int | None, source: int | None) -> float | None:
    """Relative error of a capacity against the source's: negative means under-provisioned."""
    if capacity is None or not source:
        return None
    return (capacity - source) / source


def provision_result(traces: dict[str, Requests], model: ServingModel) -> tuple[dict, pl.DataFrame]:
    """provision.json (without inputs) and the latency-vs-servers table, for traces keyed by name
    (`source` first; `ours` and `naive` compared with it)."""
    found = {name: min_servers(r, model) for name, r in traces.items()}
    caps = {name: f["servers"] for name, f in found.items()}
    curve = latency_curve(traces, server_grid(list(caps.values())), model)
    wide = curve.pivot(on="trace", index="servers", values="latency_s").sort("servers")
    result = {
        "schema": SCHEMA,
        "model": model.to_dict(),
        "model_statement": " ".join(model_doc.__doc__.split()),
        "latency": f"p{model.quantile * 100:g} {model.metric} <= {model.target_s:g} s",
        "traces": {name: _trace_summary(r, model) for name, r in traces.items()},
        "capacity": caps,
        "search": found,
        "error": {name: capacity_error(c, caps.get("source")) for name, c in caps.items() if name != "source"},
        "curve": {col: wide[col].to_list() for col in wide.columns},
    }
    return result, curve


def _trace_summary(r: Requests, model: ServingModel) -> dict:
    span = float(r.arrival_s[-1] - r.arrival_s[0]) if len(r.arrival_s) > 1 else 0.0
    work = work_s(model, r.input_tokens, r.output_tokens)
    return {"requests": len(r.arrival_s), "span_s": span,
            "mean_rps": len(r.arrival_s) / span if span else None,
            "mean_work_s": float(work.mean()) if len(work) else None,
            "load_servers": float(work.sum() / span) if span else None}


def provision_traces(source: str | Path, out_dir: str | Path, synthetic: str | Path | None = None,
                     bundle: str | Path | None = None, model: ServingModel = ServingModel(), seed: int = 0,
                     page: bool = True) -> dict:
    """Run the experiment; write DIR/provision.json, DIR/tables/provision_curve.parquet and DIR/provision.html.
    Ours is `synthetic`, or generated from `bundle` over the source's span with `seed`."""
    out_dir = Path(out_dir)
    with output_lock(out_dir):
        src = Requests.of(load_requests(source, out_dir / INPUTS / "source"))
        traces = {"source": src}
        if synthetic is not None:
            traces["ours"] = Requests.of(load_requests(synthetic, out_dir / INPUTS / "synthetic"))
        elif bundle is not None:
            traces["ours"] = _generated(bundle, src, seed)
        traces["naive"] = naive_requests(src, seed)
        result, curve = provision_result(traces, model)
        result["inputs"] = {"source": str(source), "synthetic": str(synthetic) if synthetic else None,
                            "bundle": str(bundle) if bundle and not synthetic else None, "seed": seed}
        write_parquet(table_path(out_dir, PROVISION_CURVE), curve.to_arrow(), {WRITTEN_BY: "provision"})
        if page:
            write_text(out_dir / PROVISION_PAGE, provision_page(result, curve))
        write_json(out_dir / PROVISION, result)
    return result


def _generated(bundle: str | Path, src: Requests, seed: int) -> Requests:
    from servetrace.bundle import load_bundle
    from servetrace.generation import GenerateOptions, generate_table
    from servetrace.options import check_generate_size

    start = float(src.arrival_s[0])
    options = GenerateOptions(start_s=start, duration_s=float(src.arrival_s[-1]) - start, seed=seed)
    loaded = load_bundle(bundle)
    check_generate_size(loaded, options.duration_s, None, None, None)
    table, _ = generate_table(loaded, options)
    return Requests.of(pl.from_arrow(table))


def provision_page(result: dict, curve: pl.DataFrame) -> str:
    rows = [[name, cap, result["error"].get(name), result["traces"][name]["mean_rps"],
             result["traces"][name]["load_servers"]] for name, cap in result["capacity"].items()]
    chart = {**vl.chart(curve, vl.mark("line", point=True), x=vl.field("servers:Q", title="servers"),
                        y=vl.field("latency_s:Q", title=f"{result['latency'].split(' <=')[0]} (s)", scale={"type": "log"}),
                        color="trace:N"), "width": 560, "height": 300}
    rule = vl.chart([{"target": result["model"]["target_s"]}], vl.mark("rule", strokeDash=[4, 4], color="gray"),
                    y="target:Q")
    return page_html("Provisioning: source vs ours vs naive", [
        note(f"target: {result['latency']}"),
        table_html(["trace", "servers needed", "error vs source", "mean req/s", "busy servers (load)"], rows),
        h2("Latency against servers"), vl.layer(chart, rule), h2("Serving model"), note(result["model_statement"]),
    ])
