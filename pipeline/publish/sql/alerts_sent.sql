-- kind: script
-- alerts_sent: one row per (subscription, item) delivered: a flag, or a scope's wasted cost in one
-- ISO week over the subscription's threshold. Kept across runs (a run rebuilds its score tables,
-- never this one), so nothing is sent twice. period: the digest's day ('2026-10-05') or ISO week
-- ('2026-W41') for daily and weekly subscriptions, the run id for immediate ones.
CREATE TABLE IF NOT EXISTS alerts_sent (
    subscription VARCHAR NOT NULL,
    frequency    VARCHAR NOT NULL,  -- 'immediate' | 'daily' | 'weekly'
    period       VARCHAR NOT NULL,
    item_kind    VARCHAR NOT NULL,  -- 'flag' | 'waste'
    item_id      VARCHAR NOT NULL,  -- the flag_id, or 'waste:<scope>:<week_start>'
    destination  VARCHAR NOT NULL,  -- the destination's kind: slack, teams, webhook, email, block
    run_id       VARCHAR,           -- the run whose tables the alert was drawn from
    sent_at      TIMESTAMP NOT NULL
);
