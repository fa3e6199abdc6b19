"""Configuration: the YAML defaults, an optional file, and ``key=value`` overrides, validated against the defaults.

Keys are those of ``defaults.yaml``; nested keys use dots (``augment.rotation=10``). Unknown keys fail with the
closest known key; values are parsed as YAML (``weights=none`` -> None is avoided: 'none' stays a string) and
checked against the type of the default.
"""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from nsl.errors import ConfigError
from nsl.fileio import write_text


def load_defaults() -> dict:
    return yaml.safe_load(resources.files("nsl").joinpath("defaults.yaml").read_text(encoding="utf-8"))


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _parse_value(text: str) -> Any:
    if text.strip().lower() == "none":  # 'none' is a meaningful string (weights=none), not YAML null
        return "none"
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _check_type(key: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        return type(default)(value)
    if isinstance(default, str) and not isinstance(value, str):
        return str(value)
    if isinstance(default, list) and not isinstance(value, list):
        raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
    return value


def _set(config: dict, defaults: dict, dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node, ref = config, defaults
    for depth, part in enumerate(parts):
        if not isinstance(ref, dict) or part not in ref:
            known = ref.keys() if isinstance(ref, dict) else []
            prefix = ".".join(parts[:depth])
            shown = f"{prefix}.{part}" if prefix else part
            raise ConfigError(f"{source}: unknown config key '{shown}'{_did_you_mean(part, known)}")
        if depth == len(parts) - 1:
            if isinstance(ref[part], dict) and isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    _set(node[part], ref[part], sub_key, sub_value, source)
            else:
                node[part] = _check_type(dotted, value, ref[part])
        else:
            node, ref = node[part], ref[part]


def merge(config: dict, defaults: dict, updates: dict, source: str) -> dict:
    for key, value in updates.items():
        _set(config, defaults, key, value, source)
    return config


def parse_overrides(items: list[str]) -> dict:
    updates = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"argument '{item}': expected key=value (for example epochs=3 or augment.hflip=true)")
        key, _, text = item.partition("=")
        updates[key.strip().replace("-", "_")] = _parse_value(text)
    return updates


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value at the top level")
    return data


def resolve(config_file: str | Path | None = None, overrides: list[str] | dict | None = None,
            base: dict | None = None) -> dict:
    """Defaults (or ``base``, e.g. a run's saved config) < config file < overrides."""
    defaults = load_defaults()
    config = copy.deepcopy(base if base is not None else defaults)
    if config_file:
        merge(config, defaults, read_config_file(config_file), str(config_file))
    if overrides:
        updates = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        merge(config, defaults, {k: v for k, v in updates.items() if v is not None}, "command line")
    return config


def save_config(config: dict, path: str | Path) -> Path:
    return write_text(path, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
