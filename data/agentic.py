"""The agentic sample world: AI-assisted engineering as it looks in 2026 (see docs/worlds.md).

`generate_world(..., style="agentic")` writes it; the chat-style world of `data/generate.py`
stays the default. People mostly drive coding agents: a session is a few user turns
(invocations), each turn many LLM calls (token_usage rows) over a growing, mostly cached
context, with tool calls, kept lines and the agent's own commits. Calibrated to published traces:

- GitHub Copilot coding-agent traces, June 2026 (Azure Public Dataset "GitHub Copilot Coding
  Agent Traces 2026", CC-BY; arXiv 2608.00101): 301,026 sessions; 3.95 user turns per session;
  7.83 LLM calls per turn; 631.4B prompt tokens of which 540.95B cached (86%); 4.91B completion
  tokens (0.78% of the prompt tokens): about 2.1M prompt tokens a session, 68k a call, 530
  output tokens a call.
- TraceLab (University of Washington, 2026; Claude Code and Codex sessions,
  tracelab.cs.washington.edu): 4,265 sessions, 357,161 agent steps, 432,510 tool calls (1.21 a
  step), 54.9B input tokens of which 52.6B cache reads (96%), 186.9M output tokens (523 a step).
- Anthropic's PR attribution for Claude Code (Claude Code analytics, contribution metrics): a
  session counts toward a merged PR only when its output matches the PR's diff lines; sessions
  from 21 days before to 2 days after the merge are considered, lines rewritten by more than 20%
  are excluded. Every true session-change link of this world lies in that window (a long
  migration merges 7-14 days after its sessions).

Legitimate hard cases: reviewers, long migrations, a research team whose repositories never
deploy, an org-wide adoption week. Tactics: the six of the chat world in agentic form plus
disguised_burn, gradual_ramp and team_collusion, their strength scaled by `intensity`.

Four independent random streams: the plan (people, teams, which weeks game), the legitimate
activity, the gaming activity (the only one `intensity` changes) and the deployments. For one
seed, the legitimate sessions, prompts, model calls, changes and reviews are therefore the same
at every intensity; only their ids (assigned in time order) and the deployment batches move.
Vectorised over sessions, turns and calls; Python loops run over kinds only.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from data import prompts
from data.generate import (
    COST_FILLED_ELSEWHERE,
    DAY,
    GPT5,
    HOUR,
    MINUTE,
    OPUS,
    SECOND,
    SHARED_REPOS,
    SHIFT_HOURS,
    SHIFT_SHARES,
    SHIFT_STARTS,
    SNAPSHOT_OFFSET,
    SONNET,
    UNPRICED,
    WEEK,
    GPT5_MINI,
    Org,
    Table,
    WorldSummary,
    _week_start,
    build_deployments,
    build_org,
    call_models,
    conform,
    deployments_frame,
    epoch_ms,
    index_within,
    invocations_frame,
    people_frame,
    prefixed_ids,
    random_shas,
    segment_cumsum,
    to_datetime,
    token_usage_frame,
    truncated_lognormal,
    write_world,
)
from data.generate import LEGIT_PERSONAS as CHAT_LEGIT_PERSONAS
from data.generate import TACTICS as CHAT_TACTICS
from data.seeds import seed_role

STYLE = "agentic"

# ---------------------------------------------------------------------------------------------
# published figures (see the module docstring for the sources)

COPILOT_TURNS_PER_SESSION = 3.95
COPILOT_CALLS_PER_TURN = 7.83
COPILOT_CACHED_SHARE = 540.95 / 631.4  # 0.857
COPILOT_OUTPUT_PER_PROMPT = 4.91 / 631.4  # 0.78%
COPILOT_PROMPT_TOKENS_PER_CALL = 631.4e9 / (301_026 * 3.95 * 7.83)  # ~68k
TRACELAB_CACHED_SHARE = 52.6 / 54.9  # 0.958
TRACELAB_TOOL_CALLS_PER_STEP = 432_510 / 357_161  # 1.21
TRACELAB_OUTPUT_PER_STEP = 186.9e6 / 357_161  # 523
ATTRIBUTION_DAYS_BEFORE_MERGE, ATTRIBUTION_DAYS_AFTER_MERGE = 21, 2  # Anthropic's PR attribution window

# Our own choices where no figure is published (docs/worlds.md says why):
TRAILER_SHARE = 0.40  # AI-fed changes that name their sessions in ai_session_ids (trailers are not universal)
SQUASH_SHARE = 0.30  # changes squash-merged: the agent's own commits are gone from commit_shas
REVIEW_NAMES_SESSION_SHARE = 0.50  # AI-assisted reviews whose row names the review session

CONTEXT_LIMIT = 200_000  # tokens
COMPACT_AT = 160_000  # agents compact the conversation when the context would pass 80% of the limit
CACHE_TTLS_MS = (5 * MINUTE, HOUR)  # prompt-cache lifetimes (the default 5 minutes; 1 hour); a longer pause goes cold
CACHE_TTL_SHARES = (0.8, 0.2)

# ---------------------------------------------------------------------------------------------
# people, kinds, tactics

TACTICS = (*CHAT_TACTICS, "disguised_burn", "gradual_ramp", "team_collusion")
INDIVIDUAL_TACTICS = TACTICS[:8]  # dealt to single gamers; team_collusion goes to a whole team
RAMP_TACTIC, COLLUSION_TACTIC = TACTICS.index("gradual_ramp"), TACTICS.index("team_collusion")
LEGIT_PERSONAS = (*CHAT_LEGIT_PERSONAS, "reviewer", "researcher")
PERSONAS = (*LEGIT_PERSONAS, "gamer")
ORDINARY, HEAVY, EXPLORER, NEW_HIRE, ON_CALL, MANUAL, REVIEWER, RESEARCHER, GAMER = range(len(PERSONAS))
# Shares of the people outside the research and collusion teams who are not gamers (ordinary .. reviewer).
DRAWN_PERSONA_SHARES = np.array([0.53, 0.08, 0.06, 0.07, 0.10, 0.07, 0.09])
HARD_CASES = ("reviewer", "long_migration", "research_team", "adoption_week")

LEGIT_KINDS = ("work", "explore", "chat", "incident", "review", "migration")
KINDS = (*LEGIT_KINDS, *TACTICS)
WORK, EXPLORE, CHAT, INCIDENT, REVIEW, MIGRATION = range(len(LEGIT_KINDS))
(TOKEN_BURN, PROMPT_LOOP, SNAPSHOT_BURST, REGENERATE_PADDING, IDLE_AGENT, DEPLOY_SPLITTING,
 DISGUISED_BURN, GRADUAL_RAMP, TEAM_COLLUSION) = range(len(LEGIT_KINDS), len(KINDS))
TACTIC_KINDS = tuple(range(len(LEGIT_KINDS), len(KINDS)))
# Kinds whose turns a person types (approvals among them); the others are scripts.
TYPED_KINDS = frozenset((WORK, EXPLORE, CHAT, INCIDENT, REVIEW, MIGRATION, REGENERATE_PADDING, DEPLOY_SPLITTING,
                         DISGUISED_BURN, GRADUAL_RAMP, TEAM_COLLUSION))
# Background (cloud) agent sessions - the Copilot coding agent, Codex cloud, Claude Code on the web -
# get their next turn when the person comes back to the pull request: pauses x BACKGROUND_PAUSE.
BACKGROUND_SHARE = {WORK: 0.25, MIGRATION: 0.30}
BACKGROUND_PAUSE = 15.0

TOOLS = ("claude-code", "codex", "copilot", "cursor", "kiro")
TOOL_SHARES = (0.40, 0.20, 0.15, 0.15, 0.10)
# Model mix per tool (rows: TOOLS; columns: sonnet, haiku, opus, gpt-5, gpt-5-mini).
TOOL_MODEL_SHARES = np.array([
    [0.62, 0.08, 0.30, 0.00, 0.00],
    [0.00, 0.00, 0.00, 0.85, 0.15],
    [0.45, 0.05, 0.10, 0.30, 0.10],
    [0.40, 0.05, 0.15, 0.30, 0.10],
    [0.75, 0.15, 0.10, 0.00, 0.00],
])
COST_FILLED_SHARE = {"cursor": 0.6}


@dataclass(frozen=True)
class AgentSpec:
    """How sessions of one kind look: turns, calls, pace, repository, context, output, code."""

    family: int  # prompt family of the turns
    alt_family: int  # family of a share of the later turns (-1: none)
    alt_share: float
    turns_mean: float  # user turns a session: 1 + negative binomial (heavy-tailed)
    turns_shape: float  # negative-binomial shape: the smaller, the heavier the tail
    calls_mean: float  # LLM calls a turn: 1 + negative binomial
    calls_shape: float
    gap_median_s: float  # the person's pause before the next turn
    gap_sigma: float
    gap_low_s: float
    gap_high_s: float
    call_median_s: float  # seconds an LLM call takes with its tools
    repo_share: float  # sessions that work in a repository
    context_median: float  # tokens of the first call: system prompt, tool definitions, the task
    fresh_median: float  # tokens each call appends: tool results, the previous answer
    fresh_sigma: float
    output_median: float  # output tokens a call (lognormal, sigma 1: the mean is 1.65x)
    code_share: float  # turns that keep lines
    lines_median: float
    commit_share: float  # of the turns that keep lines, those the agent commits
    tool_rate: float  # tool calls an LLM call


TOOL_RATE = TRACELAB_TOOL_CALLS_PER_STEP
# fields: family, alt family, alt share, turns mean/shape, calls mean/shape, gap median/sigma/low/high (s),
#   call median (s), repo share, context, fresh median/sigma, output, code share, lines median, commit share,
#   tool rate
SPECS: dict[int, AgentSpec] = {
    WORK: AgentSpec(prompts.WORK, -1, 0.0, COPILOT_TURNS_PER_SESSION, 0.8, COPILOT_CALLS_PER_TURN, 1.2,
                    180, 1.1, 15, 7200, 9, 0.97, 22_000, 1_000, 1.0, 320, 0.55, 30, 0.65, TOOL_RATE),
    EXPLORE: AgentSpec(prompts.EXPLORE, -1, 0.0, 3.9, 0.8, 7.5, 1.2, 150, 1.1, 15, 7200, 9, 0.9,
                       22_000, 1_300, 1.0, 380, 0.06, 4, 0.0, 1.4),
    CHAT: AgentSpec(prompts.CHAT, -1, 0.0, 2.0, 1.0, 1.3, 4.0, 90, 1.0, 15, 1800, 7, 0.08,
                    2_500, 500, 0.6, 330, 0.05, 3, 0.0, 0.1),
    INCIDENT: AgentSpec(prompts.INCIDENT, -1, 0.0, 5.0, 0.8, 7.0, 1.2, 60, 1.0, 15, 3600, 8, 0.85,
                        20_000, 1_200, 1.0, 350, 0.35, 8, 0.5, 1.5),
    REVIEW: AgentSpec(prompts.REVIEW, -1, 0.0, 3.2, 1.0, 7.0, 1.2, 150, 1.0, 15, 3600, 8, 1.0,
                      35_000, 1_100, 1.0, 450, 0.04, 2, 0.0, 1.3),
    MIGRATION: AgentSpec(prompts.MIGRATION, -1, 0.0, 6.0, 0.8, 10.0, 1.2, 180, 1.1, 15, 7200, 10, 1.0,
                         24_000, 1_300, 1.0, 350, 0.75, 60, 0.7, 1.4),
    TOKEN_BURN: AgentSpec(prompts.BURN, -1, 0.0, 12.0, 2.0, 4.0, 2.0, 150, 0.8, 20, 900, 25, 0.0,
                          60_000, 25_000, 0.6, 3_000, 0.0, 1, 0.0, 0.0),
    PROMPT_LOOP: AgentSpec(prompts.LOOP, -1, 0.0, 0.0, 1.0, 1.3, 8.0, 0, 0.0, 0, 0, 4, 0.5,
                           15_000, 300, 0.3, 700, 0.0, 1, 0.0, 0.5),
    SNAPSHOT_BURST: AgentSpec(prompts.BURST, prompts.WORK, 0.3, 0.0, 1.0, 8.0, 2.0, 60, 0.7, 5, 300, 9, 0.6,
                              30_000, 5_000, 0.8, 1_500, 0.01, 10, 0.0, 1.0),
    REGENERATE_PADDING: AgentSpec(prompts.WORK, prompts.REGEN, 0.0, COPILOT_TURNS_PER_SESSION, 0.8,
                                  COPILOT_CALLS_PER_TURN, 1.2, 40, 0.8, 8, 600, 9, 1.0,
                                  22_000, 1_000, 1.0, 320, 0.55, 30, 0.65, TOOL_RATE),
    IDLE_AGENT: AgentSpec(prompts.IDLE, -1, 0.0, 0.0, 1.0, 4.5, 10.0, 300, 0.2, 60, 900, 30, 0.2,
                          100_000, 40, 0.3, 25, 0.0, 1, 0.0, 0.3),
    DEPLOY_SPLITTING: AgentSpec(prompts.TINY_EDIT, -1, 0.0, 10.0, 2.0, 3.0, 2.0, 90, 1.0, 20, 900, 8, 1.0,
                                15_000, 800, 0.8, 200, 0.95, 3, 0.95, 1.0),
    DISGUISED_BURN: AgentSpec(prompts.WORK, -1, 0.0, COPILOT_TURNS_PER_SESSION, 0.8, COPILOT_CALLS_PER_TURN, 1.2,
                              180, 1.1, 15, 7200, 9, 1.0, 22_000, 1_000, 1.0, 320, 0.02, 2, 0.0, TOOL_RATE),
    GRADUAL_RAMP: AgentSpec(prompts.EXPLORE, prompts.WORK, 0.5, COPILOT_TURNS_PER_SESSION, 50.0,
                            COPILOT_CALLS_PER_TURN, 50.0, 180, 1.1, 15, 7200, 9, 0.9,
                            22_000, 1_200, 0.6, 350, 0.04, 3, 0.0, TOOL_RATE),
    TEAM_COLLUSION: AgentSpec(prompts.BURST, prompts.WORK, 0.5, 4.0, 1.0, 9.0, 1.5, 120, 1.0, 15, 3600, 9, 1.0,
                              30_000, 3_000, 1.0, 800, 0.01, 3, 0.0, TOOL_RATE),
}

# Legit sessions a week by persona (ORDINARY .. GAMER), before the person's activity multiplier.
WEEKLY_SESSIONS: dict[int, tuple[float, ...]] = {
    WORK: (8.0, 18.0, 0.5, 6.0, 6.0, 2.0, 0.0, 8.0, 8.0),
    EXPLORE: (1.0, 1.5, 8.0, 1.0, 0.8, 0.4, 1.0, 2.0, 1.0),
    CHAT: (1.8, 2.5, 2.0, 2.0, 1.8, 1.2, 2.0, 2.0, 1.8),
    REVIEW: (0.3, 0.5, 0.0, 0.2, 0.3, 0.1, 8.0, 0.3, 0.3),
}
NON_AI_CHANGES_PER_WEEK = (0.8, 0.4, 0.0, 0.6, 0.8, 4.0, 0.0, 0.8, 0.8)
# Tactic sessions in a gaming week: max(1, round(minimum * intensity)) + Poisson(mean * intensity).
TACTIC_SESSIONS = {
    TOKEN_BURN: (2, 2.0), PROMPT_LOOP: (1, 0.5), SNAPSHOT_BURST: (1, 1.0),
    REGENERATE_PADDING: (3, 2.0), IDLE_AGENT: (1, 1.5), DEPLOY_SPLITTING: (2, 1.5),
}
# Approvals ("yes", "do it", "go ahead", "ship it") are 12% of user messages in an analysis of
# 4,656 Amp coding-agent threads (23,262 user messages; amp-analysis-casestudy.vercel.app) and a
# quarter of one developer's 964 prompts (turriate.com, June 2026). At 3.95 turns a session, 12% of
# all turns is 0.16 of the turns after the first. Whoever types at an agent types them: people at
# work, and gamers imitating work; scripts (loops, idle agents, bursts, burns) do not.
APPROVAL_SHARE = 0.16
DISGUISED_VOLUME = (4.0, 6.0)  # x a person's normal agent-work sessions, at intensity 1
RAMP_STEP = 0.45  # extra unshipped sessions per ramp week, x normal agent-work sessions, at intensity 1
COLLUSION_VOLUME = (1.5, 2.5)  # extra burn sessions of each colluder, x normal, at intensity 1
ADOPTION_BOOST = (2.0, 3.0)  # legit sessions x this in the adoption week
MIGRATION_SHARE = 0.05  # eligible user-weeks that start a long migration
MIGRATION_MERGE_DAYS = (7.0, 12.0)  # after the last session; its sessions span at most 2 days


def amplify(factor: np.ndarray | float, intensity: float) -> np.ndarray | float:
    """A multiplier `factor` at intensity 1, 1 at intensity 0, in between linearly."""
    return 1.0 + (np.asarray(factor) - 1.0) * intensity


# ---------------------------------------------------------------------------------------------
# the plan: people, teams and weeks (one random stream, independent of the intensity)


@dataclass
class Plan:
    org: Org
    persona: np.ndarray
    tactic: np.ndarray  # per user, index into TACTICS, -1 when none
    shift_start_h: np.ndarray
    tool: np.ndarray
    activity: np.ndarray
    adoption_boost: np.ndarray
    research_team: int  # -1 when the world is too small
    collusion_team: int
    adoption_week: int  # -1 when the world is too short
    collusion_weeks: np.ndarray
    # the user x week grid (row = user * weeks + week)
    user: np.ndarray
    week: np.ndarray
    present: np.ndarray
    gaming_tactic: np.ndarray
    on_call: np.ndarray
    ramping: np.ndarray
    migration: np.ndarray
    migration_pick: np.ndarray  # picks the migration's repository
    migration_day: np.ndarray  # the weekday its first session may start (0-2)
    ramp_step: np.ndarray
    work_blocked: np.ndarray  # disguised-burn weeks: the person does no real agent work


def plan_world(rng: np.random.Generator, users: int, weeks: int) -> Plan:
    """Teams (a research team, a colluding team), personas, tactics, and the weeks of each."""
    org = build_org(rng, users)
    team_size = np.bincount(org.user_team)
    research = collusion = -1
    if len(team_size) >= 3 and users >= 20:
        collusion = int(rng.choice(np.flatnonzero(team_size <= 6)))
        research = int(rng.choice(np.flatnonzero(np.arange(len(team_size)) != collusion)))
    team = org.user_team
    free = np.flatnonzero((team != research) & (team != collusion))
    n_free = len(free)
    if users >= 40:
        gamer_count = max(len(INDIVIDUAL_TACTICS), round(n_free * rng.uniform(0.07, 0.10)))
    elif n_free >= 10:
        gamer_count = max(1, round(n_free * 0.1))
    else:
        gamer_count = min(n_free, 1)
    gamer_count = min(gamer_count, max(n_free - 1, 0)) if n_free > 1 else gamer_count
    legit_count = n_free - gamer_count
    legit = rng.choice(len(DRAWN_PERSONA_SHARES), size=legit_count, p=DRAWN_PERSONA_SHARES / DRAWN_PERSONA_SHARES.sum())
    forced = min(legit_count, len(DRAWN_PERSONA_SHARES))
    legit[:forced] = np.arange(forced)
    drawn = np.concatenate([legit, np.full(gamer_count, GAMER)])[rng.permutation(n_free)]
    persona = np.full(users, ORDINARY)
    persona[free] = drawn
    persona[team == research] = RESEARCHER
    persona[team == collusion] = GAMER
    tactic = np.full(users, -1)
    gamers = free[drawn == GAMER]
    tactic[gamers] = rng.permutation(len(INDIVIDUAL_TACTICS))[np.arange(len(gamers)) % len(INDIVIDUAL_TACTICS)]
    tactic[team == collusion] = COLLUSION_TACTIC

    hire_week = np.where(persona == NEW_HIRE, rng.integers(0, max(1, weeks - 1), users), 0)
    ramp_weeks = rng.integers(2, 4, users)
    on_call_offset = rng.integers(0, 3, users)
    shift_start_h = rng.choice(SHIFT_STARTS, size=users, p=SHIFT_SHARES) + rng.uniform(0, 1, users)
    tool = rng.choice(len(TOOLS), size=users, p=TOOL_SHARES)
    activity = np.clip(np.exp(rng.normal(0, 0.3, users)), 0.6, 1.7)
    adoption_boost = rng.uniform(*ADOPTION_BOOST, users)

    user = np.repeat(np.arange(users), weeks)
    week = np.tile(np.arange(weeks), users)
    rows = users * weeks
    vacation_week = np.where((rng.random(users) < 0.3) & (weeks >= 4), rng.integers(0, weeks, users), -1)
    present = (week != vacation_week[user]) & (week >= hire_week[user])
    grid_persona = persona[user]
    on_call = (grid_persona == ON_CALL) & ((week + on_call_offset[user]) % 3 == 0)
    ramping = (grid_persona == NEW_HIRE) & (week < hire_week[user] + ramp_weeks[user])

    # Gaming weeks: a random 30-70% of an individual gamer's present weeks, never all of them;
    # gradual_ramp games every week from its start; the colluding team games together in 1-2 weeks.
    order = np.lexsort((rng.random(rows), ~present, user))
    rank = np.empty(rows, dtype=np.int64)
    rank[order] = index_within(np.full(users, weeks))
    present_weeks = np.bincount(user[present], minlength=users)
    gaming_weeks = np.maximum(np.rint(present_weeks * rng.uniform(0.3, 0.7, users)).astype(np.int64), 1)
    gaming_weeks = np.minimum(gaming_weeks, np.maximum(present_weeks - 1, 0 if weeks > 1 else 1))
    user_tactic = tactic[user]
    ramp_start = 1 if weeks >= 3 else 0
    collusion_weeks = np.sort(rng.choice(weeks, size=2 if weeks >= 4 else 1, replace=False))
    individual = (user_tactic >= 0) & (user_tactic != RAMP_TACTIC) & (user_tactic != COLLUSION_TACTIC)
    gaming = present & (
        (individual & (rank < gaming_weeks[user]))
        | ((user_tactic == RAMP_TACTIC) & (week >= ramp_start))
        | ((user_tactic == COLLUSION_TACTIC) & np.isin(week, collusion_weeks)))
    gaming_tactic = np.where(gaming, user_tactic, -1)
    ramp_step = np.where(gaming & (user_tactic == RAMP_TACTIC), week - ramp_start, 0)
    adoption_week = int(rng.integers(1, weeks - 1)) if weeks >= 3 else -1

    # Long migrations: some user-weeks of people who ship start one whose change merges 7-14 days
    # after its last session (so only weeks at least three before the end).
    eligible = present & ~ramping & (gaming_tactic < 0) & (week <= weeks - 3) & np.isin(
        grid_persona, (ORDINARY, HEAVY, NEW_HIRE, ON_CALL, MANUAL, RESEARCHER, GAMER))
    migration = eligible & (rng.random(rows) < MIGRATION_SHARE)
    if eligible.any() and not migration.any():
        migration[rng.choice(np.flatnonzero(eligible))] = True
    return Plan(
        org=org, persona=persona, tactic=tactic, shift_start_h=shift_start_h, tool=tool, activity=activity,
        adoption_boost=adoption_boost, research_team=research, collusion_team=collusion, adoption_week=adoption_week,
        collusion_weeks=collusion_weeks, user=user, week=week, present=present, gaming_tactic=gaming_tactic,
        on_call=on_call, ramping=ramping, migration=migration, migration_pick=rng.random(rows),
        migration_day=rng.integers(0, 3, rows), ramp_step=ramp_step,
        work_blocked=gaming_tactic == TACTICS.index("disguised_burn"),
    )


# ---------------------------------------------------------------------------------------------
# sessions and turns


class AgenticBuilder:
    """Draws the sessions, turns and calls of one world; `rng` is passed per random stream."""

    def __init__(self, plan: Plan, start_ms: int, weeks: int, intensity: float) -> None:
        self.plan = plan
        self.org = plan.org
        self.start_ms = start_ms
        self.end_ms = start_ms + weeks * WEEK
        self.weeks = weeks
        self.intensity = intensity

    def normal_work(self) -> np.ndarray:
        """An ordinary person's agent-work sessions a week, scaled by the person's activity (grid)."""
        plan = self.plan
        return WEEKLY_SESSIONS[WORK][ORDINARY] * plan.activity[plan.user] * plan.present

    def legit_counts(self, rng: np.random.Generator) -> dict[int, np.ndarray]:
        plan = self.plan
        persona = plan.persona[plan.user]
        scale = plan.activity[plan.user] * plan.present
        scale = scale * np.where(plan.week == plan.adoption_week, plan.adoption_boost[plan.user], 1.0)
        work = np.asarray(WEEKLY_SESSIONS[WORK])[persona] * np.where(plan.on_call, 0.6, 1.0)
        work = np.where(plan.ramping | plan.work_blocked, 0.0, work)
        explore = np.where(plan.ramping, 7.0, np.asarray(WEEKLY_SESSIONS[EXPLORE])[persona])
        return {
            WORK: rng.poisson(work * scale),
            EXPLORE: rng.poisson(explore * scale),
            CHAT: rng.poisson(np.asarray(WEEKLY_SESSIONS[CHAT])[persona] * scale),
            INCIDENT: rng.poisson(np.where(plan.on_call, 5.0, 0.03) * plan.activity[plan.user] * plan.present),
            REVIEW: rng.poisson(np.asarray(WEEKLY_SESSIONS[REVIEW])[persona] * scale),
            MIGRATION: np.where(plan.migration, 2 + rng.poisson(1.0, len(plan.user)), 0),
        }

    def gaming_counts(self, rng: np.random.Generator) -> dict[int, np.ndarray]:
        plan, intensity = self.plan, self.intensity
        rows = len(plan.user)
        normal = self.normal_work()
        counts: dict[int, np.ndarray] = {}
        for kind in TACTIC_KINDS:
            planned = plan.gaming_tactic == kind - len(LEGIT_KINDS)
            if kind == DISGUISED_BURN:  # 4-6x a normal week's agent work (their real work stops)
                mean = normal * amplify(rng.uniform(*DISGUISED_VOLUME, rows), intensity)
                drawn = np.maximum(rng.poisson(mean), 2)
            elif kind == GRADUAL_RAMP:  # grows steadily week by week, never a burst
                mean = normal * RAMP_STEP * (plan.ramp_step + 1) * intensity
                drawn = np.maximum(np.rint(mean + rng.normal(0, 0.5, rows)), 1).astype(np.int64)
            elif kind == TEAM_COLLUSION:
                drawn = np.maximum(rng.poisson(normal * rng.uniform(*COLLUSION_VOLUME, rows) * intensity), 1)
            else:
                minimum, mean = TACTIC_SESSIONS[kind]
                drawn = max(1, round(minimum * intensity)) + rng.poisson(mean * intensity, rows)
            counts[kind] = np.where(planned, drawn, 0)
        return counts

    def sessions_for(self, rng: np.random.Generator, kind: int, user_week: np.ndarray) -> Table:
        """One session per entry of `user_week`: start, repository, client, model and token shape."""
        plan, org, spec, intensity = self.plan, self.org, SPECS[kind], self.intensity
        n = len(user_week)
        user = plan.user[user_week]
        persona = plan.persona[user]
        heavy = persona == HEAVY
        week_ms = self.start_ms + plan.week[user_week] * WEEK
        cutoff = np.full(n, self.end_ms, dtype=np.int64)

        day = rng.integers(0, 5, n)
        hour = plan.shift_start_h[user] + rng.uniform(0, SHIFT_HOURS - 0.5, n)
        duration_h = np.zeros(n)
        interval_s = np.zeros(n)
        if kind == INCIDENT:  # pages come at any hour, weekends included
            day, hour = rng.integers(0, 7, n), rng.uniform(0, 24, n)
        elif kind == PROMPT_LOOP:  # a script driving a headless agent, started at any hour
            hour = rng.uniform(0, 24, n)
            duration_h = rng.uniform(2, 8, n) * intensity
            interval_s = rng.choice(np.array([20.0, 30.0, 45.0, 60.0, 90.0]), n)
        elif kind == IDLE_AGENT:  # an agent kept "working" for hours
            duration_h = rng.uniform(1, 4, n) * (1 + intensity) / 2
        elif kind == MIGRATION:  # a migration's sessions fall on two consecutive days
            day = plan.migration_day[user_week] + rng.integers(0, 2, n)
        elif kind == SNAPSHOT_BURST:  # parallel agents in the hours before Friday 18:00 UTC
            day, hour = np.full(n, 4), 18 - rng.uniform(1, 6, n)
            duration_h = rng.uniform(1, 3, n) * (1 + intensity) / 2
            cutoff = week_ms + SNAPSHOT_OFFSET - MINUTE
        start = week_ms + day * DAY + (hour * HOUR).astype(np.int64)

        team = org.user_team[user]
        own_repo = org.team_repo_first[team] + (rng.random(n) * org.team_repo_count[team]).astype(np.int64)
        shared_repo = org.shared_repo_first + rng.integers(0, len(SHARED_REPOS), n)
        own_only = (team == plan.research_team) | (kind in (REVIEW, MIGRATION, DISGUISED_BURN, TEAM_COLLUSION))
        repo = np.where((rng.random(n) < 0.88) | own_only, own_repo, shared_repo)
        if kind == MIGRATION:  # one repository per migration
            pick = plan.migration_pick[user_week] * org.team_repo_count[team]
            repo = org.team_repo_first[team] + pick.astype(np.int64)
        repo = np.where(rng.random(n) < spec.repo_share, repo, -1)

        tool = np.where(rng.random(n) < 0.8, plan.tool[user], rng.integers(0, len(TOOLS), n))
        model_cdf = np.cumsum(TOOL_MODEL_SHARES, axis=1)[tool]
        model = np.minimum((rng.random(n)[:, None] > model_cdf).sum(axis=1), GPT5_MINI)
        if kind in (TOKEN_BURN, SNAPSHOT_BURST, TEAM_COLLUSION):  # spend where it counts
            model = np.where(rng.random(n) < 0.6, OPUS, model)
        if kind == IDLE_AGENT:
            model = np.where(model >= GPT5, SONNET, model)

        # Turns: heavy-tailed for people; from the running time for scripts and idle agents.
        mean = spec.turns_mean * np.where(heavy, 1.2, 1.0)
        if kind in (TOKEN_BURN, DEPLOY_SPLITTING):  # longer sessions the harder they game
            mean = 1 + (spec.turns_mean - 1) * intensity
        if kind == PROMPT_LOOP:
            turns = (duration_h * 3600 / interval_s).astype(np.int64)
        elif kind == IDLE_AGENT:
            turns = (duration_h * 3600 / (spec.gap_median_s + spec.calls_mean * spec.call_median_s)).astype(np.int64)
        elif kind == SNAPSHOT_BURST:
            window_s = np.minimum((cutoff - start) / SECOND, duration_h * 3600)
            turns = (window_s / (spec.gap_median_s + spec.calls_mean * spec.call_median_s)).astype(np.int64)
        elif kind == GRADUAL_RAMP:  # steady, same-sized sessions: only their number grows
            turns = np.full(n, round(spec.turns_mean))
        else:
            extra = np.maximum(mean - 1, 1e-9)
            turns = 1 + rng.negative_binomial(spec.turns_shape, spec.turns_shape / (spec.turns_shape + extra), n)
        alt_share = np.full(n, spec.alt_share)
        if kind == REGENERATE_PADDING:  # the real turns, then 1.5-3x as many "try again" turns
            padding = rng.uniform(1.5, 3.0, n) * intensity
            alt_share = padding / (1 + padding)
            turns = np.rint(turns * (1 + padding)).astype(np.int64)
        turns = np.maximum(turns, 1)

        calls_mean = np.full(n, spec.calls_mean)
        fresh = spec.fresh_median * np.exp(rng.normal(0, 0.3, n))
        context = spec.context_median * np.where(heavy, 1.3, 1.0) * np.exp(rng.normal(0, 0.3, n))
        if kind == TOKEN_BURN:  # pastes less at lower intensity
            fresh = fresh * (0.4 + 0.6 * intensity)
        elif kind in (SNAPSHOT_BURST, TEAM_COLLUSION):
            calls_mean = calls_mean * (0.5 + 0.5 * intensity)
        background = rng.random(n) < BACKGROUND_SHARE.get(kind, 0.0)
        ships = ~np.isin(persona, (EXPLORER, REVIEWER)) & ~plan.ramping[user_week]
        if kind >= len(LEGIT_KINDS):
            ships = np.full(n, kind in (REGENERATE_PADDING, DEPLOY_SPLITTING))
        designated = np.zeros(n, dtype=bool)
        if kind == DISGUISED_BURN:  # the week's first burn session ships one tiny change
            designated = np.r_[True, user_week[1:] != user_week[:-1]]
        return Table({
            "user": user, "user_week": user_week, "kind": np.full(n, kind), "start_ms": start, "cutoff_ms": cutoff,
            "interval_s": interval_s, "repo": repo, "tool": tool, "model": model, "heavy": heavy, "ships": ships,
            "designated": designated,
            "hashed": rng.random(n) < 0.03,  # a privacy setting: prompts arrive as hashes only
            "key": rng.integers(0, 2**40, n),
            "turns": turns, "alt_share": alt_share, "calls_mean": calls_mean,
            "pause": np.where(background, BACKGROUND_PAUSE, 1.0),
            "context": np.minimum(context, 0.6 * COMPACT_AT), "fresh": fresh,
            "output": spec.output_median * np.exp(rng.normal(0, 0.2, n)),
            "ttl_ms": rng.choice(np.array(CACHE_TTLS_MS), n, p=CACHE_TTL_SHARES)
            if kind not in (IDLE_AGENT, PROMPT_LOOP) else np.full(n, HOUR),
        })

    def turns_for(self, rng: np.random.Generator, kind: int, sessions: Table) -> Table:
        """The user turns (invocations) of the sessions of one kind, in session order."""
        spec = SPECS[kind]
        count = sessions["turns"]
        session = np.repeat(np.arange(len(sessions)), count)
        position = index_within(count)
        total = len(session)
        calls_mean = sessions["calls_mean"][session]
        calls = 1 + rng.negative_binomial(spec.calls_shape, spec.calls_shape / (spec.calls_shape + calls_mean - 1),
                                          total)
        if kind == PROMPT_LOOP:  # a headless one-shot on the script's clock
            calls = np.minimum(calls, 2)
            gap_s = sessions["interval_s"][session] + rng.uniform(-1, 1, total)
        else:
            gap_s = truncated_lognormal(rng, spec.gap_median_s, spec.gap_sigma, spec.gap_low_s, spec.gap_high_s, total)
            gap_s = np.minimum(gap_s * sessions["pause"][session], 8 * 3600)
        gap_s[position == 0] = 0

        family = np.full(total, spec.family)
        if spec.alt_family >= 0:
            alt = (position > 0) & (rng.random(total) < sessions["alt_share"][session])
            family = np.where(alt, spec.alt_family, family)
        padding = family == prompts.REGEN
        if kind in TYPED_KINDS:
            approval = (position > 0) & ~padding & (rng.random(total) < APPROVAL_SHARE)
            family = np.where(approval, prompts.APPROVAL, family)
        repo = sessions["repo"][session]
        has_repo = (repo >= 0) & (rng.random(total) < 0.95)
        code_share = spec.code_share * np.where(sessions["heavy"][session], 1.15, 1.0)
        code = has_repo & ~padding & (rng.random(total) < code_share)
        lines = np.zeros(total, dtype=np.int64)
        if kind in (DEPLOY_SPLITTING, DISGUISED_BURN):
            lines[code] = rng.integers(1, 6 if kind == DEPLOY_SPLITTING else 3, int(code.sum()))
        else:
            lines[code] = np.rint(truncated_lognormal(rng, spec.lines_median, 1.0, 1, 2_000, int(code.sum())))
        commit = code & (rng.random(total) < spec.commit_share) & sessions["ships"][session]
        if kind == DISGUISED_BURN:  # the designated session's last turn keeps and commits a tiny edit
            last = np.r_[session[1:] != session[:-1], True] & sessions["designated"][session] & (repo >= 0)
            has_repo |= last
            lines[last] = rng.integers(1, 6, int(last.sum()))
            commit = last
        tool_calls = rng.poisson(spec.tool_rate * calls)
        return Table({
            "session": session, "position": position, "calls": calls.astype(np.int64), "gap_s": gap_s,
            "family": family, "has_repo": has_repo, "lines": lines, "tool_calls": tool_calls.astype(np.int64),
            "commit": commit,
        })


# ---------------------------------------------------------------------------------------------
# model calls: time, context, cache


@dataclass
class Part:
    """Sessions, turns (with their text and commit shas) and calls drawn from one random stream."""

    sessions: Table
    turns: Table
    text: pl.Series
    calls: Table


def build_calls(rng: np.random.Generator, sessions: Table, turns: Table, prompt_length: np.ndarray) -> Table:
    """The LLM calls of every turn: when, which model, and the tokens of a growing cached context.

    Each call sends the whole conversation: the first call's context (system prompt, tools, task),
    then every earlier call's appended tokens (tool results, answers); at COMPACT_AT the agent
    compacts it back to its start. A call reads from cache what the previous call sent, unless
    the cache went cold (the session's first call, after a compaction, or a pause longer than
    the cache lifetime), when only the shared system prompt may still be cached. Claude models
    write the uncached part to the cache; OpenAI models report it as input.
    """
    count = turns["calls"]
    turn = np.repeat(np.arange(len(turns), dtype=np.int64), count)
    session = turns["session"][turn]
    total = len(turn)
    first_of_turn = index_within(count) == 0
    session_calls = np.bincount(session, minlength=len(sessions))
    step = index_within(session_calls[session_calls > 0])

    duration_s = truncated_lognormal(rng, 9.0, 0.9, 0.5, 600.0, total)
    loop = sessions["interval_s"][session] > 0
    duration_s[loop] = rng.uniform(1, 7, int(loop.sum()))
    idle = sessions["kind"][session] == IDLE_AGENT
    duration_s[idle] = rng.uniform(15, 45, int(idle.sum()))

    fresh = sessions["fresh"][session] * np.exp(rng.normal(0, 1.0, total) * np.where(idle | loop, 0.3, 1.0))
    fresh[first_of_turn] += np.ceil(prompt_length[turn[first_of_turn]] / 4)
    cumulative = segment_cumsum(fresh, session_calls[session_calls > 0])
    base = sessions["context"][session]
    room = np.maximum(COMPACT_AT - base, 10_000)
    epoch = np.floor(cumulative / room)
    context = base + cumulative - epoch * room
    del cumulative, room
    previous = np.r_[0.0, context[:-1]]
    compacted = (step > 0) & (epoch != np.r_[-1.0, epoch[:-1]])
    del epoch
    paused = first_of_turn & (turns["gap_s"][turn] * SECOND > sessions["ttl_ms"][session])
    cold = (step == 0) | compacted | paused | (sessions["kind"][session] == TOKEN_BURN)
    del compacted, paused
    shared = np.where(rng.random(total) < 0.5, base * rng.uniform(0.6, 0.95, total), 0.0)
    cache_read = np.rint(np.where(cold, shared, previous)).astype(np.int64)
    del shared, previous
    context = np.rint(context).astype(np.int64)
    uncached = context - cache_read

    model = call_models(rng, sessions["model"].astype(np.int8)[session], total)
    claude = (model <= OPUS) | (model == UNPRICED)
    cache_write = np.where(claude, np.rint(uncached * rng.uniform(0.9, 1.0, total)), 0).astype(np.int64)
    output = np.minimum(np.rint(sessions["output"][session] * np.exp(rng.normal(0, 1.0, total))) + 1,
                        32_000).astype(np.int64)
    tool = sessions["tool"][session]
    cost_filled = rng.random(total) < np.where(tool == TOOLS.index("cursor"), COST_FILLED_SHARE["cursor"],
                                               COST_FILLED_ELSEWHERE)
    return Table({
        "turn": turn, "session": session, "duration_s": duration_s, "first_of_turn": first_of_turn,
        "model": model, "input_tokens": uncached - cache_write, "output_tokens": output,
        "cache_read_tokens": cache_read, "cache_write_tokens": cache_write, "cost_filled": cost_filled,
    })


def build_part(rng: np.random.Generator, builder: AgenticBuilder, counts: dict[int, np.ndarray]) -> Part | None:
    """Sessions and turns kind by kind, prompt text, calls, then everything placed in time."""
    session_parts: list[Table] = []
    turn_parts: list[Table] = []
    offset = 0
    for kind in sorted(counts):
        user_week = np.repeat(np.arange(len(builder.plan.user)), counts[kind])
        if len(user_week) == 0:
            continue
        sessions = builder.sessions_for(rng, kind, user_week)
        turn_table = builder.turns_for(rng, kind, sessions)
        turn_table["session"] = turn_table["session"] + offset
        offset += len(sessions)
        session_parts.append(sessions)
        turn_parts.append(turn_table)
    if not session_parts:
        return None
    sessions = Table.concat(session_parts)
    turns = Table.concat(turn_parts)

    renderer = prompts.PromptRenderer(rng)
    turn_repo = np.where(turns["has_repo"], sessions["repo"][turns["session"]], -1)
    language = np.where(turn_repo >= 0, builder.org.repo_language[np.maximum(turn_repo, 0)],
                        rng.integers(0, len(prompts.LANGUAGES), len(turns)))
    text = renderer.render(turns["family"], language, sessions["key"][turns["session"]], turns["position"])
    turns["repo"] = turn_repo
    turns["length"] = text.str.len_chars().to_numpy().astype(np.int64)
    calls = build_calls(rng, sessions, turns, turns["length"])

    # Time: a turn lasts as long as its calls; the next starts after the person's pause (a script's
    # turns start on its clock). Calls follow each other within their turn.
    first_delay_s = rng.uniform(0.3, 3.0, len(turns))
    turn_duration_s = np.bincount(calls["turn"], weights=calls["duration_s"], minlength=len(turns)) + first_delay_s
    per_session = np.bincount(turns["session"], minlength=len(sessions))
    per_session = per_session[per_session > 0]
    interval = sessions["interval_s"][turns["session"]]
    offset_s = np.where(
        interval > 0, turns["position"] * interval + turns["gap_s"] - interval,
        segment_cumsum(turn_duration_s, per_session) - turn_duration_s + segment_cumsum(turns["gap_s"], per_session))
    offset_s[turns["position"] == 0] = 0
    turns["ts_ms"] = sessions["start_ms"][turns["session"]] + np.rint(offset_s * SECOND).astype(np.int64)
    call_offset_s = segment_cumsum(calls["duration_s"], turns["calls"]) - calls["duration_s"]
    calls["ts_ms"] = turns["ts_ms"][calls["turn"]] + np.rint(
        (call_offset_s + first_delay_s[calls["turn"]]) * SECOND).astype(np.int64)

    # Drop what falls after a session's cutoff (the snapshot, the end of the world).
    keep_turn = turns["ts_ms"] < sessions["cutoff_ms"][turns["session"]]
    keep_call = keep_turn[calls["turn"]] & (calls["ts_ms"] < sessions["cutoff_ms"][calls["session"]])
    new_turn = np.cumsum(keep_turn) - 1
    turns = turns.take(np.flatnonzero(keep_turn))
    text = text.filter(pl.Series(keep_turn))
    calls = calls.take(np.flatnonzero(keep_call))
    calls["turn"] = new_turn[calls["turn"]]
    turns["sha"] = np.full(len(turns), "", dtype="<U40")  # "" when the turn made no commit
    commit_rows = np.flatnonzero(turns["commit"])
    turns["sha"][commit_rows] = random_shas(rng, len(commit_rows))
    return Part(sessions=sessions, turns=turns, text=text, calls=calls)


def merge_parts(parts: list[Part]) -> Part:
    """One Part of several, session and turn indices shifted."""
    session_offset = turn_offset = 0
    turn_tables, call_tables = [], []
    for part in parts:
        turn_table = part.turns.take(np.arange(len(part.turns)))
        turn_table["session"] = turn_table["session"] + session_offset
        call_table = part.calls.take(np.arange(len(part.calls)))
        call_table["session"] = call_table["session"] + session_offset
        call_table["turn"] = call_table["turn"] + turn_offset
        session_offset += len(part.sessions)
        turn_offset += len(part.turns)
        turn_tables.append(turn_table)
        call_tables.append(call_table)
    return Part(sessions=Table.concat([p.sessions for p in parts]), turns=Table.concat(turn_tables),
                text=pl.concat([p.text for p in parts]), calls=Table.concat(call_tables))


# ---------------------------------------------------------------------------------------------
# changes, reviews and deployments

CHANGE_SCHEMA = {
    "origin": pl.String, "author": pl.Int64, "repo": pl.Int64, "anchor_ms": pl.Int64, "merged_ms": pl.Int64,
    "lines_added": pl.Int64, "lines_deleted": pl.Int64, "sessions": pl.List(pl.Int64),
    "commit_turns": pl.List(pl.Int64), "trailer": pl.Boolean, "squash": pl.Boolean, "human_commits": pl.Int64,
}


def session_summary(part: Part, plan: Plan, session_offset: int, turn_offset: int) -> pl.DataFrame:
    """Per session of a part: who, where, when it ended, lines kept, and its commit turns (global indices)."""
    sessions, turns, calls = part.sessions, part.turns, part.calls
    n = len(sessions)
    end = np.zeros(n, dtype=np.int64)
    np.maximum.at(end, turns["session"], turns["ts_ms"])
    np.maximum.at(end, calls["session"], calls["ts_ms"])
    lines = np.bincount(turns["session"], weights=turns["lines"], minlength=n).astype(np.int64)
    commits = np.bincount(turns["session"], weights=turns["commit"], minlength=n).astype(np.int64)
    commit_frame = pl.DataFrame({"session": turns["session"][turns["commit"]] + session_offset,
                                 "turn": np.flatnonzero(turns["commit"]) + turn_offset},
                                schema={"session": pl.Int64, "turn": pl.Int64})
    commit_lists = commit_frame.group_by("session").agg(commit_turns=pl.col("turn").sort())
    return pl.DataFrame({
        "session": np.arange(n, dtype=np.int64) + session_offset, "kind": sessions["kind"],
        "user": sessions["user"], "team": plan.org.user_team[sessions["user"]], "user_week": sessions["user_week"],
        "repo": sessions["repo"], "start_ms": sessions["start_ms"], "end_ms": end, "lines": lines,
        "commits": commits, "ships": sessions["ships"], "persona": plan.persona[sessions["user"]],
    }).join(commit_lists, on="session", how="left").with_columns(
        pl.col("commit_turns").fill_null(pl.lit([], dtype=pl.List(pl.Int64))))


def _change_frame(origin: str | np.ndarray, frame: pl.DataFrame, merged_ms: np.ndarray, lines_added: np.ndarray,
                  lines_deleted: np.ndarray, trailer: np.ndarray, squash: np.ndarray) -> pl.DataFrame:
    """Changes in CHANGE_SCHEMA from a frame with author, repo, anchor_ms, sessions, commit_turns."""
    n = frame.height
    return frame.select("author", "repo", "anchor_ms", "sessions", "commit_turns").with_columns(
        origin=pl.Series(np.broadcast_to(np.asarray(origin), n).astype(str)),
        merged_ms=pl.Series(merged_ms.astype(np.int64)),
        lines_added=pl.Series(lines_added.astype(np.int64)),
        lines_deleted=pl.Series(lines_deleted.astype(np.int64)),
        trailer=pl.Series(trailer.astype(bool)), squash=pl.Series(squash.astype(bool)),
        human_commits=pl.lit(0, dtype=pl.Int64),
    ).select(list(CHANGE_SCHEMA)).cast(CHANGE_SCHEMA)


def _deleted(rng: np.random.Generator, added: np.ndarray) -> np.ndarray:
    return np.rint(added * rng.beta(1.2, 3.0, len(added))).astype(np.int64)


EXPLODE_TURNS = pl.col("commit_turns").list.explode(keep_nulls=False, empty_as_null=False)


def legit_changes(rng: np.random.Generator, builder: AgenticBuilder, summary: pl.DataFrame) -> pl.DataFrame:
    """Changes fed by legitimate sessions (tasks of 1-3 work sessions, hotfixes, drafts, migrations)
    and changes written without AI."""
    plan = builder.plan
    frames = []

    # A) Agent work: the shipping sessions of a person in one repository group into tasks of 1-3
    # sessions (a new task starts with probability 0.6 at each session, and always after a day
    # without one or after three sessions); each task is one change.
    candidates = summary.filter((pl.col("kind") == WORK) & pl.col("ships") & (pl.col("repo") >= 0)
                                & (pl.col("lines") > 0)).sort("user", "repo", "start_ms", "session")
    candidates = candidates.filter(pl.Series(rng.random(candidates.height) < 0.9))  # some work is abandoned
    user, repo = candidates["user"].to_numpy(), candidates["repo"].to_numpy()
    start, end = candidates["start_ms"].to_numpy(), candidates["end_ms"].to_numpy()
    same = (user[1:] == user[:-1]) & (repo[1:] == repo[:-1]) & (start[1:] - end[:-1] < DAY)
    new_task = np.r_[True, ~same | (rng.random(len(same)) < 0.6)][: candidates.height]
    position = index_within(np.bincount(np.cumsum(new_task) - 1)) if candidates.height else np.zeros(0, np.int64)
    new_task |= position % 3 == 0
    tasks = candidates.with_columns(task=pl.Series(np.cumsum(new_task))).group_by("task", maintain_order=True).agg(
        author=pl.col("user").first(), repo=pl.col("repo").first(), anchor_ms=pl.col("end_ms").max(),
        lines=pl.col("lines").sum(), sessions=pl.col("session"), commit_turns=EXPLODE_TURNS)
    n = tasks.height
    delay = truncated_lognormal(rng, 16.0, 1.0, 0.5, 72.0, n) * HOUR
    merged = np.where(rng.random(n) < 0.05, -1, tasks["anchor_ms"].to_numpy() + delay.astype(np.int64))
    added = np.maximum(np.rint(truncated_lognormal(rng, 120, 1.0, 3, 3_000, n)), tasks["lines"].to_numpy())
    frames.append(_change_frame("ai", tasks, merged, added, _deleted(rng, added),
                                rng.random(n) < TRAILER_SHARE, rng.random(n) < SQUASH_SHARE))

    # B) Hotfixes from incident sessions that kept code.
    hot = summary.filter((pl.col("kind") == INCIDENT) & pl.col("ships") & (pl.col("repo") >= 0)
                         & (pl.col("lines") > 0)).with_columns(
        author=pl.col("user"), anchor_ms=pl.col("end_ms"), sessions=pl.concat_list("session"))
    n = hot.height
    merged = hot["anchor_ms"].to_numpy() + rng.integers(10 * MINUTE, 60 * MINUTE, n)
    added = np.maximum(np.rint(truncated_lognormal(rng, 8, 0.7, 1, 80, n)), hot["lines"].to_numpy())
    frames.append(_change_frame("hotfix", hot, merged, added, _deleted(rng, added),
                                rng.random(n) < TRAILER_SHARE, rng.random(n) < SQUASH_SHARE))

    # C) Drafts: a few exploration sessions open a change that is never merged.
    drafts = summary.filter((pl.col("kind") == EXPLORE) & (pl.col("repo") >= 0) & (pl.col("lines") > 0)
                            & (pl.col("persona") != REVIEWER))
    drafts = drafts.filter(pl.Series(rng.random(drafts.height) < 0.10)).with_columns(
        author=pl.col("user"), anchor_ms=pl.col("end_ms"), sessions=pl.concat_list("session"))
    n = drafts.height
    added = np.maximum(np.rint(truncated_lognormal(rng, 60, 1.0, 3, 1_500, n)), drafts["lines"].to_numpy())
    frames.append(_change_frame("draft", drafts, np.full(n, -1), added, _deleted(rng, added),
                                rng.random(n) < TRAILER_SHARE, np.zeros(n, dtype=bool)))

    # D) Long migrations: all the migration sessions of a user-week feed one big change that
    # merges 7-14 days after the last of them.
    migrations = summary.filter(pl.col("kind") == MIGRATION).sort("session").group_by(
        "user_week", maintain_order=True).agg(
        author=pl.col("user").first(), repo=pl.col("repo").max(), anchor_ms=pl.col("end_ms").max(),
        lines=pl.col("lines").sum(), sessions=pl.col("session"), commit_turns=EXPLODE_TURNS
    ).filter(pl.col("repo") >= 0)
    n = migrations.height
    merged = migrations["anchor_ms"].to_numpy() + (rng.uniform(*MIGRATION_MERGE_DAYS, n) * DAY).astype(np.int64)
    added = np.maximum(np.rint(truncated_lognormal(rng, 1_500, 0.7, 200, 8_000, n)), migrations["lines"].to_numpy())
    frames.append(_change_frame("migration", migrations, merged, added, _deleted(rng, added),
                                rng.random(n) < TRAILER_SHARE, rng.random(n) < SQUASH_SHARE))

    # G) Changes written without AI, by everyone at their own pace.
    persona = plan.persona[plan.user]
    manual_counts = rng.poisson(np.asarray(NON_AI_CHANGES_PER_WEEK)[persona] * plan.present * ~plan.ramping
                                * ~plan.work_blocked)
    manual_week = np.repeat(np.arange(len(plan.user)), manual_counts)
    n = len(manual_week)
    manual_user = plan.user[manual_week]
    team = builder.org.user_team[manual_user]
    repo = builder.org.team_repo_first[team] + (rng.random(n) * builder.org.team_repo_count[team]).astype(np.int64)
    hour = plan.shift_start_h[manual_user] + rng.uniform(0, SHIFT_HOURS, n)
    anchor = builder.start_ms + plan.week[manual_week] * WEEK + rng.integers(0, 5, n) * DAY + (hour * HOUR).astype(
        np.int64)
    manual = pl.DataFrame({"author": manual_user, "repo": repo, "anchor_ms": anchor,
                           "sessions": pl.Series([[]] * n, dtype=pl.List(pl.Int64)),
                           "commit_turns": pl.Series([[]] * n, dtype=pl.List(pl.Int64))})
    added = np.rint(truncated_lognormal(rng, 60, 1.1, 1, 3_000, n))
    frames.append(_change_frame("manual", manual, np.where(rng.random(n) < 0.04, -1, anchor), added,
                                _deleted(rng, added), np.zeros(n, dtype=bool), rng.random(n) < SQUASH_SHARE))
    return _finish_changes(rng, builder, pl.concat(frames))


def gaming_changes(rng: np.random.Generator, builder: AgenticBuilder, summary: pl.DataFrame,
                   turns: Table, session_offset: int, turn_offset: int) -> pl.DataFrame:
    """Changes fed by gaming sessions: padded real work, split tiny changes, the disguised burner's cover."""
    frames = []
    padded = summary.filter((pl.col("kind") == REGENERATE_PADDING) & (pl.col("repo") >= 0) & (pl.col("lines") > 0)
                            ).with_columns(author=pl.col("user"), anchor_ms=pl.col("end_ms"),
                                           sessions=pl.concat_list("session"))
    n = padded.height
    delay = truncated_lognormal(rng, 16.0, 1.0, 0.5, 72.0, n) * HOUR
    added = np.maximum(np.rint(truncated_lognormal(rng, 120, 1.0, 3, 3_000, n)), padded["lines"].to_numpy())
    frames.append(_change_frame("ai", padded, padded["anchor_ms"].to_numpy() + delay.astype(np.int64), added,
                                _deleted(rng, added), rng.random(n) < TRAILER_SHARE, rng.random(n) < SQUASH_SHARE))

    # Every committed turn of a splitting session, and the disguised burner's weekly commit, is a
    # tiny change of its own (split ones deploy alone).
    kinds = summary.select("session", "kind", "user", "repo")
    for kind, origin, delay_range, trailer_share, squash_share in (
            (DEPLOY_SPLITTING, "split", (5 * MINUTE, 40 * MINUTE), TRAILER_SHARE, SQUASH_SHARE),
            (DISGUISED_BURN, "cover", (1 * HOUR, 6 * HOUR), 0.0, 0.0)):
        rows = np.flatnonzero(turns["commit"])
        tiny = pl.DataFrame({"session": turns["session"][rows] + session_offset,
                             "turn": rows + turn_offset, "ts_ms": turns["ts_ms"][rows],
                             "lines": turns["lines"][rows]}).join(kinds, on="session").filter(pl.col("kind") == kind)
        tiny = tiny.with_columns(author=pl.col("user"), anchor_ms=pl.col("ts_ms"), sessions=pl.concat_list("session"),
                                 commit_turns=pl.concat_list("turn"))
        n = tiny.height
        changed = np.maximum(tiny["lines"].to_numpy(), 1)
        added = np.maximum(1, changed - rng.integers(0, 3, n))
        frames.append(_change_frame(origin, tiny, tiny["anchor_ms"].to_numpy() + rng.integers(*delay_range, n),
                                    added, np.maximum(changed - added, 0), rng.random(n) < trailer_share,
                                    rng.random(n) < squash_share))
    return _finish_changes(rng, builder, pl.concat(frames))


def _finish_changes(rng: np.random.Generator, builder: AgenticBuilder, changes: pl.DataFrame) -> pl.DataFrame:
    """Merges past the end of the world become open changes; commits made by people are counted."""
    merged = changes["merged_ms"].to_numpy()
    merged = np.where(merged >= builder.end_ms, -1, merged)
    agent_commits = changes["commit_turns"].list.len().to_numpy()
    squash = changes["squash"].to_numpy()
    n = changes.height
    human = np.where(agent_commits > 0, rng.binomial(2, 0.3, n), 1 + rng.integers(0, 3, n))
    return changes.with_columns(merged_ms=pl.Series(merged), human_commits=pl.Series(np.where(squash, 0, human)))


def commit_lists(rng: np.random.Generator, changes: pl.DataFrame, turn_shas: pl.Series) -> pl.Series:
    """Each change's commit_shas: the agent's commits (unless squash-merged), then people's commits;
    a squash merge lists one new commit."""
    n = changes.height
    agent = changes.select(pl.int_range(n, dtype=pl.Int64).alias("row"), pl.col("commit_turns").alias("order"),
                           "squash").filter(~pl.col("squash")).explode("order").drop_nulls("order").drop("squash")
    agent = agent.with_columns(sha=turn_shas.gather(agent["order"]))
    human_count = changes["human_commits"].to_numpy() + changes["squash"].to_numpy().astype(np.int64)
    human_rows = np.repeat(np.arange(n), human_count)
    human = pl.DataFrame({"row": human_rows, "order": np.full(len(human_rows), np.iinfo(np.int64).max),
                          "sha": random_shas(rng, len(human_rows))},
                         schema={"row": pl.Int64, "order": pl.Int64, "sha": pl.String})
    flat = pl.concat([agent.cast({"row": pl.Int64, "order": pl.Int64, "sha": pl.String}), human]).sort("row", "order")
    lists = flat.group_by("row").agg(pl.col("sha"))
    return pl.DataFrame({"row": np.arange(n, dtype=np.int64)}).join(lists, on="row", how="left")["sha"].fill_null(
        pl.lit([], dtype=pl.List(pl.String)))


def ai_reviews(rng: np.random.Generator, summary: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """Reviews written with an agent: each review session reviews a colleague's change that merges
    1-37 hours after it (the next one in the repository, else in the team)."""
    sessions = summary.filter(pl.col("kind") == REVIEW).select("session", "user", "team", "repo", "end_ms")
    n = sessions.height
    sessions = sessions.with_columns(
        target_ms=pl.col("end_ms") + pl.Series((HOUR + rng.uniform(0, 36, n) * HOUR).astype(np.int64)),
        submitted_ms=pl.col("end_ms") + pl.Series(rng.integers(5 * MINUTE, 50 * MINUTE, n)),
        named=pl.Series(rng.random(n) < REVIEW_NAMES_SESSION_SHARE),
        state=pl.Series(rng.choice(np.array(["approved", "changes_requested", "commented"]), n, p=[0.55, 0.25, 0.2])),
        comments=pl.Series(1 + rng.poisson(3.0, n)),
    ).sort("target_ms")
    merged = changes.filter(pl.col("merged_ms") >= 0).select(
        "change", "author", "repo", "team", "merged_ms").sort("merged_ms")
    by_repo = sessions.join_asof(merged.drop("team"), left_on="target_ms", right_on="merged_ms", by="repo",
                                 strategy="forward", check_sortedness=False)
    by_team = sessions.join_asof(merged.drop("repo"), left_on="target_ms", right_on="merged_ms", by="team",
                                 strategy="forward", check_sortedness=False)
    found = by_repo.with_columns(
        change=pl.coalesce("change", by_team["change"]), author=pl.coalesce("author", by_team["author"]),
        merged_ms=pl.coalesce("merged_ms", by_team["merged_ms"]),
    ).filter(pl.col("change").is_not_null() & (pl.col("author") != pl.col("user")))
    return found.select(
        "change", pl.col("user").alias("reviewer"), pl.min_horizontal("submitted_ms", pl.col("merged_ms") - MINUTE
                                                                       ).alias("submitted_ms"),
        "state", "comments", pl.when("named").then(pl.concat_list("session")).otherwise(
            pl.lit([], dtype=pl.List(pl.Int64))).alias("sessions"), pl.col("session").alias("fed_by"))


def human_reviews(rng: np.random.Generator, builder: AgenticBuilder, changes: pl.DataFrame) -> pl.DataFrame:
    """Reviews without AI: most merged changes get one or two from teammates."""
    org = builder.org
    merged = changes["merged_ms"].to_numpy() >= 0
    count = np.where(merged, 1 + rng.binomial(1, 0.4, changes.height), rng.binomial(1, 0.5, changes.height))
    row = np.repeat(np.arange(changes.height), count)
    n = len(row)
    author = changes["author"].to_numpy()[row]
    team = org.user_team[author]
    team_first = np.searchsorted(org.user_team, np.arange(len(org.team_names)))
    team_size = np.bincount(org.user_team, minlength=len(org.team_names))
    size = team_size[team]
    reviewer = team_first[team] + (author - team_first[team] + 1 + (rng.random(n) * np.maximum(size - 1, 1)).astype(
        np.int64)) % size
    anchor = changes["anchor_ms"].to_numpy()[row]
    merged_ms = changes["merged_ms"].to_numpy()[row]
    is_merged = merged_ms >= 0
    submitted = np.where(is_merged, anchor + ((merged_ms - anchor) * rng.uniform(0.2, 0.95, n)).astype(np.int64),
                         anchor + (rng.uniform(1, 48, n) * HOUR).astype(np.int64))
    state = np.where(is_merged, rng.choice(np.array(["approved", "commented", "changes_requested"]), n,
                                           p=[0.8, 0.15, 0.05]),
                     rng.choice(np.array(["changes_requested", "commented"]), n))
    comments = rng.poisson(np.where(state == "approved", 0.6, 2.0))
    frame = pl.DataFrame({
        "change": changes["change"].to_numpy()[row], "reviewer": reviewer, "submitted_ms": submitted,
        "state": state, "comments": comments, "sessions": pl.Series([[]] * n, dtype=pl.List(pl.Int64)),
        "fed_by": pl.Series([None] * n, dtype=pl.Int64)})
    return frame.filter((pl.col("reviewer") != pl.Series(author)) & (pl.col("submitted_ms") < builder.end_ms))


# ---------------------------------------------------------------------------------------------
# the world


@dataclass
class AgenticWorld:
    """Everything drawn, before it is shaped into the contract's frames."""

    plan: Plan
    builder: AgenticBuilder
    activity: Part
    changes: pl.DataFrame  # with `change` (row in id order), `team`, `sessions`, ...
    commit_shas: pl.Series
    reviews: pl.DataFrame
    deployments: pl.DataFrame


def draw_world(users: int, weeks: int, seed: int, start_ms: int, intensity: float) -> AgenticWorld:
    """Plan, legit and gaming activity, changes, reviews and deployments, each from its own stream."""
    plan_rng, legit_rng, gaming_rng, deploy_rng = (np.random.default_rng(s) for s in
                                                   np.random.SeedSequence(seed).spawn(4))
    plan = plan_world(plan_rng, users, weeks)
    builder = AgenticBuilder(plan, start_ms, weeks, intensity)
    legit = build_part(legit_rng, builder, builder.legit_counts(legit_rng))
    gaming = build_part(gaming_rng, builder, builder.gaming_counts(gaming_rng))
    parts = [part for part in (legit, gaming) if part is not None]
    activity = merge_parts(parts)
    legit_sessions = len(legit.sessions) if legit is not None else 0
    legit_turns = len(legit.turns) if legit is not None else 0

    change_parts, review_parts = [], []
    if legit is not None:
        summary = session_summary(legit, plan, 0, 0)
        changes = legit_changes(legit_rng, builder, summary)
        change_parts.append((changes, summary, legit_rng))
    if gaming is not None:
        summary = session_summary(gaming, plan, legit_sessions, legit_turns)
        change_parts.append((gaming_changes(gaming_rng, builder, summary, gaming.turns, legit_sessions, legit_turns),
                             summary, gaming_rng))
    turn_shas = _shas(activity.turns["sha"])
    # Ids in time order (ties: author, repo, then draw order); legit changes first among equals.
    keyed = pl.concat([changes.with_columns(part=pl.lit(i), draw=pl.int_range(changes.height))
                       for i, (changes, _, _) in enumerate(change_parts)])
    keyed = keyed.with_columns(team=pl.Series(plan.org.user_team[keyed["author"].to_numpy()], dtype=pl.Int64))
    order = keyed.with_row_index("position").sort(
        pl.when(pl.col("merged_ms") >= 0).then("merged_ms").otherwise("anchor_ms"), "author", "repo", "part", "draw")
    change_of_position = np.empty(keyed.height, dtype=np.int64)
    change_of_position[order["position"].to_numpy()] = np.arange(keyed.height)
    keyed = keyed.with_columns(change=pl.Series(change_of_position))

    shas = []
    for i, (_, summary, rng) in enumerate(change_parts):
        mine = keyed.filter(pl.col("part") == i)
        shas.append(mine.select("change").with_columns(commit_shas=commit_lists(rng, mine, turn_shas)))
        reviews = human_reviews(rng, builder, mine)
        if i == 0:
            reviews = pl.concat([ai_reviews(rng, summary, mine), reviews], how="vertical_relaxed")
        review_parts.append(reviews)
    changes = keyed.sort("change")
    commit_shas = pl.concat(shas).sort("change")["commit_shas"]
    reviews = pl.concat(review_parts, how="vertical_relaxed").with_row_index("draw").sort(
        "submitted_ms", "reviewer", "draw").drop("draw")

    deployable = changes.filter(pl.col("team") != plan.research_team).select(
        pl.col("change").alias("row"), "repo", "merged_ms", "origin")
    deployments = build_deployments(deploy_rng, builder, deployable).filter(pl.col("deployed_ms") < builder.end_ms)
    return AgenticWorld(plan=plan, builder=builder, activity=activity, changes=changes, commit_shas=commit_shas, reviews=reviews, deployments=deployments)


def _shas(values: np.ndarray) -> pl.Series:
    """Commit shas as strings, null where empty."""
    return pl.Series(values, dtype=pl.String).set(pl.Series(values == ""), None)


def _session_ids(world: AgenticWorld) -> np.ndarray:
    sessions = world.activity.sessions
    rank = np.empty(len(sessions), dtype=np.int64)
    by_time = np.lexsort((np.arange(len(sessions)), sessions["user"], sessions["start_ms"]))
    rank[by_time] = np.arange(len(sessions))
    return prefixed_ids("s-", len(sessions)).to_numpy()[rank]


def contract_frames(world: AgenticWorld, session_ids: np.ndarray) -> dict[str, pl.DataFrame]:
    """The contract datasets (reviews included), in the contract's column order and types."""
    org, activity = world.plan.org, world.activity
    sessions, turns, calls = activity.sessions, activity.turns, activity.calls
    user_ids = pl.Series(org.user_ids)
    repo_names = pl.Series(org.repo_names + [None], dtype=pl.String)  # index -1 -> null
    session_id_series = pl.Series(session_ids)
    token_usage = token_usage_frame(org, sessions, calls, session_id_series, TOOLS, cost_missing=~calls["cost_filled"])
    invocations = invocations_frame(org, sessions, turns, activity.text, session_id_series, _shas(turns["sha"]))

    changes = world.changes
    change_ids = prefixed_ids("c-", changes.height)
    named = changes.select(pl.when("trailer").then(pl.col("sessions")).otherwise(pl.lit([], dtype=pl.List(pl.Int64)))
                           .alias("named"))["named"]
    change_frame = pl.DataFrame({
        "change_id": change_ids,
        "repo": repo_names.gather(changes["repo"]),
        "author_id": user_ids.gather(changes["author"]),
        "merged_ms": changes["merged_ms"],
        "lines_added": changes["lines_added"], "lines_deleted": changes["lines_deleted"],
        "ai_session_ids": _ids_of(named, session_id_series),
        "commit_shas": world.commit_shas,
    }).select("change_id", "repo", "author_id",
              pl.when(pl.col("merged_ms") >= 0).then(to_datetime("merged_ms")).alias("merged_at"),
              "lines_added", "lines_deleted", "ai_session_ids", "commit_shas")

    deployments = deployments_frame(org, world.deployments, change_ids)
    reviews = world.reviews
    review_frame = pl.DataFrame({
        "review_id": prefixed_ids("v-", reviews.height),
        "change_id": change_ids.gather(reviews["change"]),
        "reviewer_id": user_ids.gather(reviews["reviewer"]),
        "submitted_ms": reviews["submitted_ms"],
        "state": reviews["state"],
        "ai_session_ids": _ids_of(reviews["sessions"], session_id_series),
        "comments": reviews["comments"].cast(pl.Int64),
    }).select("review_id", "change_id", "reviewer_id", to_datetime("submitted_ms").alias("submitted_at"), "state",
              "ai_session_ids", "comments")
    return conform({"token_usage": token_usage, "invocations": invocations, "changes": change_frame,
                    "deployments": deployments, "reviews": review_frame, "people": people_frame(org)})


def _ids_of(index_lists: pl.Series, ids: pl.Series) -> pl.Series:
    """A list column of session indices as a list column of their ids (empty lists stay empty)."""
    frame = pl.DataFrame({"list": index_lists}).with_row_index("row")
    flat = frame.explode("list").drop_nulls("list")
    flat = flat.with_columns(value=ids.gather(flat["list"]))
    grouped = flat.group_by("row").agg(pl.col("value"))
    return frame.select("row").join(grouped, on="row", how="left")["value"].fill_null(
        pl.lit([], dtype=pl.List(pl.String))).rename("ids")


# ---------------------------------------------------------------------------------------------
# ground truth


def labels(world: AgenticWorld, session_ids: np.ndarray, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Sessions, user-weeks and the true session-change links (see docs/worlds.md)."""
    plan, org, activity = world.plan, world.plan.org, world.activity
    sessions, turns, calls = activity.sessions, activity.turns, activity.calls
    start_ms = world.builder.start_ms
    kind = sessions["kind"]
    tactic = kind - len(LEGIT_KINDS)  # negative for legit kinds
    tactic_names = pl.Series(TACTICS, dtype=pl.String)
    user = sessions["user"]
    research = org.user_team[user] == plan.research_team
    adoption = plan.week[sessions["user_week"]] == plan.adoption_week
    session_hard = np.select(  # in the order of HARD_CASES, as for user-weeks
        [tactic >= 0, kind == REVIEW, kind == MIGRATION, research, adoption],
        ["", "reviewer", "long_migration", "research_team", "adoption_week"], "")
    session_labels = pl.DataFrame({
        "session_id": session_ids,
        "user_id": org.user_ids[user],
        "week_start": _week_start(sessions["start_ms"], start_ms),
        "is_gaming": tactic >= 0,
        "tactic": tactic_names.gather(np.maximum(tactic, 0)).set(pl.Series(tactic < 0), None),
        "kind": pl.Series(KINDS).gather(kind),
        "legit_kind": pl.Series(session_hard).set(pl.Series(session_hard == ""), None),
    }).sort("session_id")

    # User-weeks with any prompt or call; gaming when any of it came from a tactic session.
    event_session = np.concatenate([calls["session"], turns["session"]])
    event_ts = np.concatenate([calls["ts_ms"], turns["ts_ms"]])
    events = pl.DataFrame({
        "user": user[event_session], "tactic": tactic[event_session],
        "migration": kind[event_session] == MIGRATION,
        "week_start": _week_start(event_ts, start_ms),
    })
    by_week = events.group_by("user", "week_start").agg(
        pl.col("tactic").filter(pl.col("tactic") >= 0).mode().min().alias("tactic"),
        pl.col("migration").any().alias("migration"),
    ).sort("user", "week_start")
    user_index = by_week["user"].to_numpy()
    team = org.user_team[user_index]
    persona = plan.persona[user_index]
    week_index = ((by_week["week_start"].cast(pl.Int64).to_numpy() * DAY - start_ms) // WEEK).astype(np.int64)
    gaming = by_week["tactic"].is_not_null().to_numpy()
    flags = {
        "reviewer": persona == REVIEWER,
        "research_team": team == plan.research_team,
        "long_migration": by_week["migration"].to_numpy(),
        "adoption_week": week_index == plan.adoption_week,
    }
    hard_cases = pl.DataFrame({name: flags[name] & ~gaming for name in HARD_CASES}).select(
        pl.concat_list([pl.when(name).then(pl.lit(name)) for name in HARD_CASES]).list.drop_nulls().alias("hard_cases")
    )["hard_cases"]
    persona_names = pl.Series(PERSONAS)
    fallback = persona_names.gather(persona).replace("gamer", "gamer_off_week")
    user_weeks = pl.DataFrame({
        "user_id": org.user_ids[user_index],
        "team": pl.Series(org.team_names).gather(team),
        "org": pl.Series(org.org_names).gather(org.team_org[team]),
        "week_start": by_week["week_start"],
        "persona": persona_names.gather(persona),
        "is_gaming": gaming,
        "tactic": tactic_names.gather(by_week["tactic"].fill_null(0)).set(by_week["tactic"].is_null(), None),
        "hard_cases": hard_cases,
        "fallback": fallback,
    }).with_columns(
        legit_kind=pl.when(pl.col("is_gaming")).then(None).otherwise(
            pl.coalesce(pl.col("hard_cases").list.first(), "fallback")))
    user_weeks = user_weeks.select(*user_weeks.columns[:7], "legit_kind", "hard_cases")

    # True links: each change's feeding sessions, and each AI review's session.
    change_ids = frames["changes"]["change_id"]
    authored = world.changes.select("change", "sessions", "trailer", "commit_turns", "squash").explode(
        "sessions").drop_nulls("sessions")
    commit_session = pl.DataFrame({"turn": np.flatnonzero(turns["commit"]),
                                   "commit_session": turns["session"][turns["commit"]]})
    via_commit = world.changes.filter(~pl.col("squash")).select("change", "commit_turns").explode(
        "commit_turns").drop_nulls().join(commit_session, left_on="commit_turns", right_on="turn").select(
        "change", pl.col("commit_session").alias("sessions")).unique().with_columns(via_commit=pl.lit(True))
    authored = authored.join(via_commit, on=["change", "sessions"], how="left").select(
        pl.col("sessions").alias("session"), "change", relation=pl.lit("authored"), named="trailer",
        via_commit=pl.col("via_commit").fill_null(False))
    reviewed = world.reviews.filter(pl.col("fed_by").is_not_null()).select(
        pl.col("fed_by").alias("session"), "change", relation=pl.lit("reviewed"),
        named=pl.col("sessions").list.len() > 0, via_commit=pl.lit(False))
    links = pl.concat([authored, reviewed], how="vertical_relaxed")
    links = pl.DataFrame({
        "session_id": pl.Series(session_ids).gather(links["session"]), "change_id": change_ids.gather(links["change"]),
        "relation": links["relation"], "named": links["named"], "via_commit": links["via_commit"],
    }).sort("session_id", "change_id")
    return {"user_weeks": user_weeks, "sessions": session_labels, "links": links}


def write(out_dir: Path, frames: dict[str, pl.DataFrame], label_frames: dict[str, pl.DataFrame],
          meta: dict[str, object], file_format: str, without: Collection[str] = ()) -> dict[str, int]:
    """Write the datasets (replacing an earlier world in the same folder), labels and labels/world.json."""
    rows = write_world(out_dir, frames, label_frames, file_format, without)
    (out_dir / "labels" / "world.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return rows


def generate_agentic_world(out_dir: Path, *, users: int, weeks: int, seed: int, start: datetime.date,
                           file_format: str, intensity: float, without: Collection[str] = ()) -> WorldSummary:
    """Write an agentic world (contract datasets with reviews, plus labels/) to `out_dir`."""
    start_ms = epoch_ms(start)
    world = draw_world(users, weeks, seed, start_ms, intensity)
    session_ids = _session_ids(world)
    frames = contract_frames(world, session_ids)
    label_frames = labels(world, session_ids, frames)
    plan, org = world.plan, world.plan.org
    meta = {
        "style": STYLE, "seed": seed, "seed_role": seed_role(seed), "users": users, "weeks": weeks,
        "start": start.isoformat(), "intensity": intensity,
        "adoption_week_start": (start + datetime.timedelta(weeks=plan.adoption_week)).isoformat()
        if plan.adoption_week >= 0 else None,
        "research_team": org.team_names[plan.research_team] if plan.research_team >= 0 else None,
        "research_repos": org.repo_names[org.team_repo_first[plan.research_team]:
                                         org.team_repo_first[plan.research_team]
                                         + org.team_repo_count[plan.research_team]]
        if plan.research_team >= 0 else [],
        "collusion_team": org.team_names[plan.collusion_team] if plan.collusion_team >= 0 else None,
        "collusion_weeks": [(start + datetime.timedelta(weeks=int(w))).isoformat() for w in plan.collusion_weeks]
        if plan.collusion_team >= 0 else [],
        "trailer_share": TRAILER_SHARE, "squash_share": SQUASH_SHARE,
        "review_names_session_share": REVIEW_NAMES_SESSION_SHARE,
        "without": sorted(without),
    }
    del world
    rows = write(Path(out_dir), frames, label_frames, meta, file_format, without)
    user_weeks = label_frames["user_weeks"]
    return WorldSummary(out_dir=Path(out_dir), users=users, weeks=weeks, seed=seed, rows=rows,
                        gaming_user_weeks=int(user_weeks["is_gaming"].sum()), user_weeks=user_weeks.height,
                        style=STYLE, intensity=intensity)
