"""Realistic sample-world generator: people, AI usage, changes and deployments, plus ground truth.

Writes the contract's input datasets (see the project's data contract) for a company of
`users` people over `weeks` ISO weeks, with a known minority of gamers, and labels in
`labels/`. Everything is drawn from one `numpy.random.Generator` seeded by `seed`, vectorised
over sessions, prompts and requests (Python loops run only over kinds, templates and days).

Personas (labels/user_weeks.parquet `persona`): ordinary; heavy_shipper (top token spend, many
shipped changes); explorer (diverse prompting, never ships); new_hire (explores for 2-3 weeks,
then ordinary); on_call (night and weekend incident sessions, small hotfixes deployed alone);
manual_coder (light AI use, many changes written without AI); gamer (ordinary work, plus one of
the tactics in 30-70% of their weeks): token_burn, prompt_loop, snapshot_burst,
regenerate_padding, idle_agent, deploy_splitting.

Times are handled as int64 milliseconds since the Unix epoch (UTC) until written out.

This is the "chat" style, the default. `style="agentic"` writes the 2026 agent-work world of
`data/agentic.py` instead (docs/worlds.md describes both, their labels and the seed split).
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from data import prompts
from pipeline.ingest import contract

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

TACTICS = ("token_burn", "prompt_loop", "snapshot_burst", "regenerate_padding", "idle_agent", "deploy_splitting")
LEGIT_PERSONAS = ("ordinary", "heavy_shipper", "explorer", "new_hire", "on_call", "manual_coder")
GAMER = "gamer"
PERSONAS = (*LEGIT_PERSONAS, GAMER)
ORDINARY, HEAVY, EXPLORER, NEW_HIRE, ON_CALL, MANUAL, GAMER_CODE = range(len(PERSONAS))
LEGIT_PERSONA_SHARES = (0.56, 0.08, 0.07, 0.08, 0.11, 0.10)

# Session kinds: the legitimate ones, then one per tactic (kind code = 4 + tactic index).
LEGIT_KINDS = ("work", "explore", "chat", "incident")
KINDS = (*LEGIT_KINDS, *TACTICS)
WORK, EXPLORE, CHAT, INCIDENT = range(4)
TOKEN_BURN, PROMPT_LOOP, SNAPSHOT_BURST, REGENERATE_PADDING, IDLE_AGENT, DEPLOY_SPLITTING = range(4, 10)

TOOLS = ("claude-code", "kiro", "copilot", "cursor")
TOOL_SHARES = (0.40, 0.15, 0.20, 0.25)
MODELS = ("sonnet-4.5", "haiku-4.5", "opus-4.5", "gpt-5", "gpt-5-mini", "sonnet-5-preview")
SONNET, HAIKU, OPUS, GPT5, GPT5_MINI, UNPRICED = range(len(MODELS))
# Model mix per tool (rows: TOOLS; columns: the five priced models).
TOOL_MODEL_SHARES = np.array([
    [0.68, 0.12, 0.20, 0.00, 0.00],
    [0.75, 0.20, 0.05, 0.00, 0.00],
    [0.35, 0.05, 0.05, 0.40, 0.15],
    [0.35, 0.08, 0.12, 0.30, 0.15],
])
CONTEXT_LIMIT = 180_000  # tokens; agents compact the conversation when it would exceed this

ORG_NAMES = ("retail", "platform", "fintech", "data", "growth")
TEAM_WORDS = (
    "payments", "checkout", "search", "identity", "billing", "ledger", "catalog", "pricing", "shipping",
    "inventory", "fraud", "onboarding", "notifications", "reporting", "analytics", "apps", "frontend",
    "storefront", "loyalty", "ads", "recommendations", "messaging", "support", "compliance", "risk",
    "treasury", "payouts", "tax", "subscriptions", "accounts", "auth", "gateway", "edge", "observability",
    "devex", "ci", "storage", "streaming", "ml-platform", "experiments", "growth-eng", "partners",
    "marketplace", "returns", "warehouse", "routing", "maps", "media", "docs", "security",
)
COMPONENTS = ("api", "web", "worker", "etl", "sdk", "service", "mobile", "jobs")
SHARED_REPOS = ("platform/infra", "platform/ci-config", "shared/ui-kit", "shared/proto")
LANGUAGE_SHARES = (0.35, 0.25, 0.30, 0.10)
SHIFT_STARTS = np.array([0, 1, 2, 6, 7, 8, 9, 13, 14, 15, 16])  # UTC hour a person's day starts
SHIFT_SHARES = np.array([0.04, 0.04, 0.03, 0.12, 0.16, 0.14, 0.10, 0.12, 0.12, 0.08, 0.05])
SHIFT_HOURS = 8.5
SNAPSHOT_OFFSET = 4 * DAY + 18 * HOUR  # weekly leaderboard snapshot: Friday 18:00 UTC

FORMATS = ("parquet", "csv", "jsonl")
STYLES = ("chat", "agentic")


@dataclass(frozen=True)
class WorldSummary:
    """What `generate_world` wrote."""

    out_dir: Path
    users: int
    weeks: int
    seed: int
    rows: dict[str, int]
    gaming_user_weeks: int
    user_weeks: int
    style: str = "chat"
    intensity: float = 1.0


@dataclass(frozen=True)
class KindSpec:
    """How sessions of one kind look: size, pace, repository, tokens and output."""

    family: int
    prompts_mean: float
    gap_median_s: float
    gap_sigma: float
    gap_low_s: float
    gap_high_s: float
    repo_share: float  # sessions that work in a repository
    prompt_repo_share: float  # prompts of such a session that name it
    extra_request_p: float  # requests per prompt = 1 + Binomial(5, p)
    context_median: float  # tokens of context at the first request
    growth_median: float  # tokens the context grows per request
    cache_hit_mean: float  # share of the context read from cache after the first request
    output_median: float
    accept_share: float  # prompts with accepted lines
    accept_median: float
    commit_share: float  # of prompts with accepted lines, those the assistant committed
    tool_call_rate: float  # tool calls per extra request


# Columns follow KindSpec's fields:
#   family, prompts, gap median/sigma/low/high (s), repo share, prompt repo share, extra request p,
#   context, growth, cache hit, output, accept share, accept median, commit share, tool-call rate
KIND_SPECS: dict[int, KindSpec] = {
    WORK: KindSpec(prompts.WORK, 9, 75, 1.2, 20, 900, 0.97, 0.94, 0.40,
                   12_000, 2_500, 0.65, 450, 0.45, 14, 0.22, 1.3),
    EXPLORE: KindSpec(prompts.EXPLORE, 8, 100, 1.2, 20, 900, 0.85, 0.88, 0.30,
                      15_000, 3_000, 0.60, 700, 0.08, 4, 0.0, 1.5),
    CHAT: KindSpec(prompts.CHAT, 2.5, 90, 1.2, 20, 900, 0.08, 0.5, 0.10,
                   2_000, 600, 0.30, 350, 0.05, 3, 0.0, 0.2),
    INCIDENT: KindSpec(prompts.INCIDENT, 10, 60, 1.2, 20, 900, 0.85, 0.9, 0.35,
                       10_000, 2_500, 0.60, 500, 0.30, 6, 0.30, 1.5),
    TOKEN_BURN: KindSpec(prompts.BURN, 20, 150, 0.8, 20, 900, 0.0, 0.0, 0.05,
                         120_000, 6_000, 0.05, 4_000, 0.0, 1, 0.0, 0.0),
    PROMPT_LOOP: KindSpec(prompts.LOOP, 0, 30, 0.0, 0, 0, 0.5, 1.0, 0.06,
                          15_000, 20, 0.50, 700, 0.0, 1, 0.0, 0.0),
    SNAPSHOT_BURST: KindSpec(prompts.BURST, 0, 60, 0.7, 5, 300, 0.6, 0.9, 0.30,
                             30_000, 300, 0.30, 1_500, 0.01, 10, 0.0, 1.0),
    REGENERATE_PADDING: KindSpec(prompts.WORK, 40, 30, 0.8, 8, 300, 1.0, 0.95, 0.40,
                                 12_000, 2_500, 0.65, 900, 0.45, 14, 0.22, 1.3),
    IDLE_AGENT: KindSpec(prompts.IDLE, 0, 300, 0.25, 60, 900, 0.2, 1.0, 0.60,
                         100_000, 40, 0.985, 25, 0.0, 1, 0.0, 0.3),
    DEPLOY_SPLITTING: KindSpec(prompts.TINY_EDIT, 12, 90, 1.0, 20, 900, 1.0, 1.0, 0.30,
                               8_000, 1_500, 0.60, 150, 0.95, 3, 0.9, 1.0),
}

# Legit sessions per week by persona (ORDINARY .. GAMER), before the person's activity multiplier.
WEEKLY_SESSIONS: dict[int, tuple[float, ...]] = {
    WORK: (6.0, 15.0, 0.5, 5.0, 5.0, 2.0, 6.0),
    EXPLORE: (0.6, 1.0, 7.0, 1.0, 0.5, 0.3, 0.6),
    CHAT: (1.5, 2.0, 2.0, 2.0, 1.5, 1.0, 1.5),
}
# Changes written without AI per week, by persona (explorers ship nothing at all).
NON_AI_CHANGES_PER_WEEK = (1.0, 0.5, 0.0, 0.8, 1.0, 4.0, 1.0)
# Tactic sessions in a gaming week: minimum + Poisson(mean).
TACTIC_SESSIONS = {
    TOKEN_BURN: (3, 3.0), PROMPT_LOOP: (1, 1.0), SNAPSHOT_BURST: (1, 1.5),
    REGENERATE_PADDING: (3, 3.0), IDLE_AGENT: (1, 2.0), DEPLOY_SPLITTING: (2, 2.0),
}


@dataclass
class Org:
    """People, teams, orgs and repositories, as arrays indexed by user, team or repo."""

    user_ids: np.ndarray
    user_team: np.ndarray
    team_names: list[str]
    team_org: np.ndarray
    org_names: list[str]
    repo_names: list[str]
    repo_language: np.ndarray
    repo_deploy_minute: np.ndarray  # minute of the day (UTC) of the repo's daily deployment
    team_repo_first: np.ndarray  # repos of a team are contiguous: first index and count
    team_repo_count: np.ndarray
    shared_repo_first: int


@dataclass
class Habits:
    """Per-person persona and habits."""

    persona: np.ndarray
    tactics: np.ndarray  # (users, 2) tactic indices, -1 when none
    shift_start_h: np.ndarray
    tool: np.ndarray
    activity: np.ndarray
    hire_week: np.ndarray
    ramp_weeks: np.ndarray
    on_call_offset: np.ndarray


@dataclass
class UserWeeks:
    """The user x week grid (row = user * weeks + week)."""

    user: np.ndarray
    week: np.ndarray
    present: np.ndarray
    gaming_tactic: np.ndarray  # -1 when not a planned gaming week
    on_call: np.ndarray
    ramping: np.ndarray


@dataclass
class Table:
    """Named numpy columns of equal length."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self.columns[name] = values

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, index: np.ndarray) -> Table:
        return Table({name: values[index] for name, values in self.columns.items()})

    @staticmethod
    def concat(tables: list[Table]) -> Table:
        names = tables[0].columns.keys()
        return Table({name: np.concatenate([t[name] for t in tables]) for name in names})


# ---------------------------------------------------------------------------------------------
# small vectorised helpers


def segment_starts(lengths: np.ndarray) -> np.ndarray:
    """Index of the first element of each segment of a flat array."""
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)


def index_within(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... restarting at each segment."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(segment_starts(lengths), lengths)


def segment_cumsum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each segment."""
    total = np.concatenate(([0], np.cumsum(values)))
    return total[1:] - np.repeat(total[segment_starts(lengths)], lengths)


def truncated_lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: np.ndarray | float,
                        low: float, high: float, size: int) -> np.ndarray:
    """Lognormal draws restricted to [low, high]; out-of-range draws are redrawn (no pile-up at the bounds)."""
    median = np.broadcast_to(np.asarray(median, dtype=float), size)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=float), size)
    values = median * np.exp(sigma * rng.standard_normal(size))
    redraw = np.flatnonzero((values < low) | (values > high))
    for _ in range(100):  # rounds, each over the still out-of-range draws only
        if len(redraw) == 0:
            break
        values[redraw] = median[redraw] * np.exp(sigma[redraw] * rng.standard_normal(len(redraw)))
        redraw = redraw[(values[redraw] < low) | (values[redraw] > high)]
    return np.clip(values, low, high)


def random_shas(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` random 40-hex-digit commit ids."""
    raw = rng.integers(0, 256, size=(count, 20), dtype=np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hex_bytes = np.empty((count, 40), dtype=np.uint8)
    hex_bytes[:, 0::2] = digits[raw >> 4]
    hex_bytes[:, 1::2] = digits[raw & 15]
    return hex_bytes.view("S40").ravel().astype(str) if count else np.array([], dtype=str)


def prefixed_ids(prefix: str, count: int, width: int = 9) -> pl.Series:
    """'r-000000001', 'r-000000002', ..."""
    return pl.select(pl.concat_str(pl.lit(prefix), pl.int_range(1, count + 1).cast(pl.String).str.zfill(width))
                     ).to_series() if count else pl.Series([], dtype=pl.String)


def null_strings(count: int) -> pl.Series:
    return pl.repeat(None, count, dtype=pl.String, eager=True)


def epoch_ms(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000)


def to_datetime(ms: pl.Expr | str) -> pl.Expr:
    column = pl.col(ms) if isinstance(ms, str) else ms
    return pl.from_epoch(column, time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us")


# ---------------------------------------------------------------------------------------------
# the organisation and its people


def build_org(rng: np.random.Generator, users: int) -> Org:
    """3-5 orgs, teams of 4-12 people (some of 4), 1-3 repos per team plus a few shared repos."""
    org_count = int(rng.integers(3, 6))
    sizes = rng.choice(np.arange(4, 13), size=users // 4 + 1,
                       p=np.array([0.14, 0.10, 0.13, 0.14, 0.13, 0.11, 0.10, 0.08, 0.07]))
    sizes[0] = 4  # at least one small team
    reached = np.searchsorted(np.cumsum(sizes), users)
    sizes = sizes[: reached + 1].copy()
    sizes[-1] -= int(sizes.sum()) - users
    if sizes[-1] < 4 and len(sizes) > 1:  # spread a too-small last team over teams with room
        leftover, sizes = int(sizes[-1]), sizes[:-1]
        roomy = np.flatnonzero(sizes[1:] < 12) + 1  # keep the first team small
        sizes[roomy[:leftover]] += 1
        sizes[-1] += leftover - min(leftover, len(roomy))
    team_count = len(sizes)
    words = rng.permutation(len(TEAM_WORDS))
    word_count = len(TEAM_WORDS)
    team_names = [TEAM_WORDS[words[i % word_count]] + ("" if i < word_count else f"-{i // word_count + 1}")
                  for i in range(team_count)]
    team_org = np.sort(rng.integers(0, org_count, team_count))
    team_org[: min(org_count, team_count)] = np.arange(min(org_count, team_count))  # every org has a team
    team_org = np.sort(team_org)

    repos_per_team = rng.integers(1, 4, team_count)
    repo_names: list[str] = []
    for team, count in zip(team_names, repos_per_team, strict=True):
        components = rng.choice(len(COMPONENTS), size=count, replace=False)
        repo_names.extend(f"{team}/{COMPONENTS[c]}" for c in components)
    shared_first = len(repo_names)
    repo_names.extend(SHARED_REPOS)
    repo_count = len(repo_names)
    return Org(
        user_ids=np.array([f"u{i + 1:04d}" for i in range(users)]),
        user_team=np.repeat(np.arange(team_count), sizes),
        team_names=team_names,
        team_org=team_org,
        org_names=[ORG_NAMES[i] for i in range(org_count)],
        repo_names=repo_names,
        repo_language=rng.choice(len(prompts.LANGUAGES), size=repo_count, p=LANGUAGE_SHARES),
        repo_deploy_minute=rng.integers(9 * 60, 20 * 60, repo_count),
        team_repo_first=segment_starts(repos_per_team),
        team_repo_count=repos_per_team,
        shared_repo_first=shared_first,
    )


def assign_habits(rng: np.random.Generator, users: int, weeks: int) -> Habits:
    """Personas (every legit persona and every tactic present when the world is big enough)."""
    gamer_count = max(1, round(users * rng.uniform(0.08, 0.12))) if users >= 10 else min(users, 1)
    if users >= 20:
        gamer_count = max(gamer_count, 3)
    legit_count = users - gamer_count
    legit = rng.choice(len(LEGIT_PERSONAS), size=legit_count, p=LEGIT_PERSONA_SHARES)
    forced = min(legit_count, len(LEGIT_PERSONAS))
    legit[:forced] = np.arange(forced)
    persona = np.concatenate([legit, np.full(gamer_count, GAMER_CODE)])[rng.permutation(users)]

    # Tactics: a random order of all six, dealt round the gamers; some gamers get a second one.
    gamers = np.flatnonzero(persona == GAMER_CODE)
    second_count = min(gamer_count, max(round(0.2 * gamer_count), len(TACTICS) - gamer_count))
    slots = rng.permutation(len(TACTICS))[np.arange(gamer_count + second_count) % len(TACTICS)]
    tactics = np.full((users, 2), -1, dtype=np.int64)
    tactics[gamers, 0] = slots[:gamer_count]
    tactics[gamers[:second_count], 1] = slots[gamer_count:]
    same = tactics[:, 0] == tactics[:, 1]
    tactics[same, 1] = (tactics[same, 0] + 1) % len(TACTICS)

    hire_week = np.where(persona == NEW_HIRE, rng.integers(0, max(1, weeks - 1), users), 0)
    return Habits(
        persona=persona,
        tactics=tactics,
        shift_start_h=rng.choice(SHIFT_STARTS, size=users, p=SHIFT_SHARES) + rng.uniform(0, 1, users),
        tool=rng.choice(len(TOOLS), size=users, p=TOOL_SHARES),
        activity=np.clip(np.exp(rng.normal(0, 0.3, users)), 0.6, 1.7),
        hire_week=hire_week,
        ramp_weeks=rng.integers(2, 4, users),
        on_call_offset=rng.integers(0, 3, users),
    )


def plan_user_weeks(rng: np.random.Generator, habits: Habits, weeks: int) -> UserWeeks:
    """Presence (vacations, hiring), on-call rotations and each gamer's gaming weeks."""
    users = len(habits.persona)
    user = np.repeat(np.arange(users), weeks)
    week = np.tile(np.arange(weeks), users)
    # Some people take one week off (in worlds long enough for that); new hires start later.
    vacation_week = np.where((rng.random(users) < 0.3) & (weeks >= 4), rng.integers(0, weeks, users), -1)
    present = (week != vacation_week[user]) & (week >= habits.hire_week[user])
    persona = habits.persona[user]
    on_call = (persona == ON_CALL) & ((week + habits.on_call_offset[user]) % 3 == 0)
    ramping = (persona == NEW_HIRE) & (week < habits.hire_week[user] + habits.ramp_weeks[user])

    # Gaming weeks: a random 30-70% of a gamer's present weeks, never all of them.
    order = np.lexsort((rng.random(users * weeks), ~present, user))
    rank = np.empty(users * weeks, dtype=np.int64)
    rank[order] = index_within(np.full(users, weeks))
    present_weeks = np.bincount(user[present], minlength=users)
    two_tactics = habits.tactics[:, 1] >= 0
    gaming_weeks = np.rint(present_weeks * rng.uniform(0.3, 0.7, users)).astype(np.int64)
    gaming_weeks = np.maximum(gaming_weeks, np.where(two_tactics & (present_weeks >= 3), 2, 1))
    gaming_weeks = np.minimum(gaming_weeks, np.maximum(present_weeks - 1, 0 if weeks > 1 else 1))
    gaming = (persona == GAMER_CODE) & present & (rank < gaming_weeks[user])
    column = np.where(habits.tactics[user, 1] >= 0, rank % 2, 0)
    gaming_tactic = np.where(gaming, habits.tactics[user, column], -1)
    return UserWeeks(user=user, week=week, present=present, gaming_tactic=gaming_tactic, on_call=on_call,
                     ramping=ramping)


# ---------------------------------------------------------------------------------------------
# sessions and prompts


class WorldBuilder:
    """Draws sessions, prompts, requests, changes and deployments for one world."""

    def __init__(self, rng: np.random.Generator, org: Org, habits: Habits, grid: UserWeeks,
                 start_ms: int, weeks: int) -> None:
        self.rng = rng
        self.org = org
        self.habits = habits
        self.grid = grid
        self.start_ms = start_ms
        self.end_ms = start_ms + weeks * WEEK

    # -- how many sessions of each kind in each user-week

    def session_counts(self) -> dict[int, np.ndarray]:
        """Sessions of each kind in each user-week (kind -> array over the grid)."""
        rng, grid, habits = self.rng, self.grid, self.habits
        persona = habits.persona[grid.user]
        scale = habits.activity[grid.user] * grid.present
        counts: dict[int, np.ndarray] = {}
        gaming = grid.gaming_tactic >= 0
        work_rate = np.asarray(WEEKLY_SESSIONS[WORK])[persona] * np.where(gaming, 0.8, 1.0)
        work_rate = np.where(grid.on_call, work_rate * 0.6, work_rate)
        explore_rate = np.asarray(WEEKLY_SESSIONS[EXPLORE])[persona]
        work_rate = np.where(grid.ramping, 0.0, work_rate)
        explore_rate = np.where(grid.ramping, 7.0, explore_rate)
        counts[WORK] = rng.poisson(work_rate * scale)
        counts[EXPLORE] = rng.poisson(explore_rate * scale)
        counts[CHAT] = rng.poisson(np.asarray(WEEKLY_SESSIONS[CHAT])[persona] * scale)
        counts[INCIDENT] = rng.poisson(np.where(grid.on_call, 5.0, 0.03) * scale)
        for tactic_kind, (minimum, mean) in TACTIC_SESSIONS.items():
            planned = grid.gaming_tactic == tactic_kind - len(LEGIT_KINDS)
            counts[tactic_kind] = np.where(planned, minimum + rng.poisson(mean, len(planned)), 0)
        # Padded sessions replace some of the person's ordinary work sessions.
        counts[WORK] = np.maximum(counts[WORK] - counts[REGENERATE_PADDING], 1 * (counts[WORK] > 0))
        return counts

    # -- session-level draws

    def sessions_for(self, kind: int, user_week: np.ndarray) -> Table:
        """One session per entry of `user_week`: start, repository, client, model, token shape."""
        rng, org, habits, grid = self.rng, self.org, self.habits, self.grid
        spec = KIND_SPECS[kind]
        n = len(user_week)
        user = grid.user[user_week]
        week_ms = self.start_ms + grid.week[user_week] * WEEK
        persona = habits.persona[user]
        heavy = persona == HEAVY
        cutoff = np.full(n, self.end_ms, dtype=np.int64)

        day = rng.integers(0, 5, n)
        hour = habits.shift_start_h[user] + rng.uniform(0, SHIFT_HOURS - 0.5, n)
        duration_h = np.zeros(n)
        if kind == INCIDENT:  # pages come at any hour, weekends included
            day, hour = rng.integers(0, 7, n), rng.uniform(0, 24, n)
        elif kind == PROMPT_LOOP:  # a script started at any hour, running for hours
            hour, duration_h = rng.uniform(0, 24, n), rng.uniform(2, 8, n)
        elif kind == IDLE_AGENT:
            duration_h = rng.uniform(1, 4, n)
        elif kind == SNAPSHOT_BURST:  # parallel sessions in the 6 hours before Friday 18:00 UTC
            day, hour, duration_h = np.full(n, 4), 18 - rng.uniform(1, 6, n), rng.uniform(1, 3, n)
            cutoff = week_ms + SNAPSHOT_OFFSET - MINUTE
        start = week_ms + day * DAY + (hour * HOUR).astype(np.int64)

        team = org.user_team[user]
        own_repo = org.team_repo_first[team] + (rng.random(n) * org.team_repo_count[team]).astype(np.int64)
        shared_repo = org.shared_repo_first + rng.integers(0, len(SHARED_REPOS), n)
        repo = np.where(rng.random(n) < 0.88, own_repo, shared_repo)
        repo = np.where(rng.random(n) < spec.repo_share, repo, -1)

        tool = np.where(rng.random(n) < 0.8, habits.tool[user], rng.integers(0, len(TOOLS), n))
        model_cdf = np.cumsum(TOOL_MODEL_SHARES, axis=1)[tool]
        model = (rng.random(n)[:, None] > model_cdf).sum(axis=1)
        model = np.minimum(model, GPT5_MINI)
        if kind in (TOKEN_BURN, SNAPSHOT_BURST):  # spend where it counts: the expensive model
            model = np.where(rng.random(n) < 0.6, OPUS, model)
        if kind == IDLE_AGENT:  # long-lived agent sessions run on cached Claude models
            model = np.where(model >= GPT5, SONNET, model)

        size = np.where(heavy, 1.4, 1.0)
        hit_mean = spec.cache_hit_mean
        ships = ~((persona == EXPLORER) | grid.ramping[user_week])
        return Table({
            "user": user, "user_week": user_week, "kind": np.full(n, kind), "start_ms": start, "cutoff_ms": cutoff,
            "duration_h": duration_h, "repo": repo, "tool": tool, "model": model,
            "heavy": heavy, "ships": ships,
            "hashed": rng.random(n) < 0.03,  # a privacy setting: prompts arrive as hashes only
            "key": rng.integers(0, 2**40, n),
            "context": np.minimum(spec.context_median * size * np.exp(rng.normal(0, 0.5, n)), CONTEXT_LIMIT * 0.95),
            "growth": spec.growth_median * np.exp(rng.normal(0, 0.5, n)),
            "cache_hit": rng.beta(hit_mean * 20, (1 - hit_mean) * 20, n) if kind != IDLE_AGENT
            else rng.uniform(0.97, 0.995, n),
            "output": spec.output_median * np.exp(rng.normal(0, 0.4, n)),
        })

    # -- prompt-level draws

    def prompts_for(self, kind: int, sessions: Table) -> Table:
        """Prompts of the sessions of one kind, in session order."""
        rng, spec = self.rng, KIND_SPECS[kind]
        n = len(sessions)
        heavy = sessions["heavy"]
        if kind == PROMPT_LOOP:
            interval_s = rng.choice(np.array([20, 30, 45, 60, 90]), n)
            count = (sessions["duration_h"] * 3600 / interval_s).astype(np.int64)
        elif kind == IDLE_AGENT:
            count = (sessions["duration_h"] * 3600 / spec.gap_median_s).astype(np.int64)
        elif kind == SNAPSHOT_BURST:
            until_cutoff_s = (sessions["cutoff_ms"] - sessions["start_ms"]) / SECOND
            window_s = np.minimum(until_cutoff_s, sessions["duration_h"] * 3600)
            count = (window_s / spec.gap_median_s).astype(np.int64)
        else:
            mean = spec.prompts_mean * np.where(heavy, 1.4, 1.0) - 1
            count = 1 + rng.negative_binomial(2, 2 / (2 + mean))
        count = np.maximum(count, 1)
        session = np.repeat(np.arange(n), count)
        position = index_within(count)
        total = len(session)

        if kind == PROMPT_LOOP:  # machine-regular: the interval +- 1 s
            gaps_s = interval_s[session] + rng.uniform(-1, 1, total)
        else:
            gaps_s = truncated_lognormal(rng, spec.gap_median_s, spec.gap_sigma, spec.gap_low_s, spec.gap_high_s, total)
        gaps_s[position == 0] = 0
        offset_ms = np.rint(segment_cumsum(gaps_s, count) * SECOND).astype(np.int64)

        family = np.full(total, spec.family)
        padding = np.zeros(total, dtype=bool)
        if kind == REGENERATE_PADDING:  # real work, padded with regenerate / try again
            padding = (rng.random(total) < 0.72) & (position > 0)
            family = np.where(padding, prompts.REGEN, prompts.WORK)
        elif kind == SNAPSHOT_BURST:
            family = np.where(rng.random(total) < 0.7, prompts.BURST, prompts.WORK)

        has_repo = (sessions["repo"][session] >= 0) & (rng.random(total) < spec.prompt_repo_share)
        extra_p = np.minimum(spec.extra_request_p + np.where(heavy[session], 0.1, 0.0), 0.95)
        extra_requests = rng.binomial(5, extra_p)
        if kind == IDLE_AGENT:
            extra_requests = 2 + rng.binomial(3, 0.5, total)
        elif kind == PROMPT_LOOP:
            extra_requests = rng.binomial(1, 0.3, total)
        extra_requests = np.where(padding, rng.binomial(1, 0.3, total), extra_requests)

        accepts = has_repo & ~padding & (rng.random(total) < spec.accept_share * np.where(heavy[session], 1.2, 1.0))
        lines = np.zeros(total, dtype=np.int64)
        accepted = int(accepts.sum())
        if kind == DEPLOY_SPLITTING:
            lines[accepts] = rng.integers(1, 6, accepted)
        else:
            lines[accepts] = np.rint(truncated_lognormal(rng, spec.accept_median, 1.0, 1, 800, accepted))
        agent_tool = sessions["tool"][session] != TOOLS.index("copilot")
        tool_calls = rng.poisson(spec.tool_call_rate * extra_requests * np.where(agent_tool, 1.0, 0.4))
        commit_share = spec.commit_share * np.where(heavy[session], 1.3, 1.0) * sessions["ships"][session]
        commit = (lines > 0) & (rng.random(total) < commit_share)
        return Table({
            "session": session, "position": position, "offset_ms": offset_ms, "family": family,
            "has_repo": has_repo, "requests": 1 + extra_requests, "lines": lines,
            "tool_calls": tool_calls, "commit": commit,
        })


@dataclass
class Activity:
    """Sessions, prompts (with their text) and requests of the whole world."""

    sessions: Table
    prompts: Table
    text: pl.Series
    requests: Table


def build_requests(rng: np.random.Generator, sessions: Table, prompt_table: Table) -> Table:
    """Model calls: each prompt's requests follow it within seconds; tokens from `request_tokens`."""
    count = prompt_table["requests"]
    prompt = np.repeat(np.arange(len(prompt_table), dtype=np.int32), count)
    session = prompt_table["session"][prompt].astype(np.int32)
    first_of_prompt = index_within(count) == 0
    tokens = request_tokens(rng, sessions, prompt_table, prompt, session, first_of_prompt)

    delays_s = truncated_lognormal(rng, 5.0, 0.8, 0.3, 120.0, len(prompt))
    delays_s[first_of_prompt] = rng.uniform(0.3, 3.0, int(first_of_prompt.sum()))
    ts_ms = prompt_table["ts_ms"][prompt] + np.rint(segment_cumsum(delays_s, count) * SECOND).astype(np.int64)
    return Table({"prompt": prompt, "session": session, "ts_ms": ts_ms, **tokens})


def call_models(rng: np.random.Generator, model: np.ndarray, total: int) -> np.ndarray:
    """The model of each of `total` calls from its session's (`model`, int8, changed in place): some
    sub-agent calls go to Haiku or GPT-5 mini, a few to a model without a price."""
    sub_agent = rng.random(total)
    model[(model <= OPUS) & (model != HAIKU) & (sub_agent < 0.12)] = HAIKU
    model[(model == GPT5) & (sub_agent < 0.10)] = GPT5_MINI
    model[rng.random(total) < 0.0025] = UNPRICED
    return model


def request_tokens(rng: np.random.Generator, sessions: Table, prompt_table: Table, prompt: np.ndarray,
                   session: np.ndarray, first_of_prompt: np.ndarray) -> dict[str, np.ndarray]:
    """Model and token counts per request: the context grows through the session (compacted when
    full), agents re-read it from cache, Claude models report cache writes."""
    total = len(prompt)
    # Request index within the session (prompts of a session are contiguous and in order).
    session_requests = np.bincount(session, minlength=len(sessions))
    step = index_within(session_requests[session_requests > 0])

    base = sessions["context"][session]
    growth = sessions["growth"][session]
    room = np.maximum(CONTEXT_LIMIT - base, 1_000)
    context = base + np.mod(growth * step * np.exp(rng.normal(0, 0.2, total)), room)
    del room
    cached_from_start = (sessions["kind"] == IDLE_AGENT)[session]  # the agent's huge context is already cached
    hit = sessions["cache_hit"][session]
    hit[~cached_from_start] *= rng.uniform(0.9, 1.0, int((~cached_from_start).sum()))
    cache_read = np.where((step > 0) | cached_from_start, np.rint(context * hit), 0).astype(np.int64)
    del hit
    prompt_tokens = np.where(first_of_prompt, np.ceil(prompt_table["length"][prompt] / 4), 0)
    input_tokens = np.rint(context - cache_read + prompt_tokens).astype(np.int64)
    del prompt_tokens
    output = (np.rint(sessions["output"][session] * np.exp(rng.normal(0, 0.7, total))) + 1).astype(np.int64)

    model = call_models(rng, sessions["model"].astype(np.int8)[session], total)
    writes_cache = (model <= OPUS) & (rng.random(total) < 0.7) & ~cached_from_start
    new_tokens = np.where(step == 0, context, growth * rng.uniform(0.5, 1.2, total))
    cache_write = np.where(writes_cache, np.rint(new_tokens), 0).astype(np.int64)
    return {"model": model, "input_tokens": input_tokens, "output_tokens": output,
            "cache_read_tokens": cache_read, "cache_write_tokens": cache_write}


# ---------------------------------------------------------------------------------------------
# changes and deployments


def build_changes(rng: np.random.Generator, builder: WorldBuilder, activity: Activity,
                  prompt_shas: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Changes from AI sessions (explicit or only inferable links), tiny split changes, non-AI changes.

    Returns the changes (keyed by `row`, their id order; `origin` says where they came from; times
    in ms, -1 when not merged) and their commit shas as (row, order, sha) rows.
    """
    sessions, prompt_table, grid = activity.sessions, activity.prompts, builder.grid
    session_count = len(sessions)
    commits = prompt_table["commit"]
    per_session_lines = np.bincount(prompt_table["session"], weights=prompt_table["lines"], minlength=session_count)
    per_session_commits = np.bincount(prompt_table["session"], weights=commits, minlength=session_count)
    last_ts = np.zeros(session_count, dtype=np.int64)
    np.maximum.at(last_ts, prompt_table["session"], prompt_table["ts_ms"])
    kind, repo, ships = sessions["kind"], sessions["repo"], sessions["ships"]

    # A) one change per AI session that produced code (committed by the assistant or by hand).
    shipping_kind = np.isin(kind, (WORK, INCIDENT, REGENERATE_PADDING))
    committed = shipping_kind & ships & (per_session_commits > 0)
    hand_committed = shipping_kind & ships & (per_session_commits == 0) & (repo >= 0) & (per_session_lines >= 5) \
        & (rng.random(session_count) < 0.45)
    draft = (kind == EXPLORE) & (repo >= 0) & (per_session_lines > 0) & (rng.random(session_count) < 0.10)
    ai_sessions = np.flatnonzero(committed | hand_committed | draft)
    n_ai = len(ai_sessions)
    hotfix = kind[ai_sessions] == INCIDENT
    link = rng.choice(3, size=n_ai, p=(0.3, 0.3, 0.4))  # 0: names the session, 1: lists commits, 2: neither
    link = np.where(committed[ai_sessions], link, 2)
    merge_delay = np.where(hotfix, rng.uniform(10, 60, n_ai) * MINUTE,
                           truncated_lognormal(rng, 16.0, 1.0, 0.5, 72.0, n_ai) * HOUR)
    merged = np.where(draft[ai_sessions] | (rng.random(n_ai) < 0.05), -1,
                      last_ts[ai_sessions] + merge_delay.astype(np.int64))
    added = np.where(hotfix, truncated_lognormal(rng, 8, 0.7, 1, 80, n_ai),
                     truncated_lognormal(rng, 90, 1.0, 3, 3_000, n_ai))
    added = np.maximum(np.rint(added), per_session_lines[ai_sessions])
    ai_changes = pl.DataFrame({
        "origin": np.where(hotfix, "hotfix", np.where(draft[ai_sessions], "draft", "ai")),
        "session": ai_sessions, "author": sessions["user"][ai_sessions], "repo": repo[ai_sessions],
        "anchor_ms": last_ts[ai_sessions], "merged_ms": merged, "lines_added": added.astype(np.int64),
        "lines_deleted": np.rint(added * rng.beta(1.2, 3.0, n_ai)).astype(np.int64), "link": link,
        "human_commits": np.where(link == 2, rng.integers(0, 4, n_ai), rng.binomial(1, 0.3, n_ai)),
    })

    # B) deploy_splitting: every assistant commit becomes its own tiny change.
    split_prompts = np.flatnonzero(commits & (kind[prompt_table["session"]] == DEPLOY_SPLITTING))
    n_split = len(split_prompts)
    split_session = prompt_table["session"][split_prompts]
    lines_changed = rng.integers(1, 6, n_split)
    split_added = np.maximum(1, lines_changed - rng.integers(0, 3, n_split))
    split_changes = pl.DataFrame({
        "origin": np.full(n_split, "split"), "session": split_session, "author": sessions["user"][split_session],
        "repo": repo[split_session], "anchor_ms": prompt_table["ts_ms"][split_prompts],
        "merged_ms": prompt_table["ts_ms"][split_prompts] + rng.integers(5 * MINUTE, 40 * MINUTE, n_split),
        "lines_added": split_added, "lines_deleted": np.maximum(lines_changed - split_added, 0),
        "link": rng.choice(3, size=n_split, p=(0.2, 0.6, 0.2)), "human_commits": np.zeros(n_split, dtype=np.int64),
    })

    # C) changes written without AI, by everyone at their own pace.
    persona = builder.habits.persona[grid.user]
    manual_counts = rng.poisson(np.asarray(NON_AI_CHANGES_PER_WEEK)[persona] * grid.present * ~grid.ramping)
    manual_week = np.repeat(np.arange(len(grid.user)), manual_counts)
    n_manual = len(manual_week)
    manual_user = grid.user[manual_week]
    team = builder.org.user_team[manual_user]
    org = builder.org
    manual_repo = org.team_repo_first[team] + (rng.random(n_manual) * org.team_repo_count[team]).astype(np.int64)
    manual_hour = builder.habits.shift_start_h[manual_user] + rng.uniform(0, SHIFT_HOURS, n_manual)
    manual_time = (builder.start_ms + grid.week[manual_week] * WEEK + rng.integers(0, 5, n_manual) * DAY
                   + (manual_hour * HOUR).astype(np.int64))
    manual_added = np.rint(truncated_lognormal(rng, 60, 1.1, 1, 3_000, n_manual))
    manual_changes = pl.DataFrame({
        "origin": np.full(n_manual, "manual"), "session": np.full(n_manual, -1), "author": manual_user,
        "repo": manual_repo, "anchor_ms": manual_time,
        "merged_ms": np.where(rng.random(n_manual) < 0.04, -1, manual_time),
        "lines_added": manual_added.astype(np.int64),
        "lines_deleted": np.rint(manual_added * rng.beta(1.2, 3.0, n_manual)).astype(np.int64),
        "link": np.full(n_manual, 2), "human_commits": rng.integers(0, 4, n_manual),
    })

    schema = {"origin": pl.String, "session": pl.Int64, "author": pl.Int64, "repo": pl.Int64, "anchor_ms": pl.Int64,
              "merged_ms": pl.Int64, "lines_added": pl.Int64, "lines_deleted": pl.Int64, "link": pl.Int64,
              "human_commits": pl.Int64}
    changes = pl.concat([frame.cast(schema) for frame in (ai_changes, split_changes, manual_changes)])
    changes = changes.with_columns(
        pl.when(pl.col("link") == 0).then(pl.col("session")).otherwise(None).alias("named_session"),
        split_prompt=pl.Series(np.concatenate([np.full(n_ai, -1), split_prompts, np.full(n_manual, -1)])),
    )
    # Stable ids in time order (ties broken by author, repo, and the draw order).
    changes = changes.with_row_index("draw").sort(
        pl.when(pl.col("merged_ms") >= 0).then("merged_ms").otherwise("anchor_ms"), "author", "repo", "draw"
    ).drop("draw").with_row_index("row")

    # Commit shas: the assistant's commits of the session (or the split commit), then human ones.
    session_commits = pl.DataFrame({
        "session": prompt_table["session"][commits], "prompt": np.flatnonzero(commits),
        "sha": prompt_shas.filter(pl.Series(commits)),
    })
    listed = changes.filter(pl.col("link") <= 1)
    from_sessions = listed.filter(pl.col("origin") != "split").select("row", "session").join(
        session_commits, on="session").select("row", pl.col("prompt").alias("order"), "sha")
    from_splits = listed.filter(pl.col("origin") == "split").select("row", "split_prompt").join(
        session_commits.select(pl.col("prompt").alias("split_prompt"), "sha"), on="split_prompt"
    ).select("row", pl.col("split_prompt").alias("order"), "sha")
    human_rows = np.repeat(changes["row"].to_numpy(), changes["human_commits"].to_numpy())
    human = pl.DataFrame({"row": human_rows, "order": np.full(len(human_rows), np.iinfo(np.int64).max),
                          "sha": random_shas(rng, len(human_rows))},
                         schema={"row": pl.UInt32, "order": pl.Int64, "sha": pl.String})
    shas = pl.concat([from_sessions.cast({"row": pl.UInt32, "order": pl.Int64}),
                      from_splits.cast({"row": pl.UInt32, "order": pl.Int64}), human]).sort("row", "order")
    return changes, shas


def build_deployments(rng: np.random.Generator, builder: WorldBuilder, changes: pl.DataFrame) -> pl.DataFrame:
    """Daily batches per repo, own deployments for hotfixes and split changes, failures and retries."""
    merged = changes.filter(pl.col("merged_ms") >= 0)
    undeployed = rng.random(merged.height) < 0.03  # a few merged changes never ship
    merged = merged.filter(~pl.Series(undeployed))
    solo = merged.filter(pl.col("origin").is_in(["hotfix", "split"]))
    batched = merged.filter(~pl.col("origin").is_in(["hotfix", "split"]))

    deploy_minute = builder.org.repo_deploy_minute[batched["repo"].to_numpy()]
    since_start = batched["merged_ms"].to_numpy() - builder.start_ms - deploy_minute * MINUTE
    slot_day = np.floor_divide(since_start, DAY) + 1  # first daily slot after the merge
    weekday = slot_day % 7  # the world starts on a Monday
    slot_day = slot_day + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
    batches = batched.with_columns(slot_day=slot_day).group_by("repo", "slot_day").agg(
        pl.col("row").sort()).sort("repo", "slot_day")
    batch_minute = builder.org.repo_deploy_minute[batches["repo"].to_numpy()] + rng.integers(0, 20, batches.height)
    batches = batches.with_columns(
        deployed_ms=builder.start_ms + batches["slot_day"].to_numpy() * DAY + batch_minute * MINUTE).drop("slot_day")

    solo_delay = pl.Series(rng.integers(5 * MINUTE, 30 * MINUTE, solo.height))
    solo = solo.select("repo", pl.concat_list("row").alias("row"),
                       (pl.col("merged_ms") + solo_delay).alias("deployed_ms"))
    first = pl.concat([batches.select("repo", "row", "deployed_ms"), solo.select("repo", "row", "deployed_ms")])
    draw = rng.random(first.height)
    batch_status = np.where(draw < 0.88, "success", np.where(draw < 0.95, "failure", "rolled_back"))
    solo_status = np.where(draw < 0.95, "success", "failure")
    is_batch = np.arange(first.height) < batches.height
    first = first.with_columns(status=pl.Series(np.where(is_batch, batch_status, solo_status)))

    # A failure is retried within hours (rarely failing again); a rollback is mostly re-shipped a day later.
    failed = first.filter(pl.col("status") == "failure")
    retries = failed.with_columns(
        deployed_ms=pl.col("deployed_ms") + pl.Series(rng.integers(30 * MINUTE, 180 * MINUTE, failed.height)),
        status=pl.Series(np.where(rng.random(failed.height) < 0.95, "success", "failure")))
    rolled = first.filter(pl.col("status") == "rolled_back")
    reshipped = rolled.filter(pl.Series(rng.random(rolled.height) < 0.6)).with_columns(
        deployed_ms=pl.col("deployed_ms") + DAY, status=pl.lit("success"))
    deployments = pl.concat([first, retries, reshipped]).with_row_index("draw")
    return deployments.sort("deployed_ms", "repo", "draw").drop("draw")


def build_activity(builder: WorldBuilder) -> Activity:
    """Sessions and prompts kind by kind, prompt text, then the requests of every prompt."""
    rng = builder.rng
    counts = builder.session_counts()
    session_parts: list[Table] = []
    prompt_parts: list[Table] = []
    offset = 0
    for kind in range(len(KINDS)):
        user_week = np.repeat(np.arange(len(builder.grid.user)), counts[kind])
        if len(user_week) == 0:
            continue
        sessions = builder.sessions_for(kind, user_week)
        prompt_table = builder.prompts_for(kind, sessions)
        prompt_table["session"] = prompt_table["session"] + offset
        offset += len(sessions)
        session_parts.append(sessions)
        prompt_parts.append(prompt_table)
    sessions = Table.concat(session_parts)
    prompt_table = Table.concat(prompt_parts)

    # Place prompts in time; drop those past the session's cutoff (snapshot, end of the world).
    prompt_table["ts_ms"] = sessions["start_ms"][prompt_table["session"]] + prompt_table["offset_ms"]
    keep = prompt_table["ts_ms"] < sessions["cutoff_ms"][prompt_table["session"]]
    prompt_table = prompt_table.take(np.flatnonzero(keep))
    prompt_table["repo"] = np.where(prompt_table["has_repo"], sessions["repo"][prompt_table["session"]], -1)
    prompt_table["commit"] &= prompt_table["repo"] >= 0

    renderer = prompts.PromptRenderer(rng)
    repo_language = builder.org.repo_language[np.maximum(prompt_table["repo"], 0)]
    language = np.where(prompt_table["repo"] >= 0, repo_language,
                        rng.integers(0, len(prompts.LANGUAGES), len(prompt_table)))
    text = renderer.render(prompt_table["family"], language, sessions["key"][prompt_table["session"]],
                           prompt_table["position"])
    prompt_table["length"] = text.str.len_chars().to_numpy().astype(np.int64)
    requests = build_requests(rng, sessions, prompt_table)
    requests = requests.take(np.flatnonzero(requests["ts_ms"] < builder.end_ms))
    return Activity(sessions=sessions, prompts=prompt_table, text=text, requests=requests)


# ---------------------------------------------------------------------------------------------
# contract frames, labels and files

def sha256_hex(text: pl.Series) -> pl.Series:
    """Hex SHA-256 of each string, computed by DuckDB in one vectorised query (order kept)."""
    frame = pl.DataFrame({"prompt_text": text}).with_row_index("position")
    with duckdb.connect() as con:
        hashed = con.sql("select position, sha256(prompt_text) as prompt_hash from frame order by position").pl()
    return hashed["prompt_hash"]


def _gather_lists(index_lists: pl.Series, values: pl.Series) -> pl.Series:
    """Replace every index in a (non-empty) list column by values[index], keeping list order."""
    lengths = index_lists.list.len().to_numpy()
    flat = pl.DataFrame({"list": np.repeat(np.arange(len(lengths)), lengths),
                         "value": values.gather(index_lists.explode())})
    return flat.group_by("list", maintain_order=True).agg("value")["value"]


PRICES_CSV = resources.files("pipeline.ingest").joinpath("prices.csv")  # the production price table
COST_FILLED_SHARE = {"cursor": 0.6}  # clients that report cost; others report it rarely
COST_FILLED_ELSEWHERE = 0.03


def _prices() -> np.ndarray:
    """(model, [input, output, cache read, cache write]) USD per million tokens, MODELS order.

    The unpriced model gets Sonnet's price for the rows whose client reports a cost itself.
    """
    table = pl.read_csv(PRICES_CSV.read_bytes())
    by_model = {row["model"]: row for row in table.iter_rows(named=True)}
    columns = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
    priced = [name if name in by_model else "sonnet-4.5" for name in MODELS]
    return np.array([[float(by_model[name][c] or 0.0) for c in columns] for name in priced])


def _contract_frames(rng: np.random.Generator, org: Org, activity: Activity, session_ids: np.ndarray,
                     prompt_shas: pl.Series, changes: pl.DataFrame, shas: pl.DataFrame,
                     deployments: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The five contract datasets, in the contract's column order and types."""
    sessions, requests = activity.sessions, activity.requests
    repo_names = pl.Series(org.repo_names + [None], dtype=pl.String)  # index -1 -> null
    session_id_series = pl.Series(session_ids)

    tool = sessions["tool"][requests["session"]]
    filled_share = np.where(tool == TOOLS.index("cursor"), COST_FILLED_SHARE["cursor"], COST_FILLED_ELSEWHERE)
    token_usage = token_usage_frame(org, sessions, requests, session_id_series, TOOLS,
                                    cost_missing=rng.random(len(requests)) >= filled_share)
    invocations = invocations_frame(org, sessions, activity.prompts, activity.text, session_id_series, prompt_shas)

    # changes (their `row` is their position in id order)
    change_ids = prefixed_ids("c-", changes.height)
    commit_lists = shas.group_by("row", maintain_order=True).agg(pl.col("sha").alias("commit_shas"))
    named = changes["named_session"]
    change_frame = changes.join(commit_lists, on="row", how="left", maintain_order="left").with_columns(
        change_id=change_ids,
        named_id=session_id_series.gather(named.fill_null(0)).set(named.is_null(), None),
    ).select(
        "change_id",
        repo_names.gather(changes["repo"]).alias("repo"),
        pl.Series(org.user_ids).gather(changes["author"]).alias("author_id"),
        pl.when(pl.col("merged_ms") >= 0).then(to_datetime("merged_ms")).alias("merged_at"),
        "lines_added", "lines_deleted",
        pl.when(pl.col("named_id").is_not_null()).then(pl.concat_list("named_id"))
        .otherwise(pl.lit([], dtype=pl.List(pl.String))).alias("ai_session_ids"),
        pl.col("commit_shas").fill_null(pl.lit([], dtype=pl.List(pl.String))),
    )
    return conform({"token_usage": token_usage, "invocations": invocations, "changes": change_frame,
                    "deployments": deployments_frame(org, deployments, change_ids), "people": people_frame(org)})


# --- the contract datasets, shared with data/agentic.py ---------------------------------------


def token_usage_frame(org: Org, sessions: Table, calls: Table, session_ids: pl.Series, tools: tuple[str, ...],
                      cost_missing: np.ndarray) -> pl.DataFrame:
    """token_usage: one row per model call in time order, ids r-000000001...; cost_usd from the default
    price table, left empty where `cost_missing`."""
    session, model = calls["session"], calls["model"]
    price = _prices()[model]
    cost = (calls["input_tokens"] * price[:, 0] + calls["output_tokens"] * price[:, 1]
            + calls["cache_read_tokens"] * price[:, 2] + calls["cache_write_tokens"] * price[:, 3]) / 1e6
    frame = pl.DataFrame({
        "ts_ms": calls["ts_ms"],
        "user_id": pl.Series(org.user_ids).gather(sessions["user"][session]),
        "session_id": session_ids.gather(session),
        "model": pl.Series(MODELS).gather(model),
        "input_tokens": calls["input_tokens"], "output_tokens": calls["output_tokens"],
        "cache_read_tokens": calls["cache_read_tokens"], "cache_write_tokens": calls["cache_write_tokens"],
        "cost_usd": pl.Series(np.round(cost, 6)).set(pl.Series(cost_missing), None),
        "tool": pl.Series(tools).gather(sessions["tool"][session]),
    })[np.argsort(calls["ts_ms"], kind="stable")]
    return _numbered(frame, "request_id", "r-")


def invocations_frame(org: Org, sessions: Table, prompts: Table, text: pl.Series, session_ids: pl.Series,
                      commit_shas: pl.Series) -> pl.DataFrame:
    """invocations: one row per prompt in time order, ids i-000000001...; the prompts of hashed
    sessions give their sha256 (prompt_hash) instead of their text."""
    prompt_session = prompts["session"]
    hashed = sessions["hashed"][prompt_session]
    hashes = sha256_hex(text.filter(pl.Series(hashed)))
    frame = pl.DataFrame({
        "ts_ms": prompts["ts_ms"],
        "user_id": pl.Series(org.user_ids).gather(sessions["user"][prompt_session]),
        "session_id": session_ids.gather(prompt_session),
        "repo": pl.Series(org.repo_names + [None], dtype=pl.String).gather(prompts["repo"] % (len(org.repo_names) + 1)),
        "prompt_text": text.set(pl.Series(hashed), None),
        "prompt_hash": null_strings(len(hashed)).scatter(np.flatnonzero(hashed), hashes),
        "prompt_length": prompts["length"],
        "lines_accepted": prompts["lines"],
        "tool_calls": prompts["tool_calls"].astype(np.int64),
        "commit_sha": commit_shas,
    })[np.lexsort((prompts["position"], prompt_session, prompts["ts_ms"]))]
    return _numbered(frame, "invocation_id", "i-")


def deployments_frame(org: Org, deployments: pl.DataFrame, change_ids: pl.Series) -> pl.DataFrame:
    """deployments: ids d-000000001... in row order; change_ids from the changes' rows."""
    return deployments.select(
        prefixed_ids("d-", deployments.height).alias("deployment_id"),
        pl.Series(org.repo_names + [None], dtype=pl.String).gather(deployments["repo"]).alias("repo"),
        to_datetime("deployed_ms").alias("deployed_at"),
        "status",
        _gather_lists(deployments["row"], change_ids).alias("change_ids"),
    )


def people_frame(org: Org) -> pl.DataFrame:
    return pl.DataFrame({
        "user_id": org.user_ids,
        "team": pl.Series(org.team_names).gather(org.user_team),
        "org": pl.Series(org.org_names).gather(org.team_org[org.user_team]),
    })


def conform(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Each dataset's frame with the contract's columns, order and types (pipeline/ingest/contract.py)."""
    return {name: frame.select(pl.col(column).cast(dtype) for column, dtype in contract.file_schema(name).items())
            for name, frame in frames.items()}


def _numbered(frame: pl.DataFrame, id_column: str, prefix: str) -> pl.DataFrame:
    """Ids in row order first, then ts from ts_ms, then the other columns."""
    return frame.select(prefixed_ids(prefix, frame.height).alias(id_column), to_datetime("ts_ms").alias("ts"),
                        pl.exclude("ts_ms"))


def _week_start(ts_ms: np.ndarray, start_ms: int) -> pl.Series:
    """ISO week (Monday) of each time, as a date; the world starts on a Monday."""
    week = np.floor_divide(ts_ms - start_ms, WEEK)
    return pl.Series("week_start", (start_ms // DAY + week * 7).astype(np.int32)).cast(pl.Date)


def _labels(org: Org, habits: Habits, activity: Activity, session_ids: np.ndarray,
            start_ms: int) -> dict[str, pl.DataFrame]:
    """Ground truth: every session, and every user-week with any request or prompt."""
    sessions, prompt_table, requests = activity.sessions, activity.prompts, activity.requests
    tactic = sessions["kind"] - len(LEGIT_KINDS)  # negative for legit kinds
    tactic_names = pl.Series(TACTICS, dtype=pl.String)
    session_labels = pl.DataFrame({
        "session_id": session_ids,
        "user_id": org.user_ids[sessions["user"]],
        "week_start": _week_start(sessions["start_ms"], start_ms),
        "is_gaming": tactic >= 0,
        "tactic": tactic_names.gather(np.maximum(tactic, 0)).set(pl.Series(tactic < 0), None),
    }).sort("session_id")

    # A user-week is gaming when any of its activity came from a tactic session.
    events = pl.DataFrame({
        "user": np.concatenate([sessions["user"][requests["session"]], sessions["user"][prompt_table["session"]]]),
        "ts_ms": np.concatenate([requests["ts_ms"], prompt_table["ts_ms"]]),
        "tactic": np.concatenate([tactic[requests["session"]], tactic[prompt_table["session"]]]),
    }).with_columns(week_start=_week_start(np.concatenate([requests["ts_ms"], prompt_table["ts_ms"]]), start_ms))
    by_week = events.group_by("user", "week_start").agg(
        # the week's main tactic: the one with most events (ties: the first in TACTICS order)
        pl.col("tactic").filter(pl.col("tactic") >= 0).mode().min().alias("tactic"))
    persona_names = pl.Series(PERSONAS)
    user_weeks = by_week.sort("user", "week_start")
    user_index = user_weeks["user"].to_numpy()
    team = org.user_team[user_index]
    user_weeks = pl.DataFrame({
        "user_id": org.user_ids[user_index],
        "team": pl.Series(org.team_names).gather(team),
        "org": pl.Series(org.org_names).gather(org.team_org[team]),
        "week_start": user_weeks["week_start"],
        "persona": persona_names.gather(habits.persona[user_index]),
        "is_gaming": user_weeks["tactic"].is_not_null(),
        "tactic": tactic_names.gather(user_weeks["tactic"].fill_null(0)).set(user_weeks["tactic"].is_null(), None),
    })
    return {"user_weeks": user_weeks, "sessions": session_labels}


def _to_csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV form: lists `;`-joined (empty list -> empty cell), timestamps ISO-8601 with Z."""
    converted = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.List):
            column = pl.when(column.list.len() > 0).then(column.list.join(";")).alias(name)
        elif isinstance(dtype, pl.Datetime):
            column = column.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias(name)
        converted.append(column)
    return frame.select(converted)


def _write_frame(frame: pl.DataFrame, path: Path, file_format: str) -> None:
    if file_format == "parquet":
        frame.write_parquet(path.with_suffix(".parquet"))
    elif file_format == "csv":
        _to_csv_ready(frame).write_csv(path.with_suffix(".csv"))
    else:
        frame.write_ndjson(path.with_suffix(".jsonl"))


DAILY_DATASETS = ("token_usage", "invocations")  # one file a day; the other datasets one file each
# optional contract columns a world can be written without (sources differ in what they report)
WITHHOLDABLE = {"lines_accepted": "invocations", "commit_sha": "invocations", "tool_calls": "invocations",
                "prompt_length": "invocations", "prompt_text": "invocations", "repo": "invocations", "tool": "token_usage",
                "cost_usd": "token_usage"}
FILE_DATASETS = ("changes", "deployments", "reviews", "people")


def withhold(frames: dict[str, pl.DataFrame], without: Collection[str]) -> dict[str, pl.DataFrame]:
    """The frames as sources that do not report the columns `without` would write them: each
    column left out (a source without it), and prompt_text given as its sha256 in prompt_hash
    (a source that hashes prompts upstream). The labels are unchanged."""
    check_withholdable(without)
    frames = dict(frames)
    for column in without:
        name = WITHHOLDABLE[column]
        if column == "prompt_text":
            frames[name] = frames[name].with_columns(
                prompt_hash=pl.col("prompt_text").map_batches(sha256_hex, return_dtype=pl.String))
        frames[name] = frames[name].drop(column)
    return frames


def check_withholdable(without: Collection[str]) -> None:
    """ValueError naming any column `withhold` cannot leave out."""
    unknown = sorted(set(without) - set(WITHHOLDABLE))
    if unknown:
        raise ValueError(f"cannot leave out {', '.join(unknown)}: choose from {', '.join(WITHHOLDABLE)}")


def write_world(out_dir: Path, frames: dict[str, pl.DataFrame], labels: dict[str, pl.DataFrame],
                file_format: str, without: Collection[str] = ()) -> dict[str, int]:
    """Write datasets (replacing an earlier world in the same folder) and labels; rows per dataset.
    people is always people.csv; a dataset without a frame (reviews in a chat world) is left out;
    the columns `without` are left out as a source that does not report them would (`withhold`)."""
    frames = withhold(frames, without)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (*DAILY_DATASETS, "labels"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in FILE_DATASETS:
        for suffix in (".parquet", ".csv", ".jsonl"):
            (out_dir / name).with_suffix(suffix).unlink(missing_ok=True)

    for name in DAILY_DATASETS:
        folder = out_dir / name
        folder.mkdir()
        frame = frames[name]  # sorted by ts: each day is a zero-copy slice
        day = frame["ts"].dt.date()
        boundaries = np.flatnonzero(np.diff(day.to_physical().to_numpy())) + 1
        for first, end in zip(np.r_[0, boundaries], np.r_[boundaries, frame.height], strict=True):
            _write_frame(frame.slice(first, end - first), folder / f"{day[int(first)]:%Y-%m-%d}", file_format)
    for name in FILE_DATASETS:
        if name == "people":
            frames[name].write_csv(out_dir / "people.csv")
        elif name in frames:
            _write_frame(frames[name], out_dir / name, file_format)

    (out_dir / "labels").mkdir()
    for name, frame in labels.items():
        frame.write_parquet(out_dir / "labels" / f"{name}.parquet")
    return {name: frame.height for name, frame in frames.items()}


# ---------------------------------------------------------------------------------------------
# the world


def generate_world(out_dir: Path, *, users: int = 200, weeks: int = 8, seed: int = 0,
                   start: datetime.date = datetime.date(2026, 9, 7), file_format: str = "parquet",
                   style: str = "chat", intensity: float = 1.0, without: Collection[str] = ()) -> WorldSummary:
    """Write a sample world (contract datasets plus labels/) to `out_dir`; same seed, same bytes.

    `style` "chat" (the default) is the chat-era world; "agentic" the 2026 agent-work world of
    data/agentic.py, whose gamers game with strength `intensity` (1.0 by default; 0.25, 0.5 and
    1.0 draw a detection curve). The chat style has no intensity setting. `without`: optional
    columns (WITHHOLDABLE) written as a source that does not report them would (`withhold`).
    """
    if file_format not in FORMATS:
        raise ValueError(f"file_format must be one of {FORMATS}, not {file_format!r}")
    if start.weekday() != 0:
        raise ValueError(f"start must be a Monday, not {start:%A} {start}")
    if users < 1 or weeks < 1:
        raise ValueError("users and weeks must be at least 1")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    if not 0 < intensity <= 4:
        raise ValueError(f"intensity must be in (0, 4], not {intensity!r}")
    check_withholdable(without)  # before anything is drawn
    if style == "agentic":
        from data.agentic import generate_agentic_world

        return generate_agentic_world(Path(out_dir), users=users, weeks=weeks, seed=seed, start=start,
                                      file_format=file_format, intensity=float(intensity), without=without)
    if intensity != 1.0:
        raise ValueError("intensity applies to the agentic style only")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    org = build_org(rng, users)
    habits = assign_habits(rng, users, weeks)
    grid = plan_user_weeks(rng, habits, weeks)
    builder = WorldBuilder(rng, org, habits, grid, epoch_ms(start), weeks)

    activity = build_activity(builder)
    # Session ids in time order; commit ids for the prompts where the assistant committed.
    sessions = activity.sessions
    session_rank = np.empty(len(sessions), dtype=np.int64)
    by_time = np.lexsort((np.arange(len(sessions)), sessions["user"], sessions["start_ms"]))
    session_rank[by_time] = np.arange(len(sessions))
    session_ids = prefixed_ids("s-", len(sessions)).to_numpy()[session_rank]
    commit_rows = np.flatnonzero(activity.prompts["commit"])
    prompt_shas = null_strings(len(activity.prompts)).scatter(commit_rows, random_shas(rng, len(commit_rows)))

    changes, shas = build_changes(rng, builder, activity, prompt_shas)
    deployments = build_deployments(rng, builder, changes)

    labels = _labels(org, habits, activity, session_ids, builder.start_ms)
    frames = _contract_frames(rng, org, activity, session_ids, prompt_shas, changes, shas, deployments)
    del activity, prompt_shas  # free the working arrays before writing
    rows = write_world(out_dir, frames, labels, file_format, without)
    user_weeks = labels["user_weeks"]
    return WorldSummary(out_dir=out_dir, users=users, weeks=weeks, seed=seed, rows=rows,
                        gaming_user_weeks=int(user_weeks["is_gaming"].sum()), user_weeks=user_weeks.height)
