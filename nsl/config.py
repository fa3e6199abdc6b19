"""Configuration: defaults < ``--config FILE`` < ``key=value`` < flags, resolved once into ``nsl.options.Options``.

Keys are the fields of ``nsl.options`` (flat, except ``augment.*`` and ``single.*``, which nest). Unknown keys fail
with the closest known key; every value is parsed by its field's kind (``nsl.fields``): ``mixed_precision=on``,
``cache=no`` and ``freeze_bn=true`` mean what a user means, ``epochs=abc`` or ``imgsz=-5`` is a one-line error.
``nsl/defaults.yaml`` is generated from the same declarations (its train part by ``render_defaults``; the whole file,
with a section per verb, is what ``nsl cfg`` prints: ``python -m nsl cfg > nsl/defaults.yaml``; a test keeps it
current), so the documented defaults cannot drift from the checked ones.

A ``--config FILE`` may hold the train keys at the top level (as a run's ``config.yaml`` does) or under ``train:``,
beside the sections of the other verbs (``SECTIONS``), which the train side leaves to them.

A run saves its resolved options as ``config.yaml`` (``save_config``); ``resolve(base=...)`` reads one back on top of
today's defaults, so a key added since the run was made takes its default, and a key since removed is dropped with
a log line (``nsl.rundir.RunDir.options``).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from pathlib import Path
from typing import Any, Iterator

import yaml

from nsl.errors import ConfigError
from nsl.fileio import write_text
from nsl.options import Options, Phase

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """One configuration key: where it lives in ``Options`` and how it is parsed."""

    key: str                 # as written: imgsz, augment.rotation
    path: tuple[str, ...]    # attribute path in Options: ("model", "imgsz")
    kind: Any
    default: Any
    help: str


def _walk(cls, path: tuple[str, ...] = (), prefix: str = "") -> Iterator[KeySpec]:
    for f in dataclasses.fields(cls):
        if f.metadata.get("group"):
            nested = f"{prefix}{f.name}." if f.metadata.get("prefix") else prefix
            yield from _walk(f.type if isinstance(f.type, type) else f.default_factory, (*path, f.name), nested)
        else:
            yield KeySpec(prefix + f.name, (*path, f.name), f.metadata["kind"], f.default, f.metadata["help"])


KEYS: dict[str, KeySpec] = {spec.key: spec for spec in _walk(Options)}
GROUPS = sorted({key.split(".")[0] for key in KEYS if "." in key})  # augment, single
# the sections of the other verbs in a config file (nsl.grammar resolves them; a test keeps this list current)
SECTIONS = ("val", "export", "app", "predict", "hand_model_build", "hand_model_fetch", "bench", "data_synth",
            "data_check", "data_hands", "capture")


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, list(KEYS) + GROUPS, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plain(value: Any) -> Any:
    """A value as YAML writes it: tuples as lists, phases as mappings."""
    if isinstance(value, Phase):
        return dataclasses.asdict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def flatten(data: dict, source: str, strict: bool = True) -> dict[str, Any]:
    """A nested mapping (YAML) -> {dotted key: value}; unknown keys raise (``strict``) or are dropped with a log line."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        name = str(name).strip().replace("-", "_")
        if name in GROUPS and isinstance(value, dict):
            for sub, sub_value in flatten({f"{name}.{k}": v for k, v in value.items()}, source, strict).items():
                flat[sub] = sub_value
        elif name in KEYS:
            flat[name] = value
        elif name in GROUPS:
            raise ConfigError(f"{source}: config key '{name}' is a group: give its keys ({name}.KEY=VALUE) or a "
                              f"mapping, got {value!r}")
        elif strict:
            raise ConfigError(f"{source}: unknown config key '{name}'{_did_you_mean(name)}")
        else:
            log.info("%s: key '%s' is no longer used by this version; ignored", source, name)
    return flat


def parse_value(text: str) -> Any:
    """A ``key=value`` value: YAML (numbers, lists, mappings, true/false); anything else stays text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    updates = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"argument '{item}': expected key=value (for example epochs=3 or augment.hflip=true)")
        key, _, text = item.partition("=")
        updates[key.strip().replace("-", "_")] = parse_value(text)
    return updates


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value at the top level")
    return data


def train_section(data: dict) -> dict:
    """The train keys of a config file: its top level (less the other verbs' sections), then its ``train:``."""
    section = data.get("train") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"config section 'train' must be a mapping of key: value, got {section!r}")
    top = {k: v for k, v in data.items() if k != "train" and k not in SECTIONS}
    return {**top, **section}


def build(values: dict[str, Any]) -> Options:
    """{dotted key: raw value} (every key of ``KEYS``) -> Options, each value parsed by its kind."""
    tree: dict = {}
    for key, spec in KEYS.items():
        node = tree
        for part in spec.path[:-1]:
            node = node.setdefault(part, {})
        node[spec.path[-1]] = spec.kind.parse(key, values[key])
    return _instantiate(Options, tree)


def _instantiate(cls, tree: dict):
    kwargs = {}
    for f in dataclasses.fields(cls):
        value = tree[f.name]
        kwargs[f.name] = _instantiate(f.type if isinstance(f.type, type) else f.default_factory, value) \
            if f.metadata.get("group") else value
    return cls(**kwargs)


def resolve(config_file: str | Path | None = None, overrides: list[str] | dict | None = None,
            base: dict | None = None, check_paths: bool = True) -> Options:
    """Defaults < ``base`` (a run's saved config) < config file < overrides (None values are ignored), checked.

    ``check_paths``: the data, labels and weights files must exist (a new run; a saved run is read without it)."""
    values = {key: _plain(spec.default) for key, spec in KEYS.items()}
    given: set[str] = set()  # the keys some layer above the defaults set
    layers = []
    if base:
        layers.append(flatten(base, "saved config", strict=False))
    if config_file:
        layers.append(flatten(train_section(read_config_file(config_file)), str(config_file)))
    if overrides:
        updates = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        layers.append(flatten({k: v for k, v in updates.items() if v is not None}, "command line"))
    for layer in layers:
        values.update(layer)
        given.update(layer)
    if "phases" in given and "strategy" not in given:
        values["strategy"] = "progressive"  # a recipe of phases is progressive training (the default is single)
    options = build(values)
    return options.check_paths() if check_paths else options


def get(options: Options, key: str) -> Any:
    """The value of a dotted key (``augment.rotation``)."""
    node: Any = options
    for part in KEYS[key].path:
        node = getattr(node, part)
    return node


def to_dict(options: Options) -> dict:
    """The options as a nested mapping in the order of ``KEYS``: what ``config.yaml`` holds."""
    out: dict = {}
    for key in KEYS:
        value = _plain(get(options, key))
        if "." in key:
            group_name, name = key.split(".", 1)
            out.setdefault(group_name, {})[name] = value
        else:
            out[key] = value
    return out


def updated(options: Options, changes: dict[str, Any]) -> Options:
    """A copy of ``options`` with ``changes`` ({dotted key: value}, None included) applied and checked."""
    values = flatten(to_dict(options), "options")
    values.update(flatten(changes, "changes"))
    return build(values)


def save_config(options: Options, path: str | Path) -> Path:
    return write_text(path, yaml.safe_dump(to_dict(options), sort_keys=False, allow_unicode=True))


def load_defaults() -> dict:
    """The defaults as a nested mapping (as ``config.yaml`` would hold them)."""
    return to_dict(build({key: _plain(spec.default) for key, spec in KEYS.items()}))


def yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000, sort_keys=False).strip()
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def render_defaults(options: Options | None = None) -> str:
    """The train keys as ``nsl/defaults.yaml`` holds them: each with its value (``options``, else the default), type
    and one-line help."""
    values = {key: _plain(get(options, key)) for key in KEYS} if options is not None else \
        {key: _plain(spec.default) for key, spec in KEYS.items()}
    lines = []
    for group_field in dataclasses.fields(Options):
        lines.append(f"# --- {group_field.metadata['help']} ---")
        nested = None
        for key, spec in KEYS.items():
            if spec.path[0] != group_field.name:
                continue
            if "." in key:
                head, name = key.split(".", 1)
                if head != nested:
                    nested = head
                    lines.append(f"{head}:{' ' * max(1, 26 - len(head))}# {_group_help(spec.path)}")
                lines.append(_line(f"  {name}", spec, values[key]))
            else:
                if spec.key == "phases":
                    lines.append(f"phases:{' ' * 21}# ({spec.kind.label()}) {spec.help}")
                    lines += [f"  - {yaml_value(p)}" for p in values[key]]
                    continue
                lines.append(_line(key, spec, values[key]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _group_help(path: tuple[str, ...]) -> str:
    cls = Options
    for part in path[:-1]:
        f = next(f for f in dataclasses.fields(cls) if f.name == part)
        help_text = f.metadata["help"]
        cls = f.type if isinstance(f.type, type) else f.default_factory
    return help_text


def _line(name: str, spec: KeySpec, value: Any) -> str:
    text = f"{name}: {yaml_value(value)}"
    return f"{text:<27} # ({spec.kind.label()}) {spec.help}"
