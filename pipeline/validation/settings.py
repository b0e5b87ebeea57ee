"""Pass / fail thresholds of the fidelity checks, with the defaults the targets name."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FidelitySettings:
    rate_mape: float = 0.05  # mean absolute percentage error of the per-window rate
    iat_cv_rel: float = 0.10  # |CV_syn - CV_src| / CV_src
    idc_rel: float = 0.20  # per scale, |IDC_syn - IDC_src| / IDC_src
    ks: float = 0.03  # per length field
    spearman_abs: float = 0.05  # |rho_syn - rho_src|
    top_share_k: int = 5
    top_share_abs: float = 0.02
    failure_rate_abs: float = 0.01
    infinite_hit_abs: float = 0.03  # |infinite-cache hit rate, synthetic - source|
    lru_curve_abs: float = 0.05  # largest |hit rate difference| over the source's capacity ladder
    reuse_ks: float = 0.05  # reuse distance, turns per session, turn gap, follow-up context length
    min_window_cover: float = 0.5  # rate windows covered less than this fraction by both traces are left out

    def to_dict(self) -> dict:
        return asdict(self)
