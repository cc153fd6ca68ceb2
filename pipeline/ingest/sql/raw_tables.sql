-- The loader's own bookkeeping tables (files loaded, rejected rows, runs, verdicts...). The raw
-- tables of the contract's datasets (token_usage, invocations, changes, deployments, reviews,
-- ai_commits, people, prices) and their side-list tables (people_aliases, change_ai_coauthors,
-- deployment_commits) are declared once in pipeline/ingest/contract.py, which creates them first.

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

-- which adapter read a file ('contract' for a contract file); added after the first release
ALTER TABLE loaded_files ADD COLUMN IF NOT EXISTS source VARCHAR;

-- the file's modification time (st_mtime_ns) when it was hashed, NULL when too recent to trust
-- (pipeline/ingest/load.py, `file_identity`): a later run takes a file whose path, bytes and
-- mtime_ns equal a row's as that row's content without reading it; added later
ALTER TABLE loaded_files ADD COLUMN IF NOT EXISTS mtime_ns BIGINT;

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
