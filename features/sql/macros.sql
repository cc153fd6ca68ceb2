-- kind: macros
-- Scalar macros shared by the feature SQL.

-- ISO week (Monday 00:00 UTC) of a timestamp, as a DATE.
CREATE OR REPLACE MACRO iso_week(ts) AS CAST(date_trunc('week', ts) AS DATE);

-- a / b, NULL when b is 0 or NULL.
CREATE OR REPLACE MACRO safe_div(a, b) AS CAST(a AS DOUBLE) / nullif(CAST(b AS DOUBLE), 0);

-- Robust z-score: (x - median) / (1.4826 * MAD), the MAD floored at 5% of |median| and at the
-- feature's smallest spread (in its unit), so a group of identical peers does not divide by zero.
CREATE OR REPLACE MACRO robust_z(x, med, mad, min_spread) AS
    (x - med) / (1.4826 * greatest(mad, 0.05 * abs(med), min_spread));

-- A share beyond a usual one, as a share of what the usual leaves: (share - usual) / (1 - usual);
-- 0 at the usual, 1 at all, negative below it, NULL when the usual is 1 or unknown.
CREATE OR REPLACE MACRO excess_share(share, usual) AS safe_div(share - usual, 1 - usual);

-- Number of differing bits between two 64-bit SimHash signatures.
CREATE OR REPLACE MACRO hamming(a, b) AS bit_count(xor(a, b));

-- Whether `ts` falls in a session or up to `hours` after its end (the inferred links' windows).
CREATE OR REPLACE MACRO in_window(ts, started_at, ended_at, hours) AS
    ts >= started_at AND ts <= ended_at + to_microseconds(CAST(hours * 3600e6 AS BIGINT));

-- Whether a week is one an incremental build rebuilds (features.build sets `rebuild_weeks`; a full
-- build leaves it unset: every week).
CREATE OR REPLACE MACRO rebuilt_week(week) AS
    getvariable('rebuild_weeks') IS NULL OR list_contains(CAST(getvariable('rebuild_weeks') AS DATE[]), week);

-- Whether a week is one a rebuilt week's trailing window of `days` days reads (every week in a full build).
CREATE OR REPLACE MACRO read_by_rebuilt_weeks(week, days) AS
    getvariable('rebuild_weeks') IS NULL
    OR week >= list_min(CAST(getvariable('rebuild_weeks') AS DATE[])) - to_days(CAST(days AS INTEGER));
