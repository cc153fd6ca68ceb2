"""Prompt vocabulary and templates for the sample world, rendered vectorised with polars.

A template is a format string whose `{slot}` names are filled per prompt from the vocabulary
below. Ordinary families combine many templates and large slot vocabularies (plus optional
context sentences and pasted logs), so ordinary prompts rarely repeat; the gaming families are
deliberately repetitive or long and pointless.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import numpy as np
import polars as pl

# Prompt families (one per kind of session content); codes index FAMILY_TEMPLATES.
WORK, EXPLORE, INCIDENT, CHAT, BURN, LOOP, REGEN, IDLE, TINY_EDIT, BURST = range(10)
# Families of the agentic world only (data/agentic.py): reviewing others' changes, long migrations,
# and the short approvals people type between an agent's steps ("yes", "do it", "continue").
REVIEW, MIGRATION, APPROVAL = 10, 11, 12

LANGUAGES = ("python", "go", "typescript", "java")
LANGUAGE_EXTENSIONS = (".py", ".go", ".ts", ".java")

DIRECTORIES = (
    "src/billing", "src/checkout", "src/auth", "src/search", "src/catalog", "src/notifications",
    "internal/ledger", "internal/cache", "internal/ratelimit", "internal/queue", "internal/config",
    "pkg/httpclient", "pkg/retry", "pkg/metrics", "pkg/featureflags", "app/models", "app/views",
    "app/controllers", "app/services", "app/jobs", "lib/utils", "lib/validation", "lib/serializers",
    "services/orders", "services/payments", "services/shipping", "services/inventory", "api/v1",
    "api/v2", "api/handlers", "workers", "migrations", "db/repositories", "core/domain",
    "core/events", "web/components", "web/hooks", "web/pages", "cmd/server", "scripts",
)
FILE_STEMS = (
    "invoice", "invoice_builder", "retry_policy", "session_store", "token_refresh", "order_service",
    "payment_gateway", "refund_handler", "cart", "cart_totals", "discounts", "currency", "tax_rules",
    "user_repository", "account", "permissions", "rbac", "audit_log", "webhook_dispatcher",
    "email_sender", "sms_client", "rate_limiter", "circuit_breaker", "cache_client", "feature_flags",
    "config_loader", "settings", "health_check", "metrics_exporter", "tracing", "logger",
    "pagination", "search_index", "query_builder", "ranking", "autocomplete", "catalog_sync",
    "inventory_reservation", "shipment_tracker", "label_printer", "address_validator", "geo",
    "scheduler", "cron_jobs", "batch_importer", "csv_export", "report_generator", "dashboard",
    "notification_center", "subscription", "billing_cycle", "proration", "ledger_entry",
    "reconciliation", "fraud_score", "kyc_check", "signup_form", "login_page", "profile",
    "password_reset", "oauth_callback", "jwt", "api_client", "graphql_schema", "resolvers",
    "event_bus", "outbox", "consumer", "producer", "dead_letter", "migration_runner", "seed_data",
    "fixtures", "conftest", "router", "middleware", "serializer", "validators", "errors", "types",
)
FUNCTION_VERBS = (
    "parse", "validate", "compute", "build", "load", "save", "fetch", "sync", "apply", "merge",
    "resolve", "normalize", "render", "format", "schedule", "retry", "refresh", "cancel", "publish",
    "consume", "reconcile", "export", "import", "split", "group", "filter", "rank", "enqueue",
    "serialize", "hydrate",
)
FUNCTION_NOUNS = (
    "invoice", "order", "cart", "discount", "currency", "tax", "user", "account", "token", "session",
    "refund", "payment", "shipment", "address", "label", "report", "event", "message", "batch",
    "webhook", "permission", "role", "subscription", "ledger_entry", "price", "quote", "coupon",
    "inventory", "reservation", "schedule", "notification", "email", "query", "filter", "page",
    "cursor", "index", "score", "config", "flag", "metric", "span", "snapshot", "line_items",
    "customer", "tenant", "region", "locale", "timezone", "retry_state",
)
ERRORS = (
    "KeyError: 'customer_id'", "TypeError: 'NoneType' object is not subscriptable",
    "AttributeError: 'Order' object has no attribute 'total_cents'", "ValueError: invalid literal for int()",
    "IndexError: list index out of range", "RecursionError: maximum recursion depth exceeded",
    "sqlalchemy.exc.IntegrityError: duplicate key value violates unique constraint",
    "psycopg.OperationalError: server closed the connection unexpectedly",
    "context deadline exceeded", "connection reset by peer",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "fatal error: concurrent map writes", "dial tcp 10.0.3.17:5432: connect: connection refused",
    "TypeError: Cannot read properties of undefined (reading 'map')",
    "Unhandled Promise Rejection: AbortError: The operation was aborted",
    "Error: Hydration failed because the initial UI does not match", "ReferenceError: process is not defined",
    "java.lang.NullPointerException", "java.util.ConcurrentModificationException",
    "org.springframework.beans.factory.UnsatisfiedDependencyException", "OutOfMemoryError: Java heap space",
    "401 Unauthorized from the token endpoint", "429 Too Many Requests", "502 Bad Gateway from the load balancer",
    "503 Service Unavailable during deploy", "deadlock detected", "lock wait timeout exceeded",
    "SSL: CERTIFICATE_VERIFY_FAILED", "ModuleNotFoundError: No module named 'pydantic.v1'",
    "ImportError: cannot import name 'TypeAlias'", "mypy: Incompatible types in assignment",
    "ruff: F401 imported but unused", "flaky test: AssertionError: 3 != 4", "timeout after 30000ms in jest",
    "docker build failed: no space left on device", "helm upgrade failed: timed out waiting for the condition",
    "terraform: Error acquiring the state lock", "kafka: offset out of range", "redis: OOM command not allowed",
    "JSONDecodeError: Expecting value: line 1 column 1", "UnicodeDecodeError: 'utf-8' codec can't decode byte",
    "off-by-one in the pagination cursor", "the totals are off by one cent", "the retry storms the upstream",
    "duplicate webhook deliveries", "stale cache after the price update", "timezone shift at midnight UTC",
    "the migration locks the orders table", "memory grows until the pod is OOMKilled",
)
LIBRARIES = (
    "pydantic", "sqlalchemy", "alembic", "fastapi", "django", "celery", "pytest", "hypothesis", "httpx",
    "requests", "react-query", "zod", "prisma", "nextjs", "redux", "vitest", "playwright", "grpc",
    "protobuf", "kafka", "redis", "postgres", "duckdb", "polars", "pandas", "numpy", "spring boot",
    "hibernate", "junit", "mockito", "gin", "cobra", "sqlc", "testify", "opentelemetry", "prometheus",
    "terraform", "helm", "github actions", "docker compose",
)
CONCEPTS = (
    "idempotency keys", "optimistic locking", "exponential backoff with jitter", "connection pooling",
    "the outbox pattern", "saga compensation", "cursor pagination", "feature flags", "blue-green deploys",
    "database migrations without downtime", "structured logging", "distributed tracing", "rate limiting",
    "circuit breakers", "read replicas", "event sourcing", "CQRS", "dependency injection",
    "property-based testing", "contract tests", "snapshot tests", "bloom filters", "consistent hashing",
    "row-level security", "JWT refresh rotation", "CSRF protection", "CORS preflight", "money as integer cents",
    "timezone-aware datetimes", "async context managers", "generics", "error wrapping",
    "backpressure", "dead-letter queues", "exactly-once delivery", "schema evolution", "partitioned tables",
    "materialized views", "memoization", "tree shaking",
)
SERVICES = (
    "checkout-api", "ledger-worker", "search-indexer", "auth-gateway", "billing-cron", "orders-api",
    "payments-webhooks", "notification-sender", "inventory-sync", "shipping-tracker", "catalog-api",
    "reporting-etl", "fraud-scorer", "pricing-engine", "session-service", "edge-proxy",
)
TABLES = (
    "orders", "invoices", "line_items", "payments", "refunds", "customers", "accounts", "sessions",
    "subscriptions", "ledger_entries", "shipments", "addresses", "coupons", "audit_events",
    "feature_flags", "webhook_deliveries", "inventory", "prices", "tenants", "api_keys",
)
FIELDS = (
    "created_at", "updated_at", "customer_id", "tenant_id", "amount_cents", "currency", "status",
    "external_id", "idempotency_key", "deleted_at", "expires_at", "email", "locale", "region",
    "retry_count", "last_error", "version", "parent_id", "sku", "quantity",
)
TICKET_PREFIXES = ("PAY", "CHK", "SRCH", "AUTH", "OPS", "BILL", "PLAT", "DATA", "WEB", "MOB")
TOPICS = (
    "the history of every programming language", "all design patterns ever published",
    "the philosophy of clean code", "every HTTP status code and its folklore",
    "a complete theory of distributed systems", "the meaning of software quality",
    "every sorting algorithm in every language", "the future of artificial intelligence",
    "the complete works of the Unix philosophy", "every possible microservice architecture",
)
CONTEXT_SENTENCES = (
    "Keep the public API unchanged.", "We are on Python 3.12.", "Tests live under tests/unit.",
    "Don't touch the generated code.", "Use the existing logger, not print.", "Keep it small, this is a hotfix.",
    "The CI runs ruff and mypy --strict.", "Prefer the standard library.", "We deploy on Kubernetes.",
    "This runs in a Lambda with a 15 minute limit.", "Make sure it stays backwards compatible.",
    "Add a short docstring.", "Use table-driven tests.", "No new dependencies please.",
    "The team prefers early returns.", "Follow the style of the neighbouring module.",
    "It only fails on CI, not locally.", "This started after yesterday's deploy.",
    "Money is stored in integer cents.", "All timestamps are UTC.", "Postgres 16, read committed.",
    "We use feature flags for risky changes.", "Explain briefly before changing anything.",
    "Run the tests after the change.", "Show me the diff first.", "Also update the changelog.",
    "Keep the error messages user friendly.", "The staging database is a copy from last week.",
    "Only the happy path is covered today.", "We need this before the release on Thursday.",
    "The reviewer asked for smaller functions.", "Assume at most a few thousand rows.",
    "The client retries on 5xx.", "This code is shared with the mobile app.", "Keep the diff minimal.",
)
PREFIXES = (
    "", "", "", "", "", "Ok, now: ", "Next: ", "Quick one: ", "Thanks. ", "Hmm. ", "Good. Now ",
    "Follow-up: ", "Actually, ", "One more thing: ", "Looks good. ", "Right. ", "Also: ",
)
# Prefixes after which the prompt continues mid-sentence (its first letter is lowered).
LOWERING_PREFIXES = ("Good. Now ", "Actually, ")

FAMILY_TEMPLATES: tuple[tuple[str, ...], ...] = (
    (  # WORK: ordinary engineering with a repository
        "Fix the {error} in {func}() in {file}",
        "Add a unit test for {func} covering the empty-input case",
        "Refactor {func} in {file} to use {concept}",
        "Why does {func}() raise {error} when {field} is null?",
        "Write a migration that adds {field} to the {table} table with a backfill",
        "Implement {ticket}: add {field} to the {table} API response",
        "Rename {func} to {func2} everywhere and update the call sites",
        "The test {test} is flaky on CI ({error}). Find the cause and fix it",
        "Add retries with {concept} around the call in {file} line {n}",
        "Split {file} into smaller modules, it is over {n} lines",
        "Replace the hand-rolled parsing in {func} with {lib}",
        "Make {func} handle {field} being missing instead of crashing with {error}",
        "Add structured logging to {func} with {field} and the request id",
        "Write the {lib} integration for {table} and wire it into {file}",
        "Review my change to {file}: is there a race between {func} and {func2}?",
        "Add input validation for {field} in {file} and return a 400 on bad input",
        "Convert {func} to async and update its callers in {file}",
        "Speed up {func}: it takes {n} ms on a page of {table}",
        "Add pagination to the {table} endpoint using {concept}",
        "Port {func} from the old {lib} API to the new one",
        "Generate fixtures for {table} and use them in {test}",
        "Remove the dead code path in {file} around line {n}",
        "Apply the fix and add a regression test for {ticket}",
        "Update {func} so that {field} is written in the same transaction as {table}",
        "Add type hints to {file} and fix what mypy complains about",
        "Implement the TODO in {func} ({ticket})",
        "Add a metric for failed {func} calls and an alert threshold",
        "Make {test} deterministic, it depends on the current time",
        "Wire the {concept} flag into {func} behind a feature flag",
        "Handle the {error} case in {func} and surface a clear message to the caller",
    ),
    (  # EXPLORE: reading and learning, nothing necessarily written
        "Explain how {func} in {file} works",
        "Walk me through the request path from {file} to the {table} table",
        "What is {concept} and where do we use it in this repo?",
        "Compare {lib} and {lib2} for our use case in {file}",
        "Where is {field} set on {table}? I am new to this codebase",
        "Draw the call graph of {func} in words",
        "Which services write to {table}, and in what order?",
        "Summarise the design of {file} in five bullet points",
        "What would break if we removed {func}?",
        "How do the tests in {test} set up {table}?",
        "Give me a reading list to understand {concept} in {lib}",
        "Explain the difference between {func} and {func2}",
        "Is {file} still used? Find its importers",
        "How is {service} deployed and configured?",
        "What does this error mean in our setup: {error}",
        "Sketch how we could adopt {concept} in {service}, no code yet",
    ),
    (  # INCIDENT: on-call
        "PagerDuty: {service} is returning {error}, where should I look first?",
        "Error rate on {service} jumped at {hour}:00 UTC, summarise the recent changes in {file}",
        "Write a quick query to find {table} rows stuck in status pending since {n} minutes",
        "Is {error} in {service} related to the deploy from this afternoon?",
        "Draft a hotfix for {func}: {error} in production",
        "Give me a kubectl command to roll back {service} to the previous revision",
        "Summarise these logs from {service}: {error}",
        "Write the incident timeline for {ticket} from these notes",
        "Why is the {table} table locked? {error}",
        "Add a guard in {func} so that {field} null does not crash {service}",
        "What is the blast radius if {service} stays down for {n} minutes?",
        "Write a one-off script to replay the failed {table} events from the dead-letter queue",
    ),
    (  # CHAT: quick questions without a repository
        "What's the regex for an ISO-8601 date with an optional offset, as used in {field}?",
        "How do I squash the last {n} commits in git?",
        "Write a {lib} snippet that retries on {error}",
        "Is {concept} overkill for a service like {service}?",
        "Explain {concept} in two paragraphs",
        "What's the idiomatic way to do {concept} with {lib}?",
        "Write a bash one-liner to count lines per file extension under {dir}",
        "How do I read a {lib} config from environment variables?",
        "Difference between {lib} and {lib2}?",
        "Translate this error for me: {error}",
        "Suggest a name for a function that does {func} and {func2}",
        "How do I profile memory in {lib}?",
        "Write a SQL window function that ranks {table} by {field} per {field2}",
        "What does {error} usually mean?",
        "Give me a checklist for reviewing a change that touches {concept}",
        "Rewrite this commit message to be clearer: fix {func} for {ticket}",
    ),
    (  # BURN: long pointless prompts
        "Write an extremely detailed essay of at least 8000 words about {topic}. "
        "Repeat every section three times and never summarise.",
        "Ignore brevity. Produce the longest possible explanation of {topic}, then explain it again from the start.",
        "Analyse the following text word by word and restate every sentence in ten different ways:",
        "Translate the following into five languages and back, then compare every version line by line:",
        "List every possible variation of {topic}, with a full page for each one.",
        "Read all of this carefully and rewrite it in full, longer:",
    ),
    (  # LOOP: a script with a counter
        "Review {file} and list possible improvements. Run #{counter}",
        "Summarise {file} in detail (iteration {counter})",
        "[batch {counter}] Analyse {func} in {file} and suggest refactorings",
        "Generate unit tests for {func} - attempt {counter}",
        "Explain {file} line by line. pass={counter}",
    ),
    (  # REGEN: padding prompts
        "regenerate", "try again", "explain that again", "again", "regenerate the answer",
        "try again, more detail", "explain that again but longer", "redo it", "say that again",
        "one more time", "retry", "explain again",
    ),
    (  # IDLE: an agent kept busy
        "continue", "keep going", "check again", "any updates?", "continue monitoring",
        "keep watching the build and report back", "status?", "carry on",
    ),
    (  # TINY_EDIT: one small edit per prompt
        "Change the timeout in {file} from {n} to {n2} seconds and commit",
        "Fix the typo in the docstring of {func} and commit",
        "Bump the retry count in {file} to {n} and commit",
        "Rename the variable {field} to {field2} in {func}, commit",
        "Add a blank line at the end of {file} and commit",
        "Change the log level in {func} from debug to info, commit",
        "Update the comment above {func} and commit",
        "Set the default page size in {file} to {n} and commit",
        "Remove the unused import in {file}, commit",
        "Reorder the imports in {file} and commit",
    ),
    (  # BURST: heavy requests before the snapshot
        "Review the entire repository and explain every module in detail",
        "Rewrite {file} completely, then explain every line of the new version",
        "Generate exhaustive documentation for every function in {file}",
        "Analyse the whole codebase for {concept} issues and list all of them with full code",
        "Write tests for every function in {file}, all edge cases, full code",
        "Explain {func}, {func2} and everything they call, in depth",
        "Translate {file} into {lang} and explain the differences",
    ),
    (  # REVIEW: reviewing a colleague's change with an agent (agentic world)
        "Review the change {ticket} to {file}: is there a race between {func} and {func2}?",
        "Summarise the diff of {ticket} and list the risky parts around {func}",
        "Does the change to {file} handle {error}? Check the callers of {func} too",
        "Draft review comments for the new {func} in {file}, focus on {concept}",
        "Check that the migration in {ticket} is safe for the {table} table under load",
        "Compare the new {func} with the old one: any behaviour change for {field}?",
        "Are the tests added in {ticket} enough? What cases of {func} are missing?",
        "Explain what {ticket} changes in {service} so I can review it",
        "Look for {concept} problems in the diff of {file} and suggest fixes as review comments",
        "Is the error handling in {func} consistent with the rest of {dir}?",
        "Check the {lib} usage in the change to {file} against the docs",
        "Write a short approval note for {ticket} listing what I checked",
    ),
    (  # MIGRATION: a long migration an agent drives over several sessions (agentic world)
        "Migrate {file} from {lib} to {lib2}, keep the behaviour identical",
        "Continue the {lib} to {lib2} migration with the modules under {dir}",
        "Update every call site of {func} to the new {lib2} API under {dir}",
        "Run the whole test suite and fix what the {lib2} migration broke in {file}",
        "Port the {table} repository layer to {lib2}, one module at a time, commit after each",
        "Remove the compatibility shims for {lib} from {file} now that {dir} is migrated",
        "Write a checklist of what is left of the {lib} to {lib2} migration ({ticket})",
        "Migrate the {test} fixtures to {lib2} and make them pass",
    ),
    (  # APPROVAL: a person's go-ahead between an agent's steps (agentic world); honest, and repetitive
        "yes", "yes, go ahead", "go ahead", "do it", "continue", "ok, continue", "looks good, continue",
        "proceed", "ship it", "commit it", "sounds good", "yes please", "lgtm, commit", "run the tests",
        "push it", "fix it",
    ),
)


def _lexicon() -> dict[str, pl.Series]:
    """Slot vocabularies that are simple lists (composed slots are built per row)."""
    return {
        "error": pl.Series(ERRORS),
        "concept": pl.Series(CONCEPTS),
        "lib": pl.Series(LIBRARIES),
        "lib2": pl.Series(LIBRARIES),
        "service": pl.Series(SERVICES),
        "table": pl.Series(TABLES),
        "field": pl.Series(FIELDS),
        "field2": pl.Series(FIELDS),
        "topic": pl.Series(TOPICS),
        "lang": pl.Series(LANGUAGES),
    }


def _pasted_logs(rng: np.random.Generator, count: int) -> pl.Series:
    """A pool of pasted stack traces and log excerpts (a loop over the small pool only)."""
    blocks = []
    for _ in range(count):
        lines = [str(ERRORS[rng.integers(len(ERRORS))])]
        for _ in range(int(rng.integers(4, 30))):
            directory = DIRECTORIES[rng.integers(len(DIRECTORIES))]
            stem = FILE_STEMS[rng.integers(len(FILE_STEMS))]
            verb = FUNCTION_VERBS[rng.integers(len(FUNCTION_VERBS))]
            noun = FUNCTION_NOUNS[rng.integers(len(FUNCTION_NOUNS))]
            lines.append(f'  File "{directory}/{stem}.py", line {rng.integers(10, 900)}, in {verb}_{noun}')
        blocks.append("\n\n```\n" + "\n".join(lines) + "\n```")
    return pl.Series(blocks)


def _filler(rng: np.random.Generator, count: int) -> pl.Series:
    """A pool of long pasted filler texts for pointless prompts (2k-20k characters)."""
    words = " ".join(CONCEPTS + TOPICS + ERRORS).split()
    blocks = []
    for _ in range(count):
        target = int(rng.integers(2_000, 20_000))
        chosen = rng.choice(len(words), size=target // 5)
        text = " ".join(words[i] for i in chosen)
        blocks.append("\n\n" + text[:target])
    return pl.Series(blocks)


class PromptRenderer:
    """Fills templates for many prompts at once; one polars pass per template."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.lexicon = _lexicon()
        self.directories = pl.Series(DIRECTORIES)
        self.stems = pl.Series(FILE_STEMS)
        self.extensions = pl.Series(LANGUAGE_EXTENSIONS)
        self.verbs = pl.Series(FUNCTION_VERBS)
        self.nouns = pl.Series(FUNCTION_NOUNS)
        self.context = pl.Series(CONTEXT_SENTENCES)
        self.pasted = _pasted_logs(rng, 80)
        self.filler = _filler(rng, 40)
        self.composed: dict[str, Callable[[np.ndarray, np.ndarray | None, np.ndarray], pl.Series]] = {
            "file": self._file, "func": self._func, "func2": self._func, "test": self._test,
            "n": self._number, "n2": self._number, "hour": self._hour, "dir": self._directory,
            "ticket": self._ticket, "counter": self._counter,
        }

    def _pick(self, size: int, options: int, stable: np.ndarray | None) -> np.ndarray:
        """Random indices, or indices fixed by a per-session key (for scripted prompts)."""
        if stable is not None:
            return stable % options
        return self.rng.integers(0, options, size=size)

    def _file(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        n = len(lang)
        frame = pl.DataFrame({
            "d": self.directories.gather(self._pick(n, len(DIRECTORIES), key)),
            "s": self.stems.gather(self._pick(n, len(FILE_STEMS), None if key is None else key // 7)),
            "e": self.extensions.gather(lang),
        })
        return frame.select(pl.concat_str("d", pl.lit("/"), "s", "e")).to_series()

    def _func(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        n = len(lang)
        frame = pl.DataFrame({
            "v": self.verbs.gather(self._pick(n, len(FUNCTION_VERBS), None if key is None else key // 11)),
            "o": self.nouns.gather(self._pick(n, len(FUNCTION_NOUNS), None if key is None else key // 13)),
        })
        return frame.select(pl.concat_str("v", pl.lit("_"), "o")).to_series()

    def _test(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        return "test_" + self._func(lang, key, counter)

    def _number(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        values = self.rng.integers(2, 900, size=len(lang)) if key is None else 2 + key % 898
        return pl.Series(values).cast(pl.String)

    def _hour(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        return pl.Series(self.rng.integers(0, 24, size=len(lang))).cast(pl.String).str.zfill(2)

    def _directory(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        return self.directories.gather(self._pick(len(lang), len(DIRECTORIES), key))

    def _ticket(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        n = len(lang)
        frame = pl.DataFrame({
            "p": pl.Series(TICKET_PREFIXES).gather(self._pick(n, len(TICKET_PREFIXES), key)),
            "k": pl.Series(self.rng.integers(100, 9999, size=n)).cast(pl.String),
        })
        return frame.select(pl.concat_str("p", pl.lit("-"), "k")).to_series()

    def _counter(self, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        return pl.Series(counter + 1).cast(pl.String)

    def _slot(self, name: str, lang: np.ndarray, key: np.ndarray | None, counter: np.ndarray) -> pl.Series:
        if name in self.composed:
            return self.composed[name](lang, key, counter)
        values = self.lexicon[name]
        return values.gather(self._pick(len(lang), len(values), key))

    def render(self, family: np.ndarray, lang: np.ndarray, session_key: np.ndarray,
               index_in_session: np.ndarray) -> pl.Series:
        """One prompt text per row. Scripted families (LOOP) keep template and slots per session."""
        parts: list[pl.DataFrame] = []
        rows_all = np.arange(len(family))
        for code, templates in enumerate(FAMILY_TEMPLATES):
            rows = rows_all[family == code]
            if len(rows) == 0:
                continue
            scripted = code == LOOP
            if scripted:
                choice = session_key[rows] % len(templates)
            else:
                choice = self.rng.integers(0, len(templates), len(rows))
            for template_index, template in enumerate(templates):
                selected = rows[choice == template_index]
                if len(selected) == 0:
                    continue
                key = (session_key[selected] // len(templates)) if scripted else None
                slots: dict[str, pl.Series] = {}
                pieces: list[pl.Expr] = []
                for literal, field, _, _ in string.Formatter().parse(template):
                    if literal:
                        pieces.append(pl.lit(literal))
                    if field:
                        column = f"slot{len(slots)}"
                        slots[column] = self._slot(field, lang[selected], key, index_in_session[selected])
                        pieces.append(pl.col(column))
                if slots:
                    text = pl.DataFrame(slots).select(pl.concat_str(pieces)).to_series()
                else:
                    text = pl.Series([template]).gather(np.zeros(len(selected), dtype=np.int64))
                parts.append(pl.DataFrame({"row": selected, "text": text}))
        frame = pl.concat(parts).sort("row")
        return self._decorate(frame["text"], family)

    def _decorate(self, text: pl.Series, family: np.ndarray) -> pl.Series:
        """Add prefixes, context sentences, pasted logs (ordinary work) and filler (pointless prompts).

        Each decoration is a mostly-null column holding only the rows it applies to, so memory
        stays near the size of the text itself.
        """
        n = len(family)
        rng = self.rng
        human = np.isin(family, (WORK, EXPLORE, INCIDENT, CHAT, REVIEW, MIGRATION))
        prefix_index = np.where(human, rng.integers(0, len(PREFIXES), n), 0)
        add_context = human & (rng.random(n) < 0.35)
        add_second = add_context & (rng.random(n) < 0.3)
        add_log = np.isin(family, (WORK, INCIDENT)) & (rng.random(n) < 0.08)
        add_filler = (family == BURN) & (rng.random(n) < 0.9)
        first_context = rng.integers(0, len(CONTEXT_SENTENCES), n)
        second_context = (first_context + rng.integers(1, len(CONTEXT_SENTENCES), n)) % len(CONTEXT_SENTENCES)
        spaced_context = " " + self.context

        def sparse(mask: np.ndarray, pool: pl.Series, index: np.ndarray) -> pl.Series:
            rows = np.flatnonzero(mask)
            return pl.repeat(None, n, dtype=pl.String, eager=True).scatter(rows, pool.gather(index[rows]))

        prefixes = pl.Series(PREFIXES)
        lowering = np.isin(prefix_index, [PREFIXES.index(prefix) for prefix in LOWERING_PREFIXES])
        lowered_rows = np.flatnonzero(lowering)
        lowered = text.gather(lowered_rows)
        text = text.scatter(lowered_rows, lowered.str.slice(0, 1).str.to_lowercase() + lowered.str.slice(1))
        needs_period = add_context & ~text.str.contains(r"[.?!:]$").to_numpy()
        pieces = [
            sparse(prefix_index > 0, prefixes, prefix_index),
            text,
            sparse(needs_period, pl.Series(["."]), np.zeros(n, dtype=np.int64)),
            sparse(add_context, spaced_context, first_context),
            sparse(add_second, spaced_context, second_context),
            sparse(add_log, self.pasted, rng.integers(0, len(self.pasted), n)),
            sparse(add_filler, self.filler, rng.integers(0, len(self.filler), n)),
        ]
        frame = pl.DataFrame({f"piece{i}": piece for i, piece in enumerate(pieces)})
        return frame.select(pl.concat_str(pl.all(), ignore_nulls=True).alias("prompt_text")).to_series()
