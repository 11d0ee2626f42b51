-- taskito schema (SQLite): workflows (chain, group, chord) that advance in the database.
--
-- A workflow is a list of stages run one after the other; a stage is one job (a chain step, a chord's
-- callback) or several that run at once (a group, a chord's header). Every job of every stage is
-- written when the workflow is sent, the jobs of later stages held back by waiting_deps = 1. Each
-- stage has a counter row: the completion of a member decrements it, in the transaction that marks
-- the member complete, and the completion that takes it to 0 releases the next stage (or finishes the
-- workflow). One row per stage: O(1) per member, and exactly one completion sees 0.
-- A stage's members read the results of the stage before them when they start (wf_chained).
-- The error callback (on_error) is stored as a 'staged' job (invisible, never claimed) at stage -1,
-- released once if a step dies, deleted when the workflow completes or is cancelled.

CREATE TABLE taskito_workflows (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,   -- chain, group or chord: what result() returns
    status        TEXT NOT NULL,   -- running, complete, failed or cancelled (running before any step started reads as pending)
    stages        INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    finished_at   REAL,
    failed_job_id TEXT,            -- the step that died (failed), for on_error and the views
    error         TEXT
);

CREATE TABLE taskito_workflow_stages (
    workflow_id TEXT    NOT NULL,
    stage       INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    remaining   INTEGER NOT NULL,  -- members not complete yet
    is_group    INTEGER NOT NULL,  -- its result is a list (a group's), even of one member
    PRIMARY KEY (workflow_id, stage)
) WITHOUT ROWID;

ALTER TABLE taskito_jobs ADD COLUMN workflow_id TEXT;
ALTER TABLE taskito_jobs ADD COLUMN wf_stage INTEGER;
ALTER TABLE taskito_jobs ADD COLUMN wf_member INTEGER;
-- 1: the previous stage's result is the first argument; 2: args is a list of argument lists, one call each
ALTER TABLE taskito_jobs ADD COLUMN wf_mode INTEGER NOT NULL DEFAULT 0;

CREATE INDEX taskito_jobs_workflow ON taskito_jobs (workflow_id, wf_stage, wf_member) WHERE workflow_id IS NOT NULL;
