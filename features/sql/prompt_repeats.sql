-- kind: incremental_by_week
-- grain: invocation_id
-- prompt_repeats: one row per prompt (invocation_id): does it repeat an earlier prompt of the same
-- session or user-week, exactly (same fingerprint) or nearly (SimHash within `near_duplicate_bits`
-- bits), is it near-identical to the previous prompt of its session, and how long after it
-- (gap_seconds: cadence features read it here)? "Earlier" is (ts, invocation_id) order.
-- Near prompts are found between the distinct signatures of a scope, so a script sending the same
-- prompt 10,000 times costs one signature, not 10^8 pairs; a scope with many distinct signatures
-- only compares those sharing a band (near_earlier, a compiled function: features/sql_functions.py),
-- so many unrelated prompts cost about signatures x bands comparisons, not signatures^2.

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
    -- the first prompt of each repeated text of each session (below: of each user-week, and the
    -- first prompt of each signature)
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

session_signatures AS (
    SELECT session_id, signature, min(seq) AS first_seq
    FROM ordered
    WHERE signature IS NOT NULL
    GROUP BY session_id, signature
),

week_signatures AS (
    SELECT user_id, week_start, signature, min(seq) AS first_seq
    FROM ordered
    WHERE signature IS NOT NULL
    GROUP BY user_id, week_start, signature
),

signature_lists AS (
    -- each scope's distinct signatures and the place of their first prompts (a scope of one
    -- signature has no near pair)
    SELECT 'session' AS scope, list(signature) AS signatures, list(first_seq) AS first_seqs
    FROM session_signatures
    GROUP BY session_id
    HAVING count(*) > 1
    UNION ALL
    SELECT 'week', list(signature), list(first_seq)
    FROM week_signatures
    GROUP BY user_id, week_start
    HAVING count(*) > 1
),

late_signatures AS (
    -- first prompts of the signatures that have a near signature first seen earlier in the scope
    -- (near_earlier: features/sql_functions.py, by band in a scope of many signatures)
    SELECT first_seq, bool_or(scope = 'session') AS in_session, bool_or(scope = 'week') AS in_week
    FROM (
        SELECT
            scope,
            unnest(near_earlier(signatures, first_seqs, CAST(floor(getvariable('near_duplicate_bits')) AS INTEGER)))
                AS first_seq
        FROM signature_lists
    )
    GROUP BY first_seq
)

-- A prompt is a repeat unless it is the first of its text (signature) in the scope, and a near
-- repeat also unless a near signature came before it.
SELECT
    o.invocation_id,
    o.session_id,
    o.user_id,
    o.ts,
    o.week_start,
    o.repeated_text IS NOT NULL AND st.first_seq IS NULL AS exact_repeat_in_session,
    (o.repeated_text IS NOT NULL AND st.first_seq IS NULL)
        OR (o.signature IS NOT NULL AND (s.first_seq IS NULL OR coalesce(l.in_session, false)))
        AS near_repeat_in_session,
    o.repeated_text IS NOT NULL AND wt.first_seq IS NULL AS exact_repeat_in_week,
    (o.repeated_text IS NOT NULL AND wt.first_seq IS NULL)
        OR (o.signature IS NOT NULL AND (w.first_seq IS NULL OR coalesce(l.in_week, false)))
        AS near_repeat_in_week,
    o.near_previous,
    o.gap_seconds
FROM ordered AS o
LEFT JOIN session_texts AS st ON st.first_seq = o.seq
LEFT JOIN week_texts AS wt ON wt.first_seq = o.seq
LEFT JOIN session_signatures AS s ON s.first_seq = o.seq
LEFT JOIN week_signatures AS w ON w.first_seq = o.seq
LEFT JOIN late_signatures AS l ON l.first_seq = o.seq
