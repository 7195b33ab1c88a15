"""The report's charts with matplotlib (imported lazily, Agg backend): SVG text for the HTML (text kept as text,
ids stable), PNG bytes for the PDF. Each takes the view's chart data and returns None when there is nothing to
draw."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

from plantlink.reports.view import View

_LOCK = threading.Lock()  # pyplot's state is global: one figure at a time
GREY, ACCENT, LOSS = "#78909c", "#37474f", "#c62828"


def _figure(draw: Callable[[Any], None], fmt: str, size: tuple[float, float] = (6.0, 2.6)) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    style: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": "plantlink", "font.size": 9,
                             "text.parse_math": False, "axes.spines.top": False, "axes.spines.right": False}
    with _LOCK, matplotlib.rc_context(style):  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=size)
        try:
            draw(ax)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
        finally:
            plt.close(fig)
    return buf.getvalue()


def _bars(items: Sequence[tuple[str, float]], xlabel: str, colour: str, horizontal: bool = True,
          fmt_value: Callable[[float], str] = lambda v: f"{v:,.2f}") -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        labels = [k for k, _ in items]
        values = [v for _, v in items]
        if horizontal:
            pos = list(range(len(items)))[::-1]
            ax.barh(pos, values, color=colour)
            ax.set_yticks(pos, labels)
            ax.set_xlabel(xlabel)
            for p, v in zip(pos, values, strict=True):
                ax.annotate(fmt_value(v), (v, p), xytext=(3, 0), textcoords="offset points", va="center")
        else:
            ax.bar(labels, values, color=colour)
            ax.set_ylabel(xlabel)
            for i, v in enumerate(values):
                ax.annotate(fmt_value(v), (i, v), xytext=(0, 2), textcoords="offset points", ha="center")
    return draw


def charts(v: View, fmt: str) -> list[tuple[str, bytes]]:
    """(title, image) of each chart the view has data for, in ``fmt`` (svg or png)."""
    out: list[tuple[str, bytes]] = []
    factors = [(k, x * 100) for k, x in v.factors if x is not None]
    if factors:
        out.append(("OEE and its factors (%)", _figure(_bars(factors, "%", ACCENT, fmt_value=lambda x: f"{x:.1f}"),
                                                        fmt)))
    if v.losses and any(x > 0 for _, x in v.losses):
        out.append((f"Losses in money ({v.currency})", _figure(_bars(v.losses, v.currency, LOSS, horizontal=False),
                                                                fmt)))
    if v.pareto:
        out.append(("Downtime Pareto (hours)", _figure(_bars(v.pareto, "hours", GREY),
                                                       fmt, (6.0, 0.6 + 0.3 * len(v.pareto)))))
    if v.energy:
        out.append(("Energy per good part (kWh)", _figure(_bars(v.energy, "kWh per good part", GREY,
                                                                fmt_value=lambda x: f"{x:.3f}"), fmt,
                                                          (6.0, 0.6 + 0.3 * len(v.energy)))))
    return out


def inline_svg(svg: bytes) -> str:
    """The ``<svg>`` element of a matplotlib SVG file (no XML declaration or DOCTYPE), for inlining."""
    text = svg.decode("utf-8")
    return text[text.index("<svg"):]
