-- taskito schema: control over running work.
-- cancel_requested: queue.cancel_job() on a claimed or running job asks its worker to stop it; the
-- worker looks for requests on its own jobs (the partial index keeps that lookup free).
-- max_concurrent / concurrency_key: a cap on the jobs of one task (and key) held at once, over every
-- worker; the claim counts the held jobs of a candidate's group through taskito_jobs_held_by_group.
-- start_after: the time slot a claim gave a job of a rate-limited task; taskito_rate_limits keeps,
-- per task, when the next slot begins, shared by the whole cluster.
-- Schedules: paused ones are skipped by every worker until resumed; last_run_at for the operator.
ALTER TABLE taskito_jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskito_jobs ADD COLUMN max_concurrent INTEGER;
ALTER TABLE taskito_jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE taskito_jobs ADD COLUMN start_after REAL;

CREATE INDEX taskito_jobs_cancel_requested ON taskito_jobs (worker_id) WHERE cancel_requested <> 0;
-- Jobs put back (or retried) after their cancellation was asked for: each claim cancels them; empty otherwise.
CREATE INDEX taskito_jobs_cancel_put_back ON taskito_jobs (seq)
    WHERE cancel_requested <> 0 AND status IN ('pending', 'failed');
-- Waiting capped jobs, by queue: a claim of queues that have none (the usual case) takes the plain path.
CREATE INDEX taskito_jobs_capped_waiting ON taskito_jobs (queue)
    WHERE max_concurrent IS NOT NULL AND status IN ('pending', 'failed');
CREATE INDEX taskito_jobs_held_by_group ON taskito_jobs (task_name, coalesce(concurrency_key, ''))
    WHERE status IN ('claimed', 'running');

CREATE TABLE taskito_rate_limits (
    task_name TEXT PRIMARY KEY,
    next_at   REAL NOT NULL
);

ALTER TABLE taskito_periodic ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskito_periodic ADD COLUMN last_run_at REAL;
