"""Plotly figures for the pages: the verdict timeline heatmap and the work-signal charts, both with
deploy markers. Plain plotly over the engine's frames (no streamlit, no source): testable alone.

Colour carries the verdict, and never alone: every heatmap cell's hover names the verdict in words
and the legend pairs each colour with its icon and word. Plotly reads a subset of HTML in labels
and hover text (``<b>``, ``<a href>``), so remote strings (node names, services) are entity-escaped
first: shown, never obeyed.
"""

from __future__ import annotations

from html import escape

import pandas as pd
import plotly.graph_objects as go

from dashboard.catalog import Signal
from dashboard.health import format_value
from dashboard.ui.style import VERDICT_COLOURS, VERDICT_ICONS
from dashboard.verdicts import RANKS, Verdict

MAX_HEATMAP_ROWS = 50
OTHER_NODES = "other nodes"
# Heatmap z is the verdict's rank (healthy < degraded < unknown < unhealthy).
_TOP_RANK = Verdict.UNHEALTHY.rank
_COLOURSCALE = [[verdict.rank / _TOP_RANK, VERDICT_COLOURS[verdict]] for verdict in Verdict]


def node_verdicts(timeline: pd.DataFrame) -> pd.DataFrame:
    """Per (cluster, node, time) the worst verdict over the node's components, with the component."""
    nodes = timeline[timeline["scope"] == "node"].copy()
    if nodes.empty:
        return pd.DataFrame(columns=["cluster", "node", "time", "rank", "verdict", "component"])
    nodes["rank"] = nodes["verdict"].map(RANKS)
    worst = nodes.sort_values("rank", ascending=False, kind="stable").drop_duplicates(["cluster", "node", "time"])
    return worst[["cluster", "node", "time", "rank", "verdict", "component"]]


def verdict_heatmap(timeline: pd.DataFrame, *, max_rows: int = MAX_HEATMAP_ROWS) -> go.Figure:
    """Node × time, each cell the node's worst component verdict; worst nodes first.

    At most ``max_rows`` rows: the rest are folded into one "other nodes" row holding, per step, the
    worst verdict among them and how many of them were not healthy.
    """
    worst = node_verdicts(timeline)
    figure = go.Figure()
    if worst.empty:
        return figure
    label = worst["node"] if worst["cluster"].nunique() == 1 else worst["cluster"] + " / " + worst["node"]
    worst["row"] = label.map(escape)
    badness = worst.groupby("row")["rank"].sum().sort_values(ascending=False, kind="stable")
    shown = list(badness.index[: max_rows - 1 if len(badness) > max_rows else max_rows])
    rest = worst[~worst["row"].isin(shown)]
    times = sorted(worst["time"].unique())
    z = worst[worst["row"].isin(shown)].pivot_table(index="row", columns="time", values="rank", aggfunc="max")
    z = z.reindex(index=shown, columns=times)
    text = worst[worst["row"].isin(shown)].assign(
        label=lambda f: f["verdict"].map(lambda v: f"{VERDICT_ICONS[v]} {v}") + " (" + f["component"] + ")"
    ).pivot_table(index="row", columns="time", values="label", aggfunc="first").reindex(index=shown, columns=times)
    if not rest.empty:
        folded = rest.groupby("time").agg(rank=("rank", "max"), not_healthy=("rank", lambda r: int((r > 0).sum())),
                                          nodes=("row", "nunique"))
        z.loc[OTHER_NODES] = folded["rank"].reindex(times)
        text.loc[OTHER_NODES] = [
            f"worst of {int(row.nodes)} nodes; {row.not_healthy} not healthy" if pd.notna(row.nodes) else "no data"
            for row in folded.reindex(times).itertuples()
        ]
    figure.add_trace(go.Heatmap(
        z=z.to_numpy(dtype=float), x=times, y=list(z.index), text=text.fillna("no row").to_numpy(),
        hovertemplate="%{y}<br>%{x}<br>%{text}<extra></extra>", colorscale=_COLOURSCALE, zmin=0,
        zmax=_TOP_RANK, showscale=False, xgap=1, ygap=1,
    ))
    for verdict, colour in VERDICT_COLOURS.items():  # the legend: colour, icon and word together
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{VERDICT_ICONS[verdict]} {verdict}",
                                    marker={"color": colour, "size": 12, "symbol": "square"}))
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_layout(height=max(220, 24 * len(z.index) + 120), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return figure


def signal_chart(series: pd.DataFrame, signal: Signal, markers: pd.DataFrame | None = None) -> go.Figure:
    """One work signal over time (one line per node when the frame has several), its thresholds as
    dashed lines, and deploy markers as vertical lines whose hover names the release."""
    figure = go.Figure()
    grouping = "node" if "node" in series.columns and series["node"].notna().any() else None
    for name, part in series.groupby(grouping) if grouping else [(f"{signal.component} (cluster)", series)]:
        part = part.sort_values("time")
        figure.add_trace(go.Scatter(
            x=part["time"], y=part["value"], mode="lines", name=escape(str(name)),
            hovertext=[format_value(v, signal.unit) for v in part["value"]], hovertemplate="%{x}<br>%{hovertext}",
        ))
    thresholds = signal.thresholds
    if thresholds is not None:
        for level, value in (("degraded", thresholds.degraded), ("unhealthy", thresholds.unhealthy)):
            if value is not None:
                figure.add_hline(y=value, line_dash="dash", line_color=VERDICT_COLOURS[level],
                                 annotation_text=f"{level} {thresholds.op} {format_value(value, signal.unit)}",
                                 annotation_position="top left")
    add_deploy_markers(figure, markers)
    figure.update_layout(height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=grouping is not None,
                         title={"text": f"{signal.component} · {signal.name} ({signal.unit})", "font": {"size": 14}})
    if signal.unit == "ratio":
        figure.update_yaxes(tickformat=".1%")
    return figure


def add_deploy_markers(figure: go.Figure, markers: pd.DataFrame | None) -> None:
    """A dotted vertical line per deploy and, at its top, a point whose hover names the release."""
    if markers is None or markers.empty:
        return
    for time in markers["time"]:
        figure.add_vline(x=time, line_dash="dot", line_color="#4c6ef5", opacity=0.7)
    hover = [
        f"deploy {escape(str(row.service))} {row.short_digest}<br>gate: {row.gate}"
        + (f"<br>impact: {row.impact}" if "impact" in markers.columns and isinstance(row.impact, str) else "")
        for row in markers.itertuples(index=False)
    ]
    figure.add_trace(go.Scatter(
        x=markers["time"], y=[1] * len(markers), yaxis="y2", mode="markers", name="deploys",
        marker={"symbol": "triangle-down", "size": 11, "color": "#4c6ef5"}, hovertext=hover,
        hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
    ))
    figure.update_layout(yaxis2={"overlaying": "y", "range": [0, 1.05], "visible": False, "fixedrange": True})
