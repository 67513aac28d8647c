"""Tiny inline-SVG charts for the self-contained HTML report (no plotting library, no scripts)."""

from __future__ import annotations

from html import escape

COLORS = {"candidate": "#2b6cb0", "baseline": "#a0aec0", "train_loss": "#2b6cb0", "val_loss": "#dd6b20"}
_PALETTE = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096"]


def _color(name: str, i: int) -> str:
    return COLORS.get(name, _PALETTE[i % len(_PALETTE)])


def _legend(names: list[str], x: float, y: float) -> str:
    parts = []
    for i, n in enumerate(names):
        parts.append(f'<rect x="{x + i * 120:.0f}" y="{y - 9:.0f}" width="10" height="10" fill="{_color(n, i)}"/>'
                     f'<text x="{x + i * 120 + 14:.0f}" y="{y:.0f}" font-size="11">{escape(n)}</text>')
    return "".join(parts)


def bar_chart(groups: list[tuple[str, dict[str, float | None]]], series: list[str], *, title: str = "",
              ymax: float | None = None, width: int = 720, height: int = 260) -> str:
    """Grouped vertical bars: one group per label, one bar per series (None = no bar)."""
    if not groups:
        return ""
    values = [v for _, d in groups for v in d.values() if v is not None]
    top = ymax if ymax is not None else (max(values) if values else 1.0) or 1.0
    left, right, tpad, bottom = 48, 10, 28, 64
    plot_w, plot_h = width - left - right, height - tpad - bottom
    gw = plot_w / len(groups)
    bw = max(2.0, min(28.0, (gw - 8) / max(len(series), 1)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        yv = top * k / 4
        y = tpad + plot_h - plot_h * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{yv:.3g}</text>')
    for g, (label, d) in enumerate(groups):
        x0 = left + g * gw + (gw - bw * len(series)) / 2
        for s, name in enumerate(series):
            v = d.get(name)
            if v is None:
                continue
            h = plot_h * max(0.0, min(v, top)) / top
            x = x0 + s * bw
            out.append(f'<rect x="{x:.1f}" y="{tpad + plot_h - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                       f'fill="{_color(name, s)}"><title>{escape(label)} {escape(name)}: {v:.4g}</title></rect>')
        cx = left + g * gw + gw / 2
        out.append(f'<text x="{cx:.1f}" y="{tpad + plot_h + 12}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-30 {cx:.1f} {tpad + plot_h + 12})">{escape(label)}</text>')
    out.append(_legend(series, left, height - 6))
    out.append("</svg>")
    return "".join(out)


def line_chart(series: dict[str, list[tuple[float, float]]], *, title: str = "", xlabel: str = "step",
               width: int = 720, height: int = 260) -> str:
    """Lines through (x, y) points, one per series."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    xmin, xmax = min(p[0] for p in pts), max(p[0] for p in pts)
    ymin, ymax = min(p[1] for p in pts), max(p[1] for p in pts)
    if xmax == xmin:
        xmax = xmin + 1
    if ymax == ymin:
        ymax = ymin + 1
    left, right, tpad, bottom = 48, 10, 28, 40
    plot_w, plot_h = width - left - right, height - tpad - bottom

    def sx(x: float) -> float:
        return left + plot_w * (x - xmin) / (xmax - xmin)

    def sy(y: float) -> float:
        return tpad + plot_h - plot_h * (y - ymin) / (ymax - ymin)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="14" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        yv = ymin + (ymax - ymin) * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{left - 4}" y="{sy(yv) + 4:.1f}" font-size="10" text-anchor="end">{yv:.3g}</text>')
        xv = xmin + (xmax - xmin) * k / 4
        out.append(f'<text x="{sx(xv):.1f}" y="{tpad + plot_h + 14}" font-size="10" text-anchor="middle">{xv:.4g}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 14}" font-size="10" text-anchor="middle">{escape(xlabel)}</text>')
    for i, (name, s) in enumerate(series.items()):
        if not s:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline fill="none" stroke="{_color(name, i)}" stroke-width="2" points="{path}"/>')
        for x, y in s:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{_color(name, i)}">'
                       f'<title>{escape(name)} @ {x:g}: {y:.4g}</title></circle>')
    out.append(_legend(list(series), left, height - 2))
    out.append("</svg>")
    return "".join(out)
