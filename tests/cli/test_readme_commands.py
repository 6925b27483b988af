"""Every `kgbuild ...` command that README shows (code blocks and code spans) names a real
command and only options that command has: README's examples cannot drift from the CLI."""

import re
import shlex
from pathlib import Path

import typer

from kgbuild.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands(text: str) -> list[str]:
    """The command lines README shows: lines of fenced code blocks and inline code spans that
    start with `kgbuild ` (continuation lines joined, comments and [optional] parts dropped)."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    spans = re.findall(r"`(kgbuild [^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    lines = [line for block in blocks for line in re.sub(r"\\\n\s*", " ", block).splitlines()] + spans
    found = []
    for line in lines:
        line = line.strip()
        if not line.startswith("kgbuild "):
            continue
        line = re.sub(r"\s#\s.*$", "", line).replace("\\|", "|")
        while re.search(r"\[[^\[\]]*\]", line):  # synopsis: [--option VALUE] may nest
            line = re.sub(r"\[[^\[\]]*\]", "", line)
        found.append(" ".join(line.split()))
    return found


def options_of(command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def check(line: str, root) -> list[str]:
    words = shlex.split(line)[1:]
    command, path = root, []
    while hasattr(command, "commands") and words:
        name = words[0].split("|")[0]  # synopsis alternatives: `train ner|re`
        if name not in command.commands:
            break
        command = command.commands[name]
        path.append(words.pop(0))
    if hasattr(command, "commands") and (words or command is root):  # a group alone names the group
        return [f"no command {' '.join(['kgbuild', *path, *words[:1]])!r} in: {line}"]
    known = options_of(command) | {"--help"}
    return [f"{' '.join(['kgbuild', *path])} has no option {word.split('=')[0]} in: {line}"
            for word in words
            if re.fullmatch(r"--[a-z][a-z0-9-]*(=.*)?|-[a-zA-Z]", word) and word.split("=")[0] not in known]


def test_readme_shows_many_commands():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 100
    heads = {line.split()[1] for line in commands}
    assert {"run", "query", "export", "embed", "predict", "load", "ask", "eval", "train"} <= heads


def test_every_readme_command_and_option_exists():
    root = typer.main.get_command(app)
    problems = [p for line in readme_commands(README.read_text(encoding="utf-8")) for p in check(line, root)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_an_unknown_option_and_command():
    root = typer.main.get_command(app)
    assert check("kgbuild run corpus/ -o out/ --no-such-option", root)
    assert check("kgbuild eval no-such-benchmark --json", root)
    assert not check("kgbuild run corpus/ -o out/ --device cpu", root)
    assert readme_commands("```bash\nkgbuild run a \\\n  --quiet  # note\n```\nsee `kgbuild query out/ \"ASK {}\"`") == [
        "kgbuild run a --quiet", 'kgbuild query out/ "ASK {}"']
