-- Raw tables: what the loader keeps of the contract's input datasets, plus its own bookkeeping.
-- Every timestamp is TIMESTAMP in UTC (offsets are applied at load). Prompt text is never stored:
-- only its fingerprint, near-duplicate signature and length.

-- grain: one row per model API call (request_id)
CREATE TABLE IF NOT EXISTS token_usage (
    request_id         VARCHAR NOT NULL,
    ts                 TIMESTAMP NOT NULL,
    user_id            VARCHAR NOT NULL,
    session_id         VARCHAR NOT NULL,
    model              VARCHAR NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cost_usd           DOUBLE,            -- NULL when the model has no price
    cost_source        VARCHAR NOT NULL,  -- 'input' | 'price_table' | 'unpriced'
    tool               VARCHAR,
    file_id            INTEGER NOT NULL,  -- loaded_files.file_id the row came from
    position           BIGINT NOT NULL    -- 1-based record number in that file
);

-- grain: one row per prompt (invocation_id)
CREATE TABLE IF NOT EXISTS invocations (
    invocation_id      VARCHAR NOT NULL,
    ts                 TIMESTAMP NOT NULL,
    user_id            VARCHAR NOT NULL,
    session_id         VARCHAR NOT NULL,
    repo               VARCHAR,           -- NULL: no repository context
    prompt_fingerprint VARCHAR,           -- exact, keyed (pipeline/ingest/fingerprint.py): HMAC of the text's sha256, or 'hash:' || HMAC of prompt_hash
    prompt_simhash     UBIGINT,           -- 64-bit SimHash of word tokens, keyed; NULL without text
    prompt_length      INTEGER,           -- characters; given, or measured from the text
    lines_accepted     INTEGER,
    tool_calls         INTEGER,
    commit_sha         VARCHAR,
    file_id            INTEGER NOT NULL,
    position           BIGINT NOT NULL
);

-- grain: one row per change (change_id)
CREATE TABLE IF NOT EXISTS changes (
    change_id      VARCHAR NOT NULL,
    repo           VARCHAR NOT NULL,
    author_id      VARCHAR,
    merged_at      TIMESTAMP,            -- NULL: not merged
    lines_added    BIGINT,
    lines_deleted  BIGINT,
    ai_session_ids VARCHAR[],
    commit_shas    VARCHAR[],
    file_id        INTEGER NOT NULL,
    position       BIGINT NOT NULL
);

-- grain: one row per deployment (deployment_id)
CREATE TABLE IF NOT EXISTS deployments (
    deployment_id VARCHAR NOT NULL,
    repo          VARCHAR NOT NULL,
    deployed_at   TIMESTAMP NOT NULL,
    status        VARCHAR NOT NULL,      -- 'success' | 'failure' | 'rolled_back'
    change_ids    VARCHAR[],
    file_id       INTEGER NOT NULL,
    position      BIGINT NOT NULL
);

-- grain: one row per review (review_id); optional dataset. change_id need not name a loaded change
CREATE TABLE IF NOT EXISTS reviews (
    review_id      VARCHAR NOT NULL,
    change_id      VARCHAR NOT NULL,     -- the change reviewed (may be another person's)
    reviewer_id    VARCHAR NOT NULL,     -- the reviewer's user_id (people aliases resolved after each load)
    submitted_at   TIMESTAMP NOT NULL,
    state          VARCHAR NOT NULL,     -- 'approved' | 'changes_requested' | 'commented'
    ai_session_ids VARCHAR[],            -- AI sessions the review names; NULL: none given
    comments       INTEGER,              -- review comments left
    file_id        INTEGER NOT NULL,
    position       BIGINT NOT NULL
);

-- grain: one row per commit (commit_sha); optional dataset: commits an AI coding tool tracked, with the lines it wrote
CREATE TABLE IF NOT EXISTS ai_commits (
    commit_sha       VARCHAR NOT NULL,   -- as given (adapters lowercase it); compare with lower() to changes.commit_shas
    repo             VARCHAR,            -- as the tool names it (Cursor: repoName), NULL: unknown
    user_id          VARCHAR,            -- who committed (people aliases resolved after each load)
    committed_at     TIMESTAMP,          -- NULL: unknown
    ai_lines_added   BIGINT,             -- lines the AI tool wrote that the commit added; NULL: unknown
    ai_lines_deleted BIGINT,
    lines_added      BIGINT,             -- all lines the commit added
    lines_deleted    BIGINT,
    tool             VARCHAR,            -- e.g. 'cursor'
    file_id          INTEGER NOT NULL,
    position         BIGINT NOT NULL
);

-- grain: one row per person (user_id)
CREATE TABLE IF NOT EXISTS people (
    user_id  VARCHAR NOT NULL,
    team     VARCHAR,
    org      VARCHAR,
    file_id  INTEGER NOT NULL,
    position BIGINT NOT NULL
);

-- grain: one row per model (model); overrides the default price table shipped in data/prices.csv
CREATE TABLE IF NOT EXISTS prices (
    model                VARCHAR NOT NULL,
    input_per_mtok       DOUBLE NOT NULL,
    output_per_mtok      DOUBLE NOT NULL,
    cache_read_per_mtok  DOUBLE,
    cache_write_per_mtok DOUBLE,
    file_id              INTEGER NOT NULL,
    position             BIGINT NOT NULL
);

-- grain: one row per input file ever loaded (content hash); a file with a known hash is skipped
CREATE TABLE IF NOT EXISTS loaded_files (
    file_id       INTEGER NOT NULL,
    run_id        VARCHAR NOT NULL,
    dataset       VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,
    bytes         BIGINT NOT NULL,
    rows_given    BIGINT NOT NULL,
    rows_loaded   BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    loaded_at     TIMESTAMP NOT NULL
);

-- grain: one row per input row that was not loaded
CREATE TABLE IF NOT EXISTS rejected_rows (
    run_id      VARCHAR NOT NULL,
    dataset     VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    position    BIGINT NOT NULL,         -- 1-based record number in the file (CSV header not counted); 0: the whole file
    raw         VARCHAR,                 -- the row as text (prompt text replaced by 'hmac:' || its fingerprint)
    reason      VARCHAR NOT NULL
);

-- grain: one row per (run, dataset): the loader's own count check
CREATE TABLE IF NOT EXISTS run_datasets (
    run_id        VARCHAR NOT NULL,
    dataset       VARCHAR NOT NULL,
    files_seen    INTEGER NOT NULL,
    files_loaded  INTEGER NOT NULL,      -- new files read this run
    files_skipped INTEGER NOT NULL,      -- already loaded with the same content
    rows_given    BIGINT NOT NULL,
    rows_loaded   BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    rows_unpriced BIGINT NOT NULL        -- token_usage rows loaded with a NULL cost
);

-- grain: one row per run
CREATE TABLE IF NOT EXISTS runs (
    run_id        VARCHAR NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP,
    status        VARCHAR NOT NULL,      -- 'running' | 'completed' | 'failed'
    input_dir     VARCHAR,
    inputs_seen   VARCHAR[],             -- every input file the run looked at
    files_loaded  INTEGER,
    files_skipped INTEGER,
    rows_given    BIGINT,
    rows_loaded   BIGINT,
    rows_rejected BIGINT,
    rows_unpriced BIGINT,
    config        JSON,                  -- the effective settings of the run
    code_version  VARCHAR,
    error         VARCHAR
);

-- grain: one row per analyst verdict on a flag (the latest per flag_id counts). Kept across runs.
CREATE TABLE IF NOT EXISTS verdicts (
    flag_id      VARCHAR NOT NULL,       -- flags.flag_id: stable for the level and subject
    evidence_key VARCHAR NOT NULL,       -- the detectors that raised the flag when it was judged
    verdict      VARCHAR NOT NULL,       -- 'confirmed' | 'legitimate' | 'unsure'
    note         VARCHAR,
    analyst      VARCHAR,
    recorded_at  TIMESTAMP NOT NULL,
    run_id       VARCHAR NOT NULL        -- the run whose flag was judged
);

-- Optional list fields kept in tables of their own (one row per id and value), so the raw tables
-- above keep their columns. Filled by the loader from contract files and source adapters alike.

-- grain: one row per (user_id, alias): other identities of a person (emails, logins, account ids)
CREATE TABLE IF NOT EXISTS people_aliases (
    user_id  VARCHAR NOT NULL,
    alias    VARCHAR NOT NULL,           -- matched case-insensitively; one identity belongs to one person
    file_id  INTEGER NOT NULL,
    position BIGINT NOT NULL
);

-- grain: one row per (change_id, coauthor): AI assistants named by Co-authored-by trailers
CREATE TABLE IF NOT EXISTS change_ai_coauthors (
    change_id VARCHAR NOT NULL,
    coauthor  VARCHAR NOT NULL,          -- e.g. 'Claude <noreply@anthropic.com>'
    file_id   INTEGER NOT NULL,
    position  BIGINT NOT NULL
);

-- grain: one row per (deployment_id, commit_sha): the commits a deployment names (GitHub, Four Keys);
-- after each load the deployment's change_ids gain the changes those commits identify
CREATE TABLE IF NOT EXISTS deployment_commits (
    deployment_id VARCHAR NOT NULL,
    commit_sha    VARCHAR NOT NULL,
    file_id       INTEGER NOT NULL,
    position      BIGINT NOT NULL
);

-- which adapter read a file ('contract' for a contract file); added after the first release
ALTER TABLE loaded_files ADD COLUMN IF NOT EXISTS source VARCHAR;

-- who ran each run and who recorded each verdict: the OS account and host (docs/security.md); added later
ALTER TABLE runs ADD COLUMN IF NOT EXISTS os_user VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS host VARCHAR;
ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS os_user VARCHAR;
ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS host VARCHAR;

-- grain: one row per bare repository name (a folder name a source gave, e.g. Claude Code's
-- workspace path 'billing') resolved to the one OWNER/NAME repository of the changes that ends
-- in it (pipeline/ingest/reconcile.py); file_id: the newest loaded file when it was resolved
CREATE TABLE IF NOT EXISTS resolved_repositories (
    name     VARCHAR NOT NULL,   -- lowercased
    repo     VARCHAR NOT NULL,
    file_id  INTEGER NOT NULL
);
