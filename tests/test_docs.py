"""The documentation cannot drift from the code (Datasette's pattern): every setting, command, option,
headless route and package is read from the code itself and must be in its document, and what a
document lists must exist. A new setting or route without its line in the docs fails the build."""

from __future__ import annotations

import argparse
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from appliance import config
from appliance.cli import build_parser
from appliance.runtime import initialise
from appliance.server.app import create_litestar
from appliance.server.metrics import Metrics

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PACKAGE = REPO / "appliance"
HEADLESS = "/v1/headless"
GLOBAL_OPTIONS = {"--help", "--data-dir", "--passphrase-stdin"}  # docs/cli.md's opening paragraph


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every markdown table row that is not a header or separator."""
    rows = []
    lines = text.splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        separator = re.compile(r"\|[-| :]+\|")
        if line.startswith("|") and not separator.fullmatch(line.strip()) and not separator.fullmatch(after.strip()):
            # `\|` inside a cell is a literal bar, not a column break
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def _none(found: Any, what: str) -> None:
    """Fail naming every item, however many (pytest would cut the list short)."""
    items = sorted(str(item) for item in found)
    assert not items, f"{what} ({len(items)}):\n  " + "\n  ".join(items)


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {heading}' section"
    return match.group(1)


# -- settings ------------------------------------------------------------------------------------
def test_every_setting_is_in_the_configuration_doc() -> None:
    documented = set()
    for row in _table_rows((DOCS / "configuration.md").read_text()):
        documented |= set(re.findall(r"`([a-z_]+\.[a-z_]+)`", row[0]))
    names = set(config.setting_names())
    _none(names - documented, "settings missing from docs/configuration.md")
    _none(documented - names, "docs/configuration.md lists settings that do not exist")


# -- command line --------------------------------------------------------------------------------
def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], set[str]]]:
    """(command path, its options) for every command and command group."""
    options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")} - GLOBAL_OPTIONS
    yield path, options
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _cli_rows() -> list[tuple[list[str], str]]:
    """(the command paths a row of docs/cli.md names, the whole row)."""
    rows = []
    for row in _table_rows((DOCS / "cli.md").read_text()):
        paths = []
        for usage in re.findall(r"`([^`]+)`", row[0]):
            words = []
            for word in usage.split():
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                words.append(word)
            if words:
                paths.append(" ".join(words))
        if paths:
            rows.append((paths, " | ".join(row)))
    return rows


def test_every_command_and_option_is_in_the_cli_doc() -> None:
    text = (DOCS / "cli.md").read_text()
    rows = _cli_rows()
    commands = dict(_commands(build_parser()))
    known = {" ".join(path) for path in commands}
    missing = []
    for path, options in commands.items():
        if not path:  # the program itself: --version, and the options every command takes
            missing += [o for o in (*options, *GLOBAL_OPTIONS - {"--help"}) if o not in text]
            continue
        name = " ".join(path)
        described = [row for paths, row in rows if any(p == name or p.startswith(name + " ") for p in paths)]
        if not described:
            missing.append(name)
            continue
        missing += [f"{name} {o}" for o in sorted(options) if not any(re.search(rf"{o}\b", r) for r in described)]
    _none(missing, "commands or options missing from docs/cli.md")
    _none([p for paths, _ in rows for p in paths if p not in known], "docs/cli.md describes commands that do not exist")


# -- headless routes -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Litestar]:
    runtime, _ = initialise(tmp_path_factory.mktemp("docs") / "data", None)
    try:
        yield create_litestar(runtime, Metrics())
    finally:
        runtime.close()


def _operations(app: Litestar, prefix: str) -> set[tuple[str, str]]:
    """(method, path relative to `prefix`) of every route the app serves under `prefix`."""
    found = set()
    for route in app.routes:
        if route.path.startswith(prefix + "/"):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path[len(prefix) :])
            found |= {(m, path) for m in getattr(route, "methods", ()) if m not in {"HEAD", "OPTIONS"}}
    return found


def test_every_headless_route_is_in_the_openapi_document(app: Litestar) -> None:
    routes = _operations(app, HEADLESS)
    assert len(routes) > 50  # the route table was read, not an empty list
    with TestClient(app) as client:
        document: dict[str, Any] = client.get("/api/docs/json").json()
    documented = {
        (method.upper(), path[len(HEADLESS) :])
        for path, item in document["paths"].items()
        if path.startswith(HEADLESS + "/")
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    _none(routes - documented, "headless routes missing from /api/docs/json")
    _none(documented - routes, "/api/docs/json documents routes the app does not serve")
    assert _operations(app, "/api" + HEADLESS) == routes  # every route also answers under /api


def test_every_headless_route_is_in_the_route_list(app: Litestar) -> None:
    listed = set()
    for row in _table_rows(_section((DOCS / "api-differences.md").read_text(), "Route list")):
        path = re.fullmatch(r"`(/[^`]*)`", row[0])
        assert path, f"a route list row starts with a path in backticks: {row}"
        listed |= {(method.strip(), path.group(1)) for method in row[1].split(",")}
    routes = _operations(app, HEADLESS)
    _none(routes - listed, "headless routes missing from docs/api-differences.md's route list")
    _none(listed - routes, "docs/api-differences.md's route list names routes that do not exist")


# -- packages ------------------------------------------------------------------------------------
def test_every_package_and_module_is_in_the_architecture_doc() -> None:
    text = (DOCS / "architecture.md").read_text()
    wanted = [f"appliance/{p.name}" for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
    for directory in sorted(d for d in PACKAGE.rglob("*") if d.is_dir() and any(d.glob("*.py"))):
        relative = directory.relative_to(PACKAGE).as_posix()
        # a top-level package by its path; a subpackage by its path inside its package's row
        wanted.append(f"appliance/{relative}/" if "/" not in relative else f"{relative}/")
    _none([w for w in wanted if w not in text], "packages missing from docs/architecture.md")
    named = re.findall(r"`(appliance/[\w/]+(?:\.py)?)/?`", text)
    _none([n for n in named if not (REPO / n).exists()], "docs/architecture.md names what is gone")


# -- comments ------------------------------------------------------------------------------------
OUTSIDE = re.compile(r"lab[ -]notes?|decisions? D\d|\(D\d+\b|\(issue \d+|\bissue \d+\b|§", re.I)


def _commentary(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each comment and docstring in a Python file."""
    previous = tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
        elif token.type == tokenize.STRING and previous in {tokenize.INDENT, tokenize.NEWLINE, tokenize.NL}:
            yield token.start[0], token.string  # a string standing alone as a statement: a docstring
        if token.type not in {tokenize.COMMENT, tokenize.NL}:
            previous = token.type
        elif token.type == tokenize.NL:
            previous = tokenize.NL


def test_comments_explain_from_the_repository() -> None:
    """Comments and docstrings cite only what is in this repository: no decision records, lab notes,
    issue numbers or section marks of documents a reader of the code does not have."""
    found = [
        f"{path.relative_to(REPO)}:{line + text[: match.start()].count(chr(10))}: {match.group(0)}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in _commentary(path)
        for match in OUTSIDE.finditer(text)
    ]
    _none(found, "comments citing documents outside the repository")
