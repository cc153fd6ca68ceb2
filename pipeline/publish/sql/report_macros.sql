-- kind: macros
-- Temporary macros of the finance report (pipeline/publish/report.py), created on its read-only connection.
-- Money is written in cents by largest-remainder rounding: each row gets the floor of its exact
-- cents, then the rows with the largest remainders get one more cent each until the rows add up
-- to the database total rounded to the cent. So every amount is within a cent of its exact value
-- and every file adds up to the database total exactly.

-- exact cents of a dollar amount (rounded to 1e-6 cent so float noise like 1233.9999999 is 1234)
CREATE OR REPLACE TEMP MACRO report_exact_cents(usd) AS round(coalesce(usd, 0) * 100, 6);

-- whole cents a row gets before the remainders are handed out
CREATE OR REPLACE TEMP MACRO report_floor_cents(usd) AS floor(report_exact_cents(usd));

-- the part of a cent the floor dropped: the rows with the largest ones get the missing cents
CREATE OR REPLACE TEMP MACRO report_remainder(usd) AS report_exact_cents(usd) - report_floor_cents(usd);

-- the row's dollars as DECIMAL: its floor cents, plus one when its rank is within the deficit
CREATE OR REPLACE TEMP MACRO report_usd(floor_cents, remainder_rank, deficit_cents) AS
    CAST((floor_cents + CASE WHEN remainder_rank <= deficit_cents THEN 1 ELSE 0 END) / 100 AS DECIMAL(18, 2));

-- Tokens the same way, in whole tokens: a row's wasted tokens (a share of its tokens) get their
-- floor, and the rows with the largest remainders one more, up to the database total.
CREATE OR REPLACE TEMP MACRO report_exact_tokens(n) AS round(coalesce(n, 0), 6);
CREATE OR REPLACE TEMP MACRO report_floor_tokens(n) AS floor(report_exact_tokens(n));
CREATE OR REPLACE TEMP MACRO report_token_remainder(n) AS report_exact_tokens(n) - report_floor_tokens(n);
CREATE OR REPLACE TEMP MACRO report_tokens(floor_tokens, remainder_rank, deficit_tokens) AS
    CAST(floor_tokens + CASE WHEN remainder_rank <= deficit_tokens THEN 1 ELSE 0 END AS BIGINT);

-- the AI vendor behind a model name, for FOCUS ProviderName (by name prefix; 'Unknown' otherwise)
CREATE OR REPLACE TEMP MACRO report_provider(model) AS
    CASE
        WHEN regexp_matches(lower(model), '^(claude|opus|sonnet|haiku)') THEN 'Anthropic'
        WHEN regexp_matches(lower(model), '^(gpt|o[0-9]|codex|chatgpt)') THEN 'OpenAI'
        WHEN regexp_matches(lower(model), '^(gemini|gemma)') THEN 'Google'
        WHEN regexp_matches(lower(model), '^(mistral|codestral|devstral)') THEN 'Mistral AI'
        ELSE 'Unknown'
    END;

-- the ISO-8601 UTC instant of a week's Monday 00:00
CREATE OR REPLACE TEMP MACRO report_utc(day) AS strftime(CAST(day AS DATE), '%Y-%m-%dT00:00:00Z');
