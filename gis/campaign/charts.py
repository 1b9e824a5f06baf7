"""Charts and map images drawn with matplotlib's object API (a Figure per image, no pyplot state), in CJK fonts."""

from __future__ import annotations

import io
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Simplified Chinese first (Debian's fonts-noto-cjk), DejaVu for what they lack.
CJK_FONTS = ["Noto Sans CJK SC", "Noto Serif CJK SC", "DejaVu Sans"]
matplotlib.rcParams["font.sans-serif"] = CJK_FONTS + list(matplotlib.rcParams["font.sans-serif"])
matplotlib.rcParams["axes.unicode_minus"] = False


def figure(width_in: float, height_in: float, *, dpi: float = 100) -> Figure:
    """A figure with its own Agg canvas: safe to draw in any thread or process, and freed with its last reference."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def image(fig: Figure, *, fmt: str = "png", dpi: float | None = None, tight: bool = False, **options: Any) -> bytes:
    """The figure as image bytes (`fmt`: png or jpeg; `options`: savefig's, such as pil_kwargs)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi if dpi is not None else fig.dpi, bbox_inches="tight" if tight else None,
                **options)
    return buf.getvalue()
