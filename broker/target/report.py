"""The progress report: one self-contained HTML page an officer can email to a funder.

No network resources and no JavaScript: charts are inline SVG drawn by the template from numbers
computed here, so every piece of text (opportunity titles, buyer and party names, notes: all untrusted)
reaches the page only through Jinja2's autoescaping. A Content-Security-Policy forbids anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.store.models import Opportunity, TargetEntry
from broker.target.config import TargetConfig
from broker.target.parties import PartyResolver, chunks
from broker.target.progress import Pace, Progress, compute_progress
from broker.target.stages import OUTCOMES
from broker.target.values import format_gbp

TOP_OPPORTUNITIES = 10
RECENT_OUTCOMES = 12
TITLE_CHARS = 140
BASIS_LABELS = {"lower_bound": "lower bound of range", "upper_bound": "upper bound of range",
                "midpoint": "midpoint of range", "single_figure": "single figure", "unknown": "value unknown",
                "framework": "framework/DPS: £0 until call-off", "cancelled": "cancelled: £0",
                "award": "awarded value", "subcontracting": "subcontracting prospect: £0"}
# Chart geometry (SVG user units); the SVG scales to the page width.
W, H, LEFT, RIGHT, TOP, BOTTOM = 760, 300, 92, 20, 16, 40


def render_report(session: Session, as_of: date, config: TargetConfig) -> tuple[str, Progress]:
    """Render the report for ``as_of`` under ``config``; returns the HTML and the progress it shows."""
    progress = compute_progress(session, as_of, config)
    env = Environment(loader=PackageLoader("broker", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    html = env.get_template("report.html.j2").render(**report_context(session, progress))
    return html, progress


def report_context(session: Session, progress: Progress) -> dict[str, Any]:
    """Everything the template shows, as plain values (text is escaped by the template, not here)."""
    p, c = progress, progress.config
    top = p.counted[:TOP_OPPORTUNITIES]
    details = _opportunities(session, [o.id for o in top])
    return {
        "as_of": p.as_of.isoformat(),
        "total": format_gbp(p.counted_pence), "target": format_gbp(c.target_pence), "share": str(p.share()),
        "counted": len(p.counted), "counting_stage": c.counting_stage,
        "pipeline_stage": c.pipeline_stage, "pipeline_total": format_gbp(p.pipeline_pence),
        "pipeline_count": len(p.pipeline),
        "unknown": len(p.with_basis("unknown")), "frameworks": len(p.with_basis("framework")),
        "frameworks_published": format_gbp(sum(o.value.published_pence or 0 for o in p.with_basis("framework"))),
        "cancelled": len(p.with_basis("cancelled")),
        "prospects": len(p.prospects),
        "prospects_published": format_gbp(sum(o.value.published_pence or 0 for o in p.prospects)),
        "pace": _pace_text(p),
        "chart": progress_chart(p),
        "clusters": _bars([(r.key or "(no cluster)", r.opportunities, r.value_pence) for r in p.by_cluster]),
        "stages": _bars([(r.key or "", r.opportunities, r.value_pence) for r in p.by_stage]),
        "largest": [{"title": details.get(o.id, (o.id, ""))[0], "buyer": details.get(o.id, ("", ""))[1],
                     "id": o.id, "value": format_gbp(o.value.amount_pence),
                     "basis": BASIS_LABELS.get(o.value.basis, o.value.basis),
                     "clusters": ", ".join(x or "(no cluster)" for x in o.clusters), "stage": o.furthest}
                    for o in top],
        **_apart(session, p),
        "outcomes": _recent_outcomes(session, p.as_of),
        "config": _config_rows(c),
        "config_sha256": c.sha256(),
        "ledger_entries": p.ledger_entries,
    }


_WHY_APART = {"framework": "framework agreement or DPS: £0 until a call-off",
              "subcontracting": "subcontracting prospect: beyond what the party could take on alone"}


def _apart(session: Session, p: Progress) -> dict[str, Any]:
    """Frameworks/DPSs and subcontracting prospects, largest published value first (at most ten shown)."""
    listed = sorted([*p.with_basis("framework"), *p.prospects],
                    key=lambda o: (-(o.value.published_pence or 0), o.id))
    shown = listed[:TOP_OPPORTUNITIES]
    details = _opportunities(session, [o.id for o in shown])
    return {"apart": [{"title": details.get(o.id, (o.id, ""))[0], "buyer": details.get(o.id, ("", ""))[1],
                       "id": o.id, "why": _WHY_APART[o.value.basis],
                       "published": format_gbp(o.value.published_pence)} for o in shown],
            "apart_more": len(listed) - len(shown)}


def _config_rows(config: TargetConfig) -> list[tuple[str, str]]:
    rows = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in config.as_dict().items()]
    return [(k, f"{format_gbp(config.target_pence)} ({v} pence)" if k == "target_pence" else v) for k, v in rows]


def _opportunities(session: Session, ids: list[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for part in chunks(ids):
        for oid, title, buyer in session.execute(
                select(Opportunity.id, Opportunity.title, Opportunity.buyer_name).where(Opportunity.id.in_(part))):
            found[oid] = (_clip(title), _clip(buyer))
    return found


def _clip(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "…"


def _recent_outcomes(session: Session, as_of: date) -> list[dict[str, str]]:
    entries = list(session.scalars(select(TargetEntry).where(
        TargetEntry.kind == "stage", TargetEntry.stage.in_(("interested", "bid") + OUTCOMES),
        TargetEntry.as_of <= as_of.isoformat())
        .order_by(TargetEntry.as_of.desc(), TargetEntry.id.desc()).limit(RECENT_OUTCOMES)))
    titles = _opportunities(session, sorted({e.opportunity_id for e in entries}))
    parties = PartyResolver(session)
    return [{"date": e.as_of, "opportunity": titles.get(e.opportunity_id, (e.opportunity_id, ""))[0],
             "party": parties.name(e.party_id or "", e.party_type), "cluster": e.cluster or "",
             "stage": e.stage or "", "value": format_gbp(e.amount_pence) if e.basis == "award" else "",
             "note": _clip(e.note)} for e in entries]


def _pace_text(p: Progress) -> str:
    pace, target = p.pace, format_gbp(p.config.target_pence)
    window = f"the programme window ({pace.window_start} to {pace.window_end})"
    if pace.status == "reached":
        return f"The target was reached on {pace.reached_on}, {where_in_window(pace.reached_on, pace)} {window}."
    if pace.status == "no_progress":
        return f"Nothing has been counted yet in {window}."
    return (f"At the pace so far ({format_gbp(pace.per_day_pence)} a day since {pace.since}), {target} is "
            f"reached on {pace.projected_date}, {where_in_window(pace.projected_date, pace)} {window}.")


def where_in_window(day: date | None, pace: Pace) -> str:
    """"within", "before the start of" or "after the end of" the programme window, for ``day``."""
    if day is not None and day < pace.window_start:
        return "before the start of"
    if day is not None and day > pace.window_end:
        return "after the end of"
    return "within"


def _bars(rows: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    top = max((v for _, _, v in rows), default=0) or 1
    return [{"label": label, "count": n, "value": format_gbp(v), "width": round(100 * v / top, 2)}
            for label, n, v in rows]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


def progress_chart(p: Progress) -> dict[str, Any]:
    """Geometry of the progress-over-time step chart: the cumulative total, the target, the projection."""
    first = p.series[0][0] if p.series else p.as_of
    x0, x1 = min(p.config.window_start, first), max(p.config.window_end, p.as_of)
    peak = max([v for _, v in p.series] + [p.config.target_pence])
    step = _nice_step(peak)
    y_max = -(-peak * 21 // 20 // step) * step  # the peak plus a margin, up to a whole tick

    def x(d: date) -> float:
        return round(LEFT + (W - LEFT - RIGHT) * (d - x0).days / max((x1 - x0).days, 1), 1)

    def y(v: int) -> float:
        return round(H - BOTTOM - (H - TOP - BOTTOM) * v / y_max, 1)

    path = [f"M{x(x0)},{y(0)}"]
    for d, v in p.series:
        path.append(f"H{x(d)}V{y(v)}")
    path.append(f"H{x(p.as_of)}")
    projection = None
    if p.pace.projected_date is not None:
        end = min(p.pace.projected_date, x1)
        reach = p.counted_pence + (p.config.target_pence - p.counted_pence) * (end - p.as_of).days \
            // max((p.pace.projected_date - p.as_of).days, 1)
        projection = {"x1": x(p.as_of), "y1": y(p.counted_pence), "x2": x(end), "y2": y(reach)}
    return {"width": W, "height": H, "left": LEFT, "right": W - RIGHT, "top": TOP, "bottom": H - BOTTOM,
            "path": "".join(path), "target_y": y(p.config.target_pence), "as_of_x": x(p.as_of),
            "now_y": y(p.counted_pence), "projection": projection,
            "y_ticks": [Tick(y(v), compact_gbp(v)) for v in range(0, y_max + 1, step)],
            "target_label": f"target {compact_gbp(p.config.target_pence)}",
            # the target's label goes below its line when the line is at the top of the chart
            "target_label_y": round(y(p.config.target_pence) + (16 if y(p.config.target_pence) < TOP + 18
                                                                 else -6), 1),
            "x_ticks": _month_ticks(x0, x1, x)}


def _nice_step(peak: int) -> int:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten pence) giving 4-8 ticks up to ``peak``."""
    power = 100  # £1
    while True:
        for m in (1, 2, 5, 10, 20, 25, 50):
            step = m * power
            if peak // step <= 6:
                return step
        power *= 100


def compact_gbp(pence: int) -> str:
    """Short axis labels: £0, £750, £250k, £1m, £1.5m, £3.12bn (at most two decimals)."""
    pounds = pence / 100
    for size, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(pounds) >= size:
            return "£" + f"{pounds / size:.2f}".rstrip("0").rstrip(".") + suffix
    return f"£{pounds:.0f}"


def _month_ticks(start: date, end: date, x: Any) -> list[Tick]:
    """First-of-month ticks, spaced so that about six fit."""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step = max(1, -(-months // 6))
    ticks, d = [], date(start.year, start.month, 1)
    if d < start:
        d = (d + timedelta(days=32)).replace(day=1)
    while d <= end:
        ticks.append(Tick(x(d), d.strftime("%b %Y")))
        for _ in range(step):
            d = (d + timedelta(days=32)).replace(day=1)
    return ticks
