"""The README cannot rot: every `nsl ...` command in it parses with the real CLI, every script it names exists
and takes the options the README gives it, and every file it links to is there. (The demo runs the main ones.)"""

from __future__ import annotations

import re
import shlex

import pytest

from nsl.cli import build_parser
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
NSL_PREFIX = re.compile(r"^(?:~/\.venvs/nsl-edge/bin/|\.venvs/(?:train|edge)/bin/)?nsl\s")


def block_lines() -> list[str]:
    """Lines of the fenced bash blocks, trailing comments removed: whole commands."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        lines += [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line]


def inline_spans() -> list[str]:
    """Inline code spans of the prose: whole commands or mentions of a verb (`nsl app`)."""
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))


def code_lines() -> list[str]:
    return block_lines() + inline_spans()


def nsl_commands(lines: list[str] | None = None) -> list[str]:
    return sorted({NSL_PREFIX.sub("nsl ", line) for line in (block_lines() if lines is None else lines)
                   if NSL_PREFIX.match(line) and "..." not in line})


def script_commands() -> list[str]:
    return sorted({line for line in code_lines() if re.match(r"^(sudo )?bash scripts/", line)})


def test_the_readme_names_commands_at_all():
    assert len(nsl_commands()) >= 15 and len(script_commands()) >= 4


@pytest.mark.parametrize("command", nsl_commands())
def test_every_nsl_command_parses(command):
    args = shlex.split(command.replace("<", "").replace(">", ""))[1:]
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit as stop:  # --help exits 0; a bad verb or option exits 2
        assert stop.code == 0, f"README: '{command}' does not parse"
        return
    assert getattr(parsed, "func", None), f"README: '{command}' names no command"


@pytest.mark.parametrize("mention", nsl_commands(inline_spans()))
def test_every_nsl_mention_names_real_verbs_and_options(mention):
    words = shlex.split(mention)[1:]
    parser = build_parser()
    for word in words:  # verbs, sub-verbs and options only: the prose leaves out required arguments
        if word.startswith("-"):
            assert word.split("=")[0] in parser._option_string_actions, f"README: '{mention}': no option {word}"
        else:
            verbs = next((action for action in parser._actions if action.__class__.__name__ == "_SubParsersAction"),
                         None)
            if verbs is None or word not in verbs.choices:  # an option's value or a positional argument
                continue
            parser = verbs.choices[word]


@pytest.mark.parametrize("command", script_commands())
def test_every_script_exists_with_its_options(command):
    words = shlex.split(command.replace("<", "").replace(">", ""))
    script = ROOT / words[words.index("bash") + 1]
    assert script.is_file(), f"README names {script}, which does not exist"
    text = script.read_text(encoding="utf-8")
    for option in (word for word in words if word.startswith("--")):
        assert option in text, f"README gives {script.name} the option {option}, which it does not take"


def test_every_linked_file_exists():
    links = re.findall(r"\]\(((?!https?://|#)[^)#]+)", README)
    assert links
    for link in links:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
