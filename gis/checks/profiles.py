"""Rule profiles: every numeric value of the rule book, with city overrides (`extends`) and a version."""

from __future__ import annotations

import tomllib
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).with_name("profiles")


class ProfileError(ValueError):
    """A profile that cannot be found or does not parse."""


@dataclass(frozen=True)
class Profile:
    """A resolved rule profile: `values[section][key]`, plus the name and version recorded with each run."""

    name: str
    version: str
    values: dict[str, dict[str, Any]]

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    def get(self, section: str, key: str) -> Any:
        try:
            return self.values[section][key]
        except KeyError:
            raise ProfileError(f"profile {self.name!r} has no value {section}.{key}") from None


def _merge(base: dict, over: dict) -> dict:
    out = deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else deepcopy(v)
    return out


def load_profile(name_or_path: str | Path = "cn-gb") -> Profile:
    """A profile by name (profiles/NAME.toml) or by path to a TOML file; `extends` chains are merged."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise ProfileError(f"未找到规则配置 rule profile not found: {name_or_path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"规则配置格式错误 bad rule profile {path}: {exc}") from exc
    meta = data.pop("profile", {})
    parent = meta.get("extends")
    values = _merge(load_profile(parent).values, data) if parent else data
    return Profile(name=meta.get("name", path.stem), version=str(meta.get("version", "0")), values=values)
