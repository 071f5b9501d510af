"""compose.yaml read the way Docker Compose runs it, for tests without a Docker engine.

``load()`` gives the document (YAML merge keys resolved); ``argv_of`` the argument vector a
service's container starts with (the image's ENTRYPOINT/CMD when compose sets none);
``qev_invocations`` the ``qev`` command lines in it, also inside ``sh -c`` scripts;
``mounts`` a service's volume mounts.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SHELLS = {"sh", "bash", "dash", "ash"}
SHELL_OPERATORS = ";&|<>()\n"


def load() -> dict[str, Any]:
    """compose.yaml as a mapping."""
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def dockerfile_default(instruction: str) -> list[str]:
    """The exec-form ``ENTRYPOINT`` or ``CMD`` of the Dockerfile's last stage."""
    values = re.findall(rf"^{instruction}\s+(\[.*\])\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    assert values, f"Dockerfile has no exec-form {instruction}"
    parsed: list[str] = yaml.safe_load(values[-1])
    return parsed


def builds_qev(service: dict[str, Any]) -> bool:
    """Whether the service runs this repository's image (``build: .`` or ``qev:*``)."""
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context in (".", "./") or str(service.get("image", "")).startswith("qev:")


def _vector(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def argv_of(service: dict[str, Any]) -> list[str]:
    """The container's argument vector: entrypoint + command, image defaults filled in.

    As Docker does it: an ``entrypoint`` set in compose drops the image's ``CMD``.
    """
    entrypoint = _vector(service.get("entrypoint"))
    command = _vector(service.get("command"))
    if builds_qev(service) and entrypoint is None:
        entrypoint = dockerfile_default("ENTRYPOINT")
        if command is None:
            command = dockerfile_default("CMD")
    return [*(entrypoint or []), *(command or [])]


def unescape(text: str) -> str:
    """A compose value as the container sees it (``$$`` is a literal ``$``)."""
    return text.replace("$$", "$")


def _simple_commands(script: str) -> list[list[str]]:
    """The words of each simple command of a POSIX shell script (no heredocs)."""
    lex = shlex.shlex(unescape(script), posix=True, punctuation_chars=SHELL_OPERATORS)
    lex.whitespace = " \t\r"  # newlines separate commands: they are operators here
    lex.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lex:
        if token and all(c in SHELL_OPERATORS for c in token):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _qev_args(words: list[str]) -> list[str] | None:
    while words and (words[0] == "exec" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
        words = words[1:]
    if not words:
        return None
    if Path(words[0]).name == "qev":
        return words[1:]
    if Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "qev"]:
        return words[3:]
    return None


def qev_invocations(argv: list[str]) -> list[list[str]]:
    """The arguments of each ``qev`` run by ``argv`` (directly or in an ``sh -c`` script)."""
    direct = _qev_args(list(argv))
    if direct is not None:
        return [direct]
    if argv and Path(argv[0]).name in SHELLS:
        flags = [i for i, a in enumerate(argv[1:], 1) if re.fullmatch(r"-[a-z]*c[a-z]*", a)]
        if flags and flags[0] + 1 < len(argv):
            found = (_qev_args(c) for c in _simple_commands(argv[flags[0] + 1]))
            return [args for args in found if args is not None]
    return []


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``."""

    source: str
    target: str
    read_only: bool


def mounts(service: dict[str, Any]) -> list[Mount]:
    """A service's volume mounts (short and long syntax)."""
    out = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            out.append(Mount(entry["source"], entry["target"], bool(entry.get("read_only"))))
            continue
        parts = str(entry).split(":")
        source, target = parts[0], parts[1]
        options = parts[2].split(",") if len(parts) > 2 else []
        out.append(Mount(source, target, "ro" in options))
    return out


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (list syntax too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


__all__ = [
    "COMPOSE",
    "ROOT",
    "Mount",
    "argv_of",
    "builds_qev",
    "dockerfile_default",
    "environment",
    "load",
    "mounts",
    "qev_invocations",
    "unescape",
]
