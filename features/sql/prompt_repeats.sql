-- kind: incremental_by_week
-- grain: invocation_id
-- prompt_repeats: one row per prompt (invocation_id): does it repeat an earlier prompt of the same
-- session or user-week, exactly (same fingerprint) or nearly (SimHash within `near_duplicate_bits`
-- bits), is it near-identical to the previous prompt of its session, and how long after it
-- (gap_seconds: cadence features read it here)? "Earlier" is (ts, invocation_id) order.
-- Near prompts are found in one pass over each scope's prompts (near_earlier, a compiled function:
-- features/sql_functions.py): repeats of one signature are settled first, so a script sending the
-- same prompt 10,000 times costs one signature, not 10^8 pairs; a scope with many distinct
-- signatures only compares those sharing a band, so many unrelated prompts cost about signatures x
-- bands comparisons, not signatures^2.

WITH
repeated_text_hashes AS (
    -- hashes of the fingerprints seen more than once: only their prompts can repeat a text (a hash
    -- collision only adds a candidate, texts are compared exactly below)
    SELECT hash(prompt_fingerprint) AS text_hash
    FROM invocations
    WHERE prompt_fingerprint IS NOT NULL
    GROUP BY text_hash
    HAVING count(*) > 1
),

prompts AS (
    SELECT
        invocation_id,
        session_id,
        user_id,
        ts,
        iso_week(ts) AS week_start,
        -- the SimHash as a BIGINT with its top bit flipped: same bit distances, and bit_count has a
        -- BIGINT overload (a UBIGINT is widened to HUGEINT at every comparison)
        CAST(CAST(prompt_simhash AS HUGEINT) - 9223372036854775808 AS BIGINT) AS signature,
        CASE WHEN hash(prompt_fingerprint) IN (SELECT text_hash FROM repeated_text_hashes)
            THEN prompt_fingerprint END AS repeated_text
    FROM invocations
),

sequenced AS (
    -- seq: unique and in (ts, invocation_id) order, so an earlier prompt has a smaller seq: the UTC
    -- day's number times 2^36 plus the place within the day. Numbering day by day instead of in
    -- one global sort lets the days sort in parallel and apart (at 100M rows, 35 s instead of 62 s)
    SELECT
        *,
        epoch_us(ts) // 86400000000 * 68719476736
            + row_number() OVER (PARTITION BY epoch_us(ts) // 86400000000 ORDER BY ts, invocation_id) AS seq
    FROM prompts
),

ordered AS (
    SELECT
        *,
        -- a text equal to the previous prompt's occurs twice, so it is a repeated_text
        coalesce(
            lag(repeated_text) OVER by_session = repeated_text
            OR hamming(lag(signature) OVER by_session, signature) <= getvariable('near_duplicate_bits'),
            false
        ) AS near_previous,
        epoch(ts - lag(ts) OVER by_session) AS gap_seconds
    FROM sequenced
    WINDOW by_session AS (PARTITION BY session_id ORDER BY seq)
),

session_texts AS (
    -- the first prompt of each repeated text of each session (below: of each user-week)
    SELECT min(seq) AS first_seq
    FROM ordered
    WHERE repeated_text IS NOT NULL
    GROUP BY session_id, repeated_text
),

week_texts AS (
    SELECT min(seq) AS first_seq
    FROM ordered
    WHERE repeated_text IS NOT NULL
    GROUP BY user_id, week_start, repeated_text
),

signature_lists AS (
    -- each scope's signatures and the places of their prompts (a scope of one prompt has no pair)
    SELECT 'session' AS scope, list(signature) AS signatures, list(seq) AS seqs
    FROM ordered
    WHERE signature IS NOT NULL
    GROUP BY session_id
    HAVING count(*) > 1
    UNION ALL
    SELECT 'week', list(signature), list(seq)
    FROM ordered
    WHERE signature IS NOT NULL
    GROUP BY user_id, week_start
    HAVING count(*) > 1
),

late_prompts AS (
    -- prompts with an earlier prompt of the scope within the bits, the same signature included
    -- (near_earlier: features/sql_functions.py, by band in a scope of many signatures)
    SELECT seq, bool_or(scope = 'session') AS in_session, bool_or(scope = 'week') AS in_week
    FROM (
        SELECT
            scope,
            unnest(near_earlier(signatures, seqs, CAST(floor(getvariable('near_duplicate_bits')) AS INTEGER)))
                AS seq
        FROM signature_lists
    )
    GROUP BY seq
)

-- A prompt is an exact repeat unless it is the first of its text in the scope, and a near repeat
-- also when an earlier prompt of the scope lies within the bits (its own signature included).
SELECT
    o.invocation_id,
    o.session_id,
    o.user_id,
    o.ts,
    o.week_start,
    o.repeated_text IS NOT NULL AND st.first_seq IS NULL AS exact_repeat_in_session,
    (o.repeated_text IS NOT NULL AND st.first_seq IS NULL)
        OR coalesce(l.in_session, false)
        AS near_repeat_in_session,
    o.repeated_text IS NOT NULL AND wt.first_seq IS NULL AS exact_repeat_in_week,
    (o.repeated_text IS NOT NULL AND wt.first_seq IS NULL)
        OR coalesce(l.in_week, false)
        AS near_repeat_in_week,
    o.near_previous,
    o.gap_seconds
FROM ordered AS o
LEFT JOIN session_texts AS st ON st.first_seq = o.seq
LEFT JOIN week_texts AS wt ON wt.first_seq = o.seq
LEFT JOIN late_prompts AS l ON l.seq = o.seq
