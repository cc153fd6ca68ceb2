"""The data contract, declared once: every input dataset's fields, id and raw table.

Everything else is derived from these declarations: the loader's checks (`pipeline.ingest.checks`
compiles each field to SQL), the raw tables' DDL (`raw_tables_ddl`, run by
`pipeline.storage.create_raw_tables`) and the sample world's file schema (`file_schema`, used by
data/generate.py and data/agentic.py). docs/contract.md describes the same contract in words.

Every timestamp is stored as TIMESTAMP in UTC (offsets are applied at load). Prompt text is never
stored: only its keyed fingerprint, near-duplicate signature and length.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# Bounds far beyond any real value, so that sums and products downstream (features, report
# cents) never overflow: tokens per call and lines per change, USD per call, USD per million tokens.
BIGINT_MAX = 9_223_372_036_854_775_807
INTEGER_MAX = 2_147_483_647
COUNT_MAX = 10**12
COST_MAX = 10**9
PRICE_MAX = 10**4
STATUSES = ("success", "failure", "rolled_back")  # deployments.status
REVIEW_STATES = ("approved", "changes_requested", "commented")  # reviews.state
COMMIT_SCOPES = ("all", "heads")  # changes.commit_shas_scope
REDACT = frozenset({"prompt_text"})  # never stored, never shown in raw text

KINDS = ("string", "text", "timestamp", "integer", "number", "list", "status")


@dataclass(frozen=True)
class Field:
    """One contract column: its kind and what makes a row fail (compiled by pipeline.ingest.checks)."""

    name: str
    kind: str  # one of KINDS; 'text': a string that is fingerprinted, never stored
    required: bool = False
    default: str | None = None  # SQL literal used when the value is missing
    max_value: int = BIGINT_MAX
    values: tuple[str, ...] = ()  # 'status': the values allowed (matched exactly)

    @property
    def sql_type(self) -> str:
        """The raw table's column type (integers bounded by INTEGER_MAX are INTEGER)."""
        if self.kind == "integer":
            return "INTEGER" if self.max_value <= INTEGER_MAX else "BIGINT"
        return {"timestamp": "TIMESTAMP", "number": "DOUBLE", "list": "VARCHAR[]"}.get(self.kind, "VARCHAR")

    @property
    def not_null(self) -> bool:
        """Never NULL once loaded: required, or filled with its default."""
        return self.required or self.default is not None

    @property
    def polars_type(self) -> pl.DataType:
        """The column's type in a generated input file (timestamps in microseconds, UTC)."""
        return {
            "timestamp": pl.Datetime("us", "UTC"), "integer": pl.Int64(), "number": pl.Float64(),
            "list": pl.List(pl.String),
        }.get(self.kind, pl.String())


@dataclass(frozen=True)
class Column:
    """A raw table column the loader derives rather than reads (e.g. a prompt's fingerprint)."""

    name: str
    sql_type: str
    not_null: bool = False
    absent: str | None = None  # a BOOLEAN: true when the row's file (or source) does not carry this field


@dataclass(frozen=True)
class SideList:
    """An optional list field kept in a table of its own, one row per (id, value), so the raw table
    keeps its columns: people.aliases, changes.ai_coauthors, deployments.commit_shas."""

    field: str
    table: str
    column: str
    not_self: bool = False  # a value equal to the row's id (case-insensitive) is not kept


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the contract: its fields, its id and its raw table's columns, and what the
    loader does for it besides the checks."""

    name: str
    id_field: str
    fields: tuple[Field, ...]
    required: bool
    columns: tuple[str, ...]  # raw table columns filled from the staging table (file_id, position aside)
    side_lists: tuple[SideList, ...] = ()
    adapter_fields: tuple[str, ...] = ()  # optional fields only source adapters fill (not in sample files)
    derived: tuple[Column, ...] = ()  # the raw table's columns that are not fields
    priced: bool = False  # rows without cost_usd are priced from the price table (cost_source says how)
    fingerprints_prompts: bool = False  # prompt_text becomes prompt_fingerprint, prompt_simhash, prompt_length
    claims_identities: bool = False  # an id or alias belongs to one row: a claimed one is rejected
    grain: str = ""  # what one row of the raw table is

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def file_fields(self) -> tuple[Field, ...]:
        """The fields of the dataset's own files (its side lists and adapter fields come from source
        adapters)."""
        left_out = {side.field for side in self.side_lists} | set(self.adapter_fields)
        return tuple(f for f in self.fields if f.name not in left_out)

    def table_columns(self) -> list[Column]:
        """The raw table's columns, in order, file_id and position last."""
        derived = {c.name: c for c in self.derived}
        fields = {f.name: Column(f.name, f.sql_type, f.not_null) for f in self.fields}
        return [derived.get(name) or fields[name] for name in self.columns] + BOOKKEEPING_COLUMNS


BOOKKEEPING_COLUMNS = [
    Column("file_id", "INTEGER", not_null=True),  # loaded_files.file_id the row came from
    Column("position", "BIGINT", not_null=True),  # 1-based record number in that file
]



def _usage_event(id_field: str) -> tuple[Field, ...]:
    """The fields every AI usage record starts with: its id, when, who, and in which session."""
    return (
        Field(id_field, "string", required=True),
        Field("ts", "timestamp", required=True),
        Field("user_id", "string", required=True),
        Field("session_id", "string", required=True),
    )


PRICES = DatasetSpec(
    "prices", "model",
    (
        Field("model", "string", required=True),
        Field("input_per_mtok", "number", required=True, max_value=PRICE_MAX),
        Field("output_per_mtok", "number", required=True, max_value=PRICE_MAX),
        Field("cache_read_per_mtok", "number", max_value=PRICE_MAX),
        Field("cache_write_per_mtok", "number", max_value=PRICE_MAX),
    ),
    required=False,
    columns=("model", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"),
    grain="one row per model (model); overrides the default price table shipped in pipeline/ingest/prices.csv",
)
PEOPLE = DatasetSpec(
    "people", "user_id",
    (Field("user_id", "string", required=True), Field("team", "string"), Field("org", "string"), Field("aliases", "list")),
    required=False,
    columns=("user_id", "team", "org"),
    # other identities of a person (emails, logins, account ids), matched case-insensitively
    side_lists=(SideList("aliases", "people_aliases", "alias", not_self=True),),
    claims_identities=True,
    grain="one row per person (user_id)",
)
TOKEN_USAGE = DatasetSpec(
    "token_usage", "request_id",
    (
        *_usage_event("request_id"),
        Field("model", "string", required=True),
        Field("input_tokens", "integer", required=True, max_value=COUNT_MAX),
        Field("output_tokens", "integer", required=True, max_value=COUNT_MAX),
        Field("cache_read_tokens", "integer", default="0", max_value=COUNT_MAX),
        Field("cache_write_tokens", "integer", default="0", max_value=COUNT_MAX),
        Field("cost_usd", "number", max_value=COST_MAX),  # stored NULL when the model has no price
        Field("tool", "string"),
    ),
    required=True,
    columns=(
        "request_id", "ts", "user_id", "session_id", "model", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "cost_usd", "cost_source", "tool",
    ),
    derived=(Column("cost_source", "VARCHAR", not_null=True),),  # 'input' | 'price_table' | 'unpriced'
    priced=True,
    grain="one row per model API call (request_id)",
)
INVOCATIONS = DatasetSpec(
    "invocations", "invocation_id",
    (
        *_usage_event("invocation_id"),
        Field("repo", "string"),  # NULL: no repository context (or unknown: repo_unreported)
        Field("prompt_text", "text"),
        Field("prompt_hash", "string"),
        Field("prompt_length", "integer", max_value=INTEGER_MAX),  # characters; given, or measured from the text
        Field("lines_accepted", "integer", max_value=INTEGER_MAX),
        Field("tool_calls", "integer", max_value=INTEGER_MAX),
        Field("commit_sha", "string"),
    ),
    required=True,
    columns=(
        "invocation_id", "ts", "user_id", "session_id", "repo", "prompt_fingerprint", "prompt_simhash",
        "prompt_length", "lines_accepted", "tool_calls", "commit_sha", "repo_unreported",
    ),
    derived=(
        # exact, keyed (pipeline/ingest/fingerprint.py): HMAC of the text's sha256, or 'hash:' || HMAC of prompt_hash
        Column("prompt_fingerprint", "VARCHAR"),
        Column("prompt_simhash", "UBIGINT"),  # 64-bit SimHash of word tokens, keyed; NULL without text
        # the source does not report repositories at all (no repo column): a NULL repo is then
        # unknown, not "no repository context" (false in rows loaded before the column existed)
        Column("repo_unreported", "BOOLEAN", absent="repo"),
    ),
    fingerprints_prompts=True,
    grain="one row per prompt (invocation_id)",
)
CHANGES = DatasetSpec(
    "changes", "change_id",
    (
        Field("change_id", "string", required=True),
        Field("repo", "string", required=True),
        Field("author_id", "string"),
        Field("merged_at", "timestamp"),  # NULL: not merged
        Field("lines_added", "integer", max_value=COUNT_MAX),
        Field("lines_deleted", "integer", max_value=COUNT_MAX),
        Field("ai_session_ids", "list"),
        Field("commit_shas", "list"),
        # what commit_shas holds: 'all' (every commit the change merged, the contract's meaning and
        # the default) or 'heads' (the merge commit and the merged branch's head only, as a pull
        # request listing or a first-parent git log gives); absence of a commit proves something
        # only in a complete list
        Field("commit_shas_scope", "status", values=COMMIT_SCOPES),
        Field("ai_coauthors", "list"),
    ),
    required=True,
    columns=("change_id", "repo", "author_id", "merged_at", "lines_added", "lines_deleted", "ai_session_ids", "commit_shas",
             "commit_shas_scope"),
    # AI assistants named by Co-authored-by trailers, e.g. 'Claude <noreply@anthropic.com>'
    side_lists=(SideList("ai_coauthors", "change_ai_coauthors", "coauthor"),),
    adapter_fields=("commit_shas_scope",),
    grain="one row per change (change_id)",
)
DEPLOYMENTS = DatasetSpec(
    "deployments", "deployment_id",
    (
        Field("deployment_id", "string", required=True),
        Field("repo", "string", required=True),
        Field("deployed_at", "timestamp", required=True),
        Field("status", "status", required=True, values=STATUSES),
        Field("change_ids", "list"),
        Field("commit_shas", "list"),
    ),
    required=True,
    columns=("deployment_id", "repo", "deployed_at", "status", "change_ids"),
    # the commits a deployment names (GitHub, Four Keys); after each load the deployment's
    # change_ids gain the changes those commits identify (pipeline/ingest/reconcile.py)
    side_lists=(SideList("commit_shas", "deployment_commits", "commit_sha"),),
    grain="one row per deployment (deployment_id)",
)
REVIEWS = DatasetSpec(  # optional; change_id need not name a loaded change (it may arrive later)
    "reviews", "review_id",
    (
        Field("review_id", "string", required=True),
        Field("change_id", "string", required=True),  # the change reviewed (may be another person's)
        Field("reviewer_id", "string", required=True),  # people aliases resolved after each load
        Field("submitted_at", "timestamp", required=True),
        Field("state", "status", required=True, values=REVIEW_STATES),
        Field("ai_session_ids", "list"),  # AI sessions the review names; NULL: none given
        Field("comments", "integer", max_value=INTEGER_MAX),
    ),
    required=False,
    columns=("review_id", "change_id", "reviewer_id", "submitted_at", "state", "ai_session_ids", "comments"),
    grain="one row per review (review_id)",
)
AI_COMMITS = DatasetSpec(  # optional; a commit SHA names one commit whatever the repository (a fork holds the same one)
    "ai_commits", "commit_sha",
    (
        Field("commit_sha", "string", required=True),  # as given (adapters lowercase it)
        Field("repo", "string"),  # as the tool names it (Cursor: repoName), NULL: unknown
        Field("user_id", "string"),  # who committed (people aliases resolved after each load)
        Field("committed_at", "timestamp"),
        Field("ai_lines_added", "integer", max_value=COUNT_MAX),  # lines the AI tool wrote that the commit added
        Field("ai_lines_deleted", "integer", max_value=COUNT_MAX),
        Field("lines_added", "integer", max_value=COUNT_MAX),  # all lines the commit added
        Field("lines_deleted", "integer", max_value=COUNT_MAX),
        Field("tool", "string"),  # e.g. 'cursor'
    ),
    required=False,
    columns=("commit_sha", "repo", "user_id", "committed_at", "ai_lines_added", "ai_lines_deleted", "lines_added",
             "lines_deleted", "tool"),
    grain="one row per commit (commit_sha) an AI coding tool tracked, with the lines it wrote",
)

# load order: prices first (token_usage is priced from them), people before the rest
DATASETS: tuple[DatasetSpec, ...] = (PRICES, PEOPLE, TOKEN_USAGE, INVOCATIONS, CHANGES, DEPLOYMENTS, REVIEWS, AI_COMMITS)
BY_NAME = {spec.name: spec for spec in DATASETS}


def file_schema(dataset: str) -> dict[str, pl.DataType]:
    """Column -> polars type of an input file of `dataset`, in contract order (side lists aside)."""
    return {f.name: f.polars_type for f in BY_NAME[dataset].file_fields}


def raw_tables_ddl() -> str:
    """CREATE TABLE IF NOT EXISTS for every dataset's raw table and side-list table; an optional
    column added to the contract later is added to a database created before it."""
    statements = []
    for spec in DATASETS:
        statements.append(_create_table(spec.name, spec.table_columns(), spec.grain))
        # an absence flag's rows from before it existed came from files that carried the field: false
        statements += [f"ALTER TABLE {spec.name} ADD COLUMN IF NOT EXISTS {c.name} {c.sql_type}"
                       f"{' DEFAULT false' if c.absent else ''};"
                       for c in spec.table_columns() if not c.not_null]
        for side in spec.side_lists:
            columns = [Column(spec.id_field, "VARCHAR", True), Column(side.column, "VARCHAR", True), *BOOKKEEPING_COLUMNS]
            statements.append(_create_table(side.table, columns, f"one row per ({spec.id_field}, {side.column})"))
    return "\n\n".join(statements)


def _create_table(name: str, columns: list[Column], grain: str) -> str:
    body = ",\n".join(f"    {c.name} {c.sql_type}{' NOT NULL' if c.not_null else ''}{' DEFAULT false' if c.absent else ''}"
                       for c in columns)
    return f"-- grain: {grain}\nCREATE TABLE IF NOT EXISTS {name} (\n{body}\n);"
