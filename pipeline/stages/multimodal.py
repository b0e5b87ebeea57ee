"""Multimodal composition (when image columns are present): images per request, tokens per image."""

from __future__ import annotations

import polars as pl

from servetrace.findings import Absent, Finding
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct


def multimodal(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if not ctx.has("image_count"):
        return Absent("multimodal", "no image columns in the trace"), {}
    images = sql.table(con, "multimodal_images", order_by="image_count")
    tables = {"multimodal_images": images}
    with_images = images.filter(pl.col("image_count") > 0)
    n_img = int(with_images["requests"].sum())
    values = {
        "rows": int(images["requests"].sum()),
        "share_with_images": n_img / int(images["requests"].sum()),
        "images_per_request": {str(r["image_count"]): r["share"] for r in images.head(20).iter_rows(named=True)},
        "max_images": int(images["image_count"].max()),
        "one_image_share": float(with_images.filter(pl.col("image_count") == 1)["requests"].sum() / n_img) if n_img else None,
    }
    per_image = ""
    if ctx.has("image_tokens") and n_img:
        tpi = sql.table(con, "multimodal_tokens_per_image", order_by="requests desc, tokens_per_image")
        tables["multimodal_tokens_per_image"] = tpi
        values["tokens_per_image_top"] = [{"tokens": r["tokens_per_image"], "share": r["share"]}
                                          for r in tpi.head(5).iter_rows(named=True)]
        per_image = f"; the commonest tokens per image is {fmt(tpi['tokens_per_image'][0])} ({pct(tpi['share'][0])})"
    statement = (f"{pct(values['share_with_images'])} of requests carry images, {pct(values['one_image_share'])} of those "
                 f"exactly one (max {values['max_images']}){per_image}.")
    return Finding("multimodal", values, statement, list(tables)), tables
