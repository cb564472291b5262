"""README says only what is true: its commands parse, and its parts table marks what is
not built as coming."""

import re
import shlex
from pathlib import Path

from dockyard import cli

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def _commands() -> list[list[str]]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            for part in re.split(r";|&&|\|", line):
                words = shlex.split(part)
                if words and words[0] == "dockyard":
                    out.append(words[1:])
    # inline ones too, but for a bare command group (`dockyard users`) named in a sentence
    out += [shlex.split(c)[1:] for c in re.findall(r"`(dockyard [^`\[]+)`", README)
            if not c.endswith(" ") and "..." not in c and len(c.split()) > 2]
    return out


def test_every_dockyard_command_in_the_readme_parses():
    commands = _commands()
    assert len(commands) >= 10
    for argv in commands:
        try:
            cli.parse(cli.build_parser(), argv)
        except SystemExit as e:
            raise AssertionError(f"README: dockyard {' '.join(argv)} does not parse") from e


def test_the_parts_table_marks_what_is_not_built_as_coming():
    rows = dict(re.findall(r"^\| ([^|]+?) \| (available|coming) \|", README, re.M))
    assert len(rows) >= 8
    coming = {part for part, state in rows.items() if state == "coming"}
    available = {part for part, state in rows.items() if state == "available"}
    for name in ("replicas",):
        assert any(name in part for part in coming), name
    for name in ("ECR API", "mesh", "scanning", "CloudWatch Logs", "CloudWatch metrics", "load balancer",
                 "mTLS", "PostgreSQL"):
        assert any(name in part for part in available), name
    intro = README.split("|", 1)[0]
    assert "App Mesh" in intro and "ECR" in intro  # built: the intro says so
