-- taskito schema: job logs, and per-task metrics by minute.
--
-- Job logs: the lines a task writes with current_job.log(), at most TASKITO_MAX_LOG_LINES per job
-- (the insert itself checks). They go with their job, whoever deletes it (a purge, delete_dead,
-- retry_dead, raw SQL): the trigger below.
CREATE TABLE taskito_job_logs (
    id        INTEGER PRIMARY KEY,
    job_id    TEXT    NOT NULL,
    logged_at REAL    NOT NULL,
    level     TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    extra     TEXT                 -- a JSON object, or NULL
);
CREATE INDEX taskito_job_logs_job ON taskito_job_logs (job_id, id);

CREATE TRIGGER taskito_jobs_logs_delete AFTER DELETE ON taskito_jobs
BEGIN
    DELETE FROM taskito_job_logs WHERE job_id = OLD.id;
END;

-- Task minutes: what each task's attempts did, per minute, kept apart from the jobs so that they
-- survive purges (TASKITO_METRICS_RETENTION prunes them; rows older than two hours are merged into one
-- row per hour). One row per minute (UNIX time of its start), queue, task, outcome (complete,
-- failed: an attempt that will be retried, dead, cancelled) and the run-time and wait-time buckets of
-- taskito_runtime_bounds (runtime_le / wait_le: the smallest bound at or above; 9e999 above them all;
-- 0 when unknown). Wait: from scheduled_at (when the job was due) to the start of the attempt.
-- They are written in the transaction that records the outcome: completions by one statement per batch
-- (record_completions in queries.sql: a trigger's upsert per job would cost the drain several percent),
-- the rarer outcomes by the trigger below; claims, leases and progress cost nothing.
CREATE TABLE taskito_task_minutes (
    minute      INTEGER NOT NULL,
    queue       TEXT    NOT NULL,
    task_name   TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    runtime_le  REAL    NOT NULL,
    wait_le     REAL    NOT NULL,
    n           INTEGER NOT NULL,
    runtime_sum REAL    NOT NULL,
    wait_sum    REAL    NOT NULL,
    PRIMARY KEY (minute, queue, task_name, outcome, runtime_le, wait_le)
) WITHOUT ROWID;

CREATE TRIGGER taskito_jobs_task_minutes AFTER UPDATE OF status ON taskito_jobs
WHEN NEW.status IN ('failed', 'dead', 'cancelled') AND OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum,
                                      wait_sum)
    SELECT CAST(ended / 60 AS INTEGER) * 60, NEW.queue, NEW.task_name, NEW.status,
           CASE WHEN runtime IS NULL THEN 0
                ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds WHERE le >= runtime), 9e999) END,
           CASE WHEN wait IS NULL THEN 0
                ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds WHERE le >= wait), 9e999) END,
           1, coalesce(runtime, 0), coalesce(wait, 0)
    FROM (SELECT ended,
                 CASE WHEN NEW.status <> 'cancelled' AND NEW.started_at IS NOT NULL
                      THEN max(0.0, ended - NEW.started_at) END AS runtime,
                 CASE WHEN NEW.status <> 'cancelled' AND NEW.started_at IS NOT NULL
                      THEN max(0.0, NEW.started_at - OLD.scheduled_at) END AS wait
          FROM (SELECT CASE WHEN NEW.status = 'dead' AND NEW.finished_at IS NOT NULL
                            THEN NEW.finished_at
                            ELSE (julianday('now') - 2440587.5) * 86400.0 END AS ended))
    WHERE true
    ON CONFLICT (minute, queue, task_name, outcome, runtime_le, wait_le)
    DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum,
                  wait_sum = wait_sum + excluded.wait_sum;
END;
