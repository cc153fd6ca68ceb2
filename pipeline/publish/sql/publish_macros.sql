-- kind: macros
-- Temporary macros of the score tables' models.

-- Whether a week is one this publish rebuilds (pipeline.publish.scores sets `republish_weeks` for
-- an incremental run; unset: every week).
CREATE OR REPLACE TEMP MACRO republished_week(week) AS
    getvariable('republish_weeks') IS NULL OR list_contains(CAST(getvariable('republish_weeks') AS DATE[]), week);
