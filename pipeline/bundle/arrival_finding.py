"""The bundle's arrival model as the `arrivals.arrival_model` finding: which candidate won, and
every candidate's goodness of fit on the source (the same figures bundle.json keeps).

Per candidate: the relative error of the index of dispersion of counts at each scale (the mean
over the scored scales is the IDC-curve error, beside its seed-to-seed floor), the
Kolmogorov-Smirnov distance of the inter-arrival times and their CV, all of traces generated
from the bundle over the source's span; the lowest IDC error + KS wins. The fitted modulation
carries its own goodness of fit: the RMS log error of the dispersion curve it was fitted to."""

from __future__ import annotations

from servetrace.findings import absent

CANDIDATE_KEYS = ("idc_error", "idc_error_mean", "idc_seed_floor", "iat_ks", "iat_cv", "score")


def _modulation(spec: dict | None) -> dict | None:
    if not spec:
        return None
    out = {"theta_s": spec["theta_s"], "sigma2": spec["sigma2"],
           "rms_log_error": (spec.get("fit") or {}).get("rms_log_error")}
    if spec.get("clients"):
        out["clients"] = {cid: {"sigma2": c["sigma2"], "rms_log_error": (c.get("fit") or {}).get("rms_log_error")}
                          for cid, c in spec["clients"].items()}
    return out


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.3g} %"


def _g(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def _ks(x) -> str:
    return "absent" if isinstance(x, dict) else _g(x)


def arrival_model_finding(model: dict | None) -> dict:
    """The finding of a bundle's `arrival_model` entry ({"absent": ...} without one)."""
    if not model or not model.get("candidates"):
        return absent("no arrival model was fitted (fewer than 3 requests)")
    candidates = {name: {k: ev.get(k) for k in CANDIDATE_KEYS} for name, ev in model["candidates"].items()}
    chosen = model["chosen"]
    won = candidates[chosen]
    others = sorted((n for n in candidates if n != chosen), key=lambda n: candidates[n]["score"])
    statement = (f"Arrival model: {chosen} (IDC-curve error {_pct(won['idc_error_mean'])}, inter-arrival "
                 f"KS {_ks(won['iat_ks'])} on traces generated over the source's span)")
    if others:
        runner = candidates[others[0]]
        statement += (f"; next best {others[0]} (IDC error {_pct(runner['idc_error_mean'])}, "
                      f"KS {_ks(runner['iat_ks'])})")
    untestable = next((c["iat_ks"]["absent"] for c in candidates.values() if isinstance(c["iat_ks"], dict)), None)
    if untestable:
        statement += f"; the inter-arrival KS scores nothing: {untestable}"
    return {"chosen": chosen, "candidates": candidates, "scored_scales_s": model.get("scored_scales_s"),
            "source": model.get("source"), "modulation": _modulation(model.get("modulation")),
            "statement": statement + "."}
