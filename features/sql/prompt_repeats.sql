-- prompt_repeats: one row per prompt (invocation_id): does it repeat an earlier prompt of the same
-- session or user-week, exactly (same fingerprint) or nearly (SimHash within
-- `near_duplicate_bits` bits)? Near pairs are found between distinct signatures only, through
-- more than `near_duplicate_bits` bands (four 16-bit bands for the default 3: any pair within 3
-- bits shares at least one band), so a script sending the same prompt 10,000 times costs one
-- signature, not 10^8 pairs.

WITH
prompts AS (
    SELECT invocation_id, session_id, user_id, ts, prompt_fingerprint, prompt_simhash
    FROM invocations
),

scoped AS (
    SELECT 'session' AS scope, session_id AS scope_id, * FROM prompts
    UNION ALL
    SELECT 'week' AS scope, user_id || '/' || CAST(iso_week(ts) AS VARCHAR) AS scope_id, * FROM prompts
),

sequenced AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY scope, scope_id ORDER BY ts, invocation_id) AS seq,
        prompt_fingerprint IS NOT NULL
            AND row_number() OVER (PARTITION BY scope, scope_id, prompt_fingerprint ORDER BY ts, invocation_id) > 1
            AS exact_repeat
    FROM scoped
),

signatures AS (
    SELECT scope, scope_id, prompt_simhash AS simhash, min(seq) AS first_seq
    FROM sequenced
    WHERE prompt_simhash IS NOT NULL
    GROUP BY ALL
),

band_layout AS (
    -- bands of `width` bits, ceil(64 / width) >= near_duplicate_bits + 1 of them: by pigeonhole two
    -- signatures at most near_duplicate_bits bits apart agree on at least one whole band
    SELECT width, CAST(ceil(64 / width) AS INTEGER) AS band_count
    FROM (SELECT greatest(64 // (CAST(getvariable('near_duplicate_bits') AS INTEGER) + 1), 1) AS width)
),

bands AS (
    SELECT
        scope, scope_id, simhash, first_seq, band,
        CASE WHEN width >= 64 THEN simhash
             ELSE (simhash >> (width * band)) & ((CAST(1 AS UBIGINT) << width) - 1) END AS band_value
    FROM signatures, band_layout, range(64) AS b(band)
    WHERE band < band_count
),

near_signatures AS (
    SELECT a.scope, a.scope_id, a.simhash, min(b.first_seq) AS neighbour_first_seq
    FROM bands AS a
    JOIN bands AS b
        ON a.scope = b.scope AND a.scope_id = b.scope_id
        AND a.band = b.band AND a.band_value = b.band_value
        AND a.simhash <> b.simhash
    WHERE hamming(a.simhash, b.simhash) <= getvariable('near_duplicate_bits')
    GROUP BY ALL
),

flagged AS (
    SELECT
        s.scope,
        s.invocation_id,
        s.exact_repeat,
        s.exact_repeat
            OR (s.prompt_simhash IS NOT NULL AND s.seq > sig.first_seq)
            OR coalesce(near.neighbour_first_seq < s.seq, false) AS near_repeat
    FROM sequenced AS s
    LEFT JOIN signatures AS sig
        ON sig.scope = s.scope AND sig.scope_id = s.scope_id AND sig.simhash = s.prompt_simhash
    LEFT JOIN near_signatures AS near
        ON near.scope = s.scope AND near.scope_id = s.scope_id AND near.simhash = s.prompt_simhash
),

previous AS (
    SELECT
        invocation_id,
        lag(prompt_fingerprint) OVER w AS previous_fingerprint,
        lag(prompt_simhash) OVER w AS previous_simhash
    FROM prompts
    WINDOW w AS (PARTITION BY session_id ORDER BY ts, invocation_id)
)

SELECT
    p.invocation_id,
    p.session_id,
    p.user_id,
    p.ts,
    iso_week(p.ts) AS week_start,
    bool_or(f.exact_repeat) FILTER (WHERE f.scope = 'session') AS exact_repeat_in_session,
    bool_or(f.near_repeat) FILTER (WHERE f.scope = 'session') AS near_repeat_in_session,
    bool_or(f.exact_repeat) FILTER (WHERE f.scope = 'week') AS exact_repeat_in_week,
    bool_or(f.near_repeat) FILTER (WHERE f.scope = 'week') AS near_repeat_in_week,
    coalesce(
        any_value(prev.previous_fingerprint = p.prompt_fingerprint)
        OR any_value(hamming(prev.previous_simhash, p.prompt_simhash) <= getvariable('near_duplicate_bits')),
        false
    ) AS near_previous
FROM prompts AS p
JOIN flagged AS f USING (invocation_id)
JOIN previous AS prev USING (invocation_id)
GROUP BY p.invocation_id, p.session_id, p.user_id, p.ts
