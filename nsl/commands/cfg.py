"""`nsl cfg [VERB] [key=value ...]`: the resolved settings, each with its type and one-line help.

With nothing given it prints the defaults file itself (``python -m nsl cfg > nsl/defaults.yaml`` regenerates it; a
test keeps it current): the train keys at the top level, as a run's ``config.yaml`` holds them, then one section
per verb. Works in either environment: nothing here imports a stage.
"""

from __future__ import annotations

HEADER = """\
# nsl-edge defaults: what `nsl cfg` prints when nothing is given (python -m nsl cfg > nsl/defaults.yaml).
# The train keys at the top level (a --config FILE may also put them under train:), then a section per verb.
# Every key is also key=value on its verb's command line: nsl train epochs=30, nsl export RUN int8=true.
# Precedence: this file < --config FILE < key=value < flags. A run saves its resolved train keys in config.yaml.
"""


def _line(name: str, kind, value, help_text: str) -> str:
    from nsl.config import yaml_value

    text = f"{name}: {yaml_value(value)}"
    return f"{text:<27} # ({kind.label()}) {help_text}"


def render_section(section: str, values: dict, keys: dict) -> str:
    lines = [f"# --- nsl {section.replace('_', ' ')} ---", f"{section}:"]
    lines += [_line(f"  {key}", spec.kind, values[key], spec.help) for key, spec in keys.items()]
    return "\n".join(lines) + "\n"


def render_all(root) -> str:
    """The defaults file: train keys, then every verb's section."""
    from nsl.config import SECTIONS, render_defaults
    from nsl.grammar import leaf_verbs

    verbs = leaf_verbs(root)
    parts = [HEADER, render_defaults()]
    for section in SECTIONS:
        keys = verbs[section].nsl_keys
        parts.append(render_section(section, {k: spec.default for k, spec in keys.items()}, keys))
    return "\n".join(parts)


def _train(words_settings: list[str], config_file) -> str:
    from nsl.config import render_defaults, resolve

    return render_defaults(resolve(config_file, words_settings or None, check_paths=False))


def _cfg(args) -> int:
    from nsl.cli import build_parser
    from nsl.errors import ConfigError
    from nsl.grammar import KEY_VALUE, leaf_verbs, pairs, resolve_verb

    root = build_parser()
    verbs = leaf_verbs(root)
    words = [w for w in args.words if not KEY_VALUE.match(w)]
    settings = [w for w in args.words if KEY_VALUE.match(w)]
    section = "_".join(words).replace("-", "_")
    if not section and not settings and not args.config:
        print(render_all(root), end="")
        return 0
    if section in ("", "train", "compare"):
        print(_train(settings, args.config), end="")
        return 0
    if section not in verbs or not hasattr(verbs[section], "nsl_keys"):
        known = ", ".join(["train", *sorted(s for s, p in verbs.items() if hasattr(p, "nsl_keys"))])
        raise ConfigError(f"no verb '{' '.join(words)}' (verbs: {known})")
    parser = verbs[section]
    values = resolve_verb(parser, {}, pairs(settings), args.config, complete=False)
    print(render_section(section, values, parser.nsl_keys), end="")
    return 0


def add_commands(commands) -> None:
    """Register `nsl cfg`."""
    parser = commands.add_parser(
        "cfg", help="print the resolved settings of a verb (all of them: the defaults file), with their help",
        description="The settings a verb would run with, after --config FILE and key=value, each with its type and "
                    "one-line help. Without a verb: the whole defaults file (train keys, then a section per verb).",
        epilog="e.g. nsl cfg   nsl cfg train epochs=30   nsl cfg export int8=true   nsl cfg data synth")
    parser.add_argument("words", nargs="*", metavar="VERB|key=value", help="a verb (data synth: two words) and keys")
    parser.add_argument("--config", metavar="FILE", help="YAML file with a section per verb (train keys on top)")
    parser.set_defaults(func=_cfg)
