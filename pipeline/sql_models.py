"""One runner for the SQL models of a package: features/sql/, pipeline/publish/sql/.

A model is one file `<package>/sql/<name>.sql` whose SELECT defines the table or view `<name>`
(dbt / SQLMesh style: import CTEs, logic CTEs, a final select). The file opens with its header,
one `-- key: value` line per setting, before any other line:

    -- kind: full                  full | incremental_by_week | view | query | script | macros
    -- grain: user_id, week_start  the columns a row is unique on (required but for script, macros)
    -- temporary: true             optional: a TEMP table or view (a read-only connection's)
    -- tags: publish               optional: the groups `run(..., select=TAG)` picks models by

kinds:
    full                 CREATE OR REPLACE [TEMP] TABLE <name> AS <select>
    incremental_by_week  the same when built whole; has a week_start column, and its package's
                         owner may rebuild chosen weeks only (features.build, and
                         pipeline.publish.scores through `Package.replace_weeks`)
    view                 CREATE OR REPLACE [TEMP] VIEW <name> AS <select>
    query                a SELECT that Python runs itself (`Package.sql`), never materialized
    script               statements run as they are when asked (`Package.execute`), e.g. DDL
    macros               statements (CREATE MACRO ...) run before the models of every `run`

Every file is rendered with Jinja first (undefined names are errors): `context` comes from the
package's owner (features.build.TEMPLATE_CONTEXT: the peer features), and `{% import
'macros.jinja' as m %}` reads the package's shared Jinja macros from the same folder.

The run order comes from the files: a model depends on each other model of its package that it
names after FROM or JOIN (outside comments and strings); a topological sort orders them, ties by
name. Selecting models by tag runs those only, in that order; the models they read that are not
selected must exist already.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import duckdb
import jinja2

KINDS = ("full", "incremental_by_week", "view", "query", "script", "macros")
MATERIALIZED = ("full", "incremental_by_week", "view")
HEADER_KEYS = ("kind", "grain", "temporary", "tags")
_HEADER_LINE = re.compile(r"--\s*(\w+):\s*(.*?)\s*")
_REFERENCE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()", re.IGNORECASE)
_COMMENT_OR_STRING = re.compile(r"--[^\n]*|'(?:[^']|'')*'")


class ModelError(ValueError):
    """A model file without a valid header, or models whose references form a cycle."""


@dataclass(frozen=True)
class Model:
    """One SQL file: its header and its rendered text."""

    name: str
    kind: str
    grain: str
    sql: str
    temporary: bool = False
    tags: frozenset[str] = frozenset()
    depends_on: frozenset[str] = frozenset()

    def statement(self, *, temporary: bool | None = None) -> str:
        """The statement that (re)creates the model; `temporary` overrides the header's."""
        temp = "TEMP " if (self.temporary if temporary is None else temporary) else ""
        if self.kind == "view":
            return f"CREATE OR REPLACE {temp}VIEW {self.name} AS {self.sql}"
        if self.kind in ("full", "incremental_by_week"):
            return f"CREATE OR REPLACE {temp}TABLE {self.name} AS {self.sql}"
        raise ModelError(f"model {self.name} is a {self.kind}, not a table or view")


@dataclass(frozen=True)
class Package:
    """The models of one package, in run order (`models` keeps that order)."""

    name: str
    models: Mapping[str, Model] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Model:
        return self.models[name]

    def order(self, select: str | None = None, *, kinds: Iterable[str] = MATERIALIZED) -> tuple[str, ...]:
        """The names of the tables and views (or `kinds`) to build, in run order: all, or those
        tagged `select`."""
        wanted = set(kinds)
        return tuple(name for name, model in self.models.items()
                     if model.kind in wanted and (select is None or select in model.tags))

    def upstream(self, name: str) -> tuple[str, ...]:
        """The models `name` reads, directly or through others, in run order."""
        found: set[str] = set()
        todo = list(self.models[name].depends_on)
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(self.models[current].depends_on)
        return tuple(n for n in self.models if n in found)

    def sql(self, name: str) -> str:
        """The rendered text of model `name` (for a query: the SELECT to run)."""
        return self.models[name].sql

    def run_macros(self, con: duckdb.DuckDBPyConnection) -> None:
        """Run the package's macros files (kind macros)."""
        for name in self.order(kinds=("macros",)):
            self.execute(con, name)

    def execute(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        """Run a script or macros file's statements as they are."""
        try:
            con.execute(self.models[name].sql)
        except duckdb.Error as error:
            raise RuntimeError(f"running {self.name} script {name!r} failed: {error}") from error

    def build(self, con: duckdb.DuckDBPyConnection, name: str, *, temporary: bool | None = None) -> None:
        """CREATE OR REPLACE one table or view from its model (a TEMP one when `temporary`, which
        then shadows a persistent one of the same name); a script runs as it is."""
        if self.models[name].kind in ("script", "macros"):
            self.execute(con, name)
            return
        try:
            con.execute(self.models[name].statement(temporary=temporary))
        except duckdb.Error as error:
            raise RuntimeError(f"building {self.name} model {name!r} failed: {error}") from error

    def replace_weeks(self, con: duckdb.DuckDBPyConnection, name: str, weeks_variable: str) -> None:
        """Replace the rows of the incremental_by_week table `name` of the weeks listed in the
        variable `weeks_variable` (DATE[]) with its model's rows of those weeks: the model itself
        should read only those weeks (its rows of any other week are dropped)."""
        model = self.models[name]
        if model.kind != "incremental_by_week":
            raise ModelError(f"model {name} is a {model.kind}, not incremental_by_week")
        weeks = f"SELECT unnest(CAST(getvariable('{weeks_variable}') AS DATE[]))"
        try:
            con.execute(f"DELETE FROM {name} WHERE week_start IN ({weeks})")
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM ({model.sql}) WHERE week_start IN ({weeks})")
        except duckdb.Error as error:
            raise RuntimeError(f"replacing weeks of {self.name} model {name!r} failed: {error}") from error

    def run(self, con: duckdb.DuckDBPyConnection, select: str | None = None) -> tuple[str, ...]:
        """Run the macros, then build every table and view and run every script (or those tagged
        `select`) in run order; returns their names."""
        self.run_macros(con)
        names = self.order(select, kinds=(*MATERIALIZED, "script"))
        for name in names:
            self.build(con, name)
        return names

    def fingerprint(self) -> str:
        """sha256 of every model's rendered text: changes when any model (or its context) does."""
        digest = hashlib.sha256()
        for name, model in self.models.items():
            digest.update(f"{name}\0{model.kind}\0{model.sql}\0".encode())
        return digest.hexdigest()


def load(package: str, context: Mapping[str, Any] | None = None) -> Package:
    """Read, render and order the models of `package` (its sql/*.sql files)."""
    folder = resources.files(package).joinpath("sql")
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: folder.joinpath(name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
    )
    files = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    models: dict[str, Model] = {}
    for file in files:
        name = file.removesuffix(".sql")
        text = environment.get_template(file).render(**dict(context or {}))
        models[name] = _model(package, name, text)
    names = set(models)
    models = {name: _with_dependencies(model, names) for name, model in models.items()}
    return Package(package, {name: models[name] for name in _sorted(package, models)})


def run(
    con: duckdb.DuckDBPyConnection, package: str, select: str | None = None, *,
    context: Mapping[str, Any] | None = None,
) -> tuple[str, ...]:
    """Load `package` and run it (or its models tagged `select`): the one call of a stage."""
    return load(package, context).run(con, select)


def declared(package: str, kinds: Iterable[str] = MATERIALIZED) -> tuple[str, ...]:
    """The names of the package's models of `kinds`, by name, from their headers alone (no Jinja
    context needed: e.g. the feature tables a purge must rebuild)."""
    folder = resources.files(package).joinpath("sql")
    wanted = set(kinds)
    return tuple(sorted(
        entry.name.removesuffix(".sql") for entry in folder.iterdir()
        if entry.name.endswith(".sql") and header(entry.read_text(encoding="utf-8")).get("kind") in wanted
    ))


def header(text: str) -> dict[str, str]:
    """The `-- key: value` lines a model file opens with (stops at the first other line)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _HEADER_LINE.fullmatch(line)
        if not match or match.group(1) not in HEADER_KEYS:
            break
        found[match.group(1)] = match.group(2)
    return found


def references(sql: str) -> frozenset[str]:
    """The names a SQL text reads after FROM or JOIN, lower-cased (comments and strings skipped)."""
    return frozenset(name.lower() for name in _REFERENCE.findall(_COMMENT_OR_STRING.sub(" ", sql)))


def _model(package: str, name: str, text: str) -> Model:
    settings = header(text)
    kind = settings.get("kind")
    if kind not in KINDS:
        raise ModelError(f"{package}/sql/{name}.sql: its header needs `-- kind: <{' | '.join(KINDS)}>`, got {kind!r}")
    grain = settings.get("grain", "")
    if not grain and kind not in ("script", "macros"):
        raise ModelError(f"{package}/sql/{name}.sql: its header needs `-- grain: ...`")
    temporary = settings.get("temporary", "false")
    if temporary not in ("true", "false"):
        raise ModelError(f"{package}/sql/{name}.sql: `-- temporary:` is true or false, not {temporary!r}")
    tags = frozenset(tag.strip() for tag in settings.get("tags", "").split(",") if tag.strip())
    return Model(name, kind, grain, text, temporary == "true", tags)


def _with_dependencies(model: Model, names: set[str]) -> Model:
    depends = frozenset(ref for ref in references(model.sql) if ref in names and ref != model.name)
    return Model(model.name, model.kind, model.grain, model.sql, model.temporary, model.tags, depends)


def _sorted(package: str, models: Mapping[str, Model]) -> list[str]:
    """Kahn's topological sort, the ready model first by name at each step."""
    waiting = {name: set(model.depends_on) for name, model in models.items()}
    done: list[str] = []
    while waiting:
        ready = sorted(name for name, deps in waiting.items() if not deps)
        if not ready:
            raise ModelError(f"{package}: models read each other in a cycle: {', '.join(sorted(waiting))}")
        done.append(ready[0])
        del waiting[ready[0]]
        for deps in waiting.values():
            deps.discard(ready[0])
    return done
