"""HTML views: Jinja templates rendered with autoescaping, so every user-supplied string is escaped."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).with_name("templates")


@lru_cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2, default=str)
    env.filters["cell"] = _cell
    return env


def _cell(value: Any) -> str:
    """A property value as display text (the template escapes it)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def render(request: Request | None, template: str, **context: Any) -> str:
    """Render `template` with `context`; `root` is the app's base URL without a trailing slash."""
    root = str(request.base_url).rstrip("/") if request is not None else ""
    return environment().get_template(template).render(root=root, **context)
