"""One command grammar: every verb takes ``key=value`` beside its flags (Ultralytics' ``yolo export model=x int8``).

The keys of a verb are its flags, named by their destination (``--max-drop`` -> ``max_drop``), each with a kind of
``nsl.fields`` (derived from the flag: a switch is ``Bool``, ``type=int`` is ``Int``, choices are a ``Choice``; a flag
may carry its own with ``keyed(action, kind)``), its default and its one-line help. So a new flag is a new key, and
``key=value`` gets the same "did you mean" and type checks as the train keys. Precedence, as for ``nsl train``:

    the flag's default  <  --config FILE (the verb's section, e.g. ``export:``)  <  key=value  <  the flag itself

``nsl train`` and ``nsl compare`` keep their own resolver (``nsl.config``: the keys of ``nsl.options``); every other
verb is resolved here, inside ``Parser.parse_args``, so a handler sees one namespace whatever grammar was used.
The defaults file has one section per verb (``nsl.config.SECTIONS``; ``nsl cfg`` prints them resolved).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import sys
from pathlib import Path
from typing import Any

from nsl.config import parse_value, read_config_file
from nsl.errors import ConfigError
from nsl.fields import Bool, Choice, Float, Int, Kind, ListOf, Text

OWN_RESOLVER = ("train", "compare", "cfg")   # verbs whose key=value are the train keys (or, for cfg, its words)
SKIPPED_DESTS = ("help", "config", "version", "verbose")
KEY_VALUE = re.compile(r"^[A-Za-z_][\w.-]*=")


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of a verb: the flag it stands for, its kind, default and help."""

    key: str
    flag: str | None
    kind: Kind
    default: Any
    help: str
    required: bool = False


@dataclasses.dataclass(frozen=True)
class IntChoice(Kind):
    """A whole number out of a few (``--hands 1|2``)."""

    values: tuple[int, ...] = ()

    def convert(self, key: str, value: Any) -> int:
        number = Int().parse(key, value) if not isinstance(value, bool) else None
        if number not in self.values:
            raise ConfigError(f"config key '{key}': expected {self.expected()}, got {value!r}")
        return number

    def expected(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def label(self) -> str:
        return " | ".join(map(str, self.values))


def keyed(action: argparse.Action, kind: Kind) -> argparse.Action:
    """Give a flag its own kind (limits the derived one lacks)."""
    action.kind = kind
    return action


def _kind_of(action: argparse.Action) -> Kind:
    if getattr(action, "kind", None) is not None:
        return action.kind
    nullable = action.default is None
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return Bool()
    if action.choices:
        if all(isinstance(c, str) for c in action.choices):
            return Choice(values=tuple(action.choices), nullable=nullable)
        return IntChoice(values=tuple(action.choices), nullable=nullable)
    item = Int(nullable=nullable) if action.type is int else Float(nullable=nullable) if action.type is float \
        else Text(nullable=nullable)
    return ListOf(item=item, nullable=nullable) if action.nargs in ("+", "*") else item


def _help(action: argparse.Action) -> str:
    return " ".join((action.help or "").replace("%%", "%").split())


def verb_keys(parser: argparse.ArgumentParser) -> dict[str, Key]:
    """The keys of one verb's parser (recorded by ``install``, which takes the flags' defaults over)."""
    keys = getattr(parser, "nsl_keys", None)
    if keys is not None:
        return keys
    keys = {}
    for action in parser._actions:
        if not action.option_strings or action.dest in SKIPPED_DESTS or \
                isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        flag = max(action.option_strings, key=len)
        keys[action.dest] = Key(action.dest, flag, _kind_of(action), action.default, _help(action), action.required)
    return keys


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    return dict(action.choices) if action else {}


def leaf_verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """{section name: parser} of every verb that runs something ('data synth' -> 'data_synth')."""
    found = {}
    for name, sub in subcommands(parser).items():
        below = leaf_verbs(sub, (*path, name))
        found.update(below or {"_".join((*path, name)).replace("-", "_"): sub})
    return found


def install(root: argparse.ArgumentParser) -> None:
    """Give every verb (but those with their own resolver) ``--config FILE`` and ``key=value``: record its keys,
    then take the flags' defaults over (absent flags stay absent, so a flag given is told from one left out)."""
    for section, parser in leaf_verbs(root).items():
        if section.split("_")[0] in OWN_RESOLVER:
            continue
        keys = verb_keys(parser)
        parser.nsl_keys, parser.nsl_section = keys, section
        for action in parser._actions:
            if action.dest in keys:
                action.default, action.required = argparse.SUPPRESS, False
        parser.add_argument("--config", metavar="FILE", default=None,
                            help=f"YAML file with a '{section}:' section of key: value (below key=value and flags)")
        parser.epilog = ((parser.epilog + "\n\n") if parser.epilog else "") + \
            f"Every flag is also a key: key=value (e.g. {_example(keys)}); nsl cfg {section} lists them."


def _example(keys: dict[str, Key]) -> str:
    key = next((k for k in keys.values() if isinstance(k.kind, Bool)), None) or next(iter(keys.values()), None)
    if key is None:
        return "key=value"
    return f"{key.key}=true" if isinstance(key.kind, Bool) else f"{key.key}={key.default}"


def find_verb(root: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.ArgumentParser | None, int]:
    """The verb's parser that ``argv`` names, and the index of the first word after the verb."""
    parser, index, found = root, 0, None
    while index < len(argv):
        word = argv[index]
        choices = subcommands(parser)
        if word in choices:
            parser, found = choices[word], choices[word]
            index += 1
            continue
        if word.startswith("-") and not choices:
            break
        if not word.startswith("-"):
            break
        index += 1
    return found, index


def split_settings(parser: argparse.ArgumentParser, argv: list[str], start: int) -> tuple[list[str], list[str]]:
    """``argv`` without the key=value words after the verb, and those words (a flag's own value is left alone)."""
    takes_value = {opt: a for a in parser._actions for opt in a.option_strings if a.nargs != 0}
    rest, settings, index = list(argv[:start]), [], start
    while index < len(argv):
        word = argv[index]
        action = takes_value.get(word)
        if action is not None and index + 1 < len(argv) and action.nargs != "?" and word != "--":
            rest += [word, argv[index + 1]]
            index += 2
            continue
        if KEY_VALUE.match(word) and not Path(word).exists():
            settings.append(word)
        else:
            rest.append(word)
        index += 1
    return rest, settings


def _did_you_mean(key: str, keys) -> str:
    close = difflib.get_close_matches(key, list(keys), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def section_of(config_file: str | None, section: str) -> dict:
    """The verb's section of a ``--config`` file (absent: nothing)."""
    if not config_file:
        return {}
    data = read_config_file(config_file).get(section) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{config_file}: section '{section}' must be a mapping of key: value, got {data!r}")
    return data


def parse_settings(keys: dict[str, Key], items: dict[str, Any], source: str, section: str) -> dict[str, Any]:
    """{key: raw value} -> {key: checked value}; an unknown key names the closest one."""
    out = {}
    for raw_key, raw in items.items():
        key = str(raw_key).strip().replace("-", "_")
        if key not in keys:
            raise ConfigError(f"{source}: unknown key '{key}' for nsl {section.replace('_', ' ')}"
                              f"{_did_you_mean(key, keys)} (nsl cfg {section} lists the keys)")
        kind = keys[key].kind
        if isinstance(raw, str) and not isinstance(kind, Text):
            raw = parse_value(raw)
        out[key] = kind.parse(key, raw)
    return out


def pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, text = item.partition("=")
        out[key.strip()] = text
    return out


def resolve_verb(parser: argparse.ArgumentParser, given: dict[str, Any], settings: dict[str, Any],
                 config_file: str | None = None, complete: bool = True) -> dict[str, Any]:
    """defaults < --config section < key=value (``settings``, raw) < flags (``given``, already parsed);
    ``complete``: a required key must have a value."""
    keys, section = parser.nsl_keys, parser.nsl_section
    values = {key: spec.default for key, spec in keys.items()}
    values.update(parse_settings(keys, section_of(config_file, section), str(config_file), section))
    values.update(parse_settings(keys, settings, "command line", section))
    values.update({key: value for key, value in given.items() if key in keys})
    missing = [spec for key, spec in keys.items() if complete and spec.required and values.get(key) is None]
    if missing:
        raise ConfigError(f"missing {missing[0].flag} (or {missing[0].key}=...): {missing[0].help}")
    return values


class Parser(argparse.ArgumentParser):
    """``argparse`` with the grammar: key=value words after a verb are that verb's keys."""

    def parse_args(self, args=None, namespace=None):
        argv = [str(word) for word in (sys.argv[1:] if args is None else args)]
        verb, start = find_verb(self, argv)
        if verb is None:
            return super().parse_args(argv, namespace)
        rest, settings = split_settings(verb, argv, start)
        parsed = super().parse_args(rest, namespace)
        if not hasattr(verb, "nsl_keys"):  # train, compare, cfg: their key=value list, wherever the words stood
            listed = next((a.dest for a in verb._actions if not a.option_strings and a.nargs == "*"), None)
            if listed is not None:
                setattr(parsed, listed, [*(getattr(parsed, listed, None) or []), *settings])
            elif settings:
                self.error(f"unrecognized arguments: {' '.join(settings)}")
            return parsed
        try:
            values = resolve_verb(verb, vars(parsed), pairs(settings), getattr(parsed, "config", None))
        except ConfigError as err:
            print(f"{verb.prog}: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        for key, value in values.items():
            setattr(parsed, key, value)
        return parsed


def verb_parser(module: str, section: str) -> argparse.ArgumentParser:
    """One verb's parser with the grammar installed, without the rest of the CLI (for ``nsl.api``)."""
    import importlib

    root = Parser(prog="nsl")
    importlib.import_module(module).add_commands(root.add_subparsers(dest="command"))
    install(root)
    return leaf_verbs(root)[section]


def settings_namespace(parser: argparse.ArgumentParser, keys: dict[str, Any], config_file=None,
                       **positionals) -> argparse.Namespace:
    """A handler's namespace from Python keyword arguments, checked as key=value would be."""
    values = resolve_verb(parser, {}, keys, config_file)
    return argparse.Namespace(**positionals, **values)
