-- taskito schema: job logs, and per-task metrics by minute.
--
-- Job logs: the lines a task writes with current_job.log(), at most TASKITO_MAX_LOG_LINES per job
-- (the insert itself checks). They go with their job, whoever deletes it (a purge, delete_dead,
-- retry_dead, raw SQL): the statement trigger below, one call per statement however many jobs go.
CREATE TABLE taskito_job_logs (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    text             NOT NULL,
    logged_at double precision NOT NULL,
    level     text             NOT NULL,
    message   text             NOT NULL,
    extra     text                          -- a JSON object, or NULL
);
CREATE INDEX taskito_job_logs_job ON taskito_job_logs (job_id, id);

CREATE FUNCTION taskito_delete_job_logs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM taskito_job_logs WHERE job_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END
$$;
CREATE TRIGGER taskito_jobs_logs_delete AFTER DELETE ON taskito_jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION taskito_delete_job_logs();

-- Task minutes: what each task's attempts did, per minute, kept apart from the jobs so that they
-- survive purges (TASKITO_METRICS_RETENTION prunes them; rows older than a day are merged into one
-- row per hour). Keyed by minute (UNIX time of its start), queue, task, outcome (complete, failed:
-- an attempt that will be retried, dead, cancelled) and the run-time and wait-time buckets of
-- taskito_runtime_bounds() (taskito_runtime_le(): 0 when unknown). Wait: from scheduled_at (when the
-- job was due) to the start of the attempt.
-- As with the counters (v8), the trigger only appends rows, one per key a statement changed, so that
-- no worker waits on another's row lock; the workers' maintenance merges a past minute's rows into
-- one per key. It runs once per UPDATE statement, in the transaction that records the outcome.
CREATE TABLE taskito_task_minutes (
    minute      bigint           NOT NULL,
    queue       text             NOT NULL,
    task_name   text             NOT NULL,
    outcome     text             NOT NULL,
    runtime_le  double precision NOT NULL,
    wait_le     double precision NOT NULL,
    n           bigint           NOT NULL,
    runtime_sum double precision NOT NULL,
    wait_sum    double precision NOT NULL
);
CREATE INDEX taskito_task_minutes_minute ON taskito_task_minutes (minute);

CREATE FUNCTION taskito_record_task_minutes() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum,
                                      wait_sum)
    SELECT floor(ended / 60)::bigint * 60, queue, task_name, outcome, taskito_runtime_le(runtime),
           taskito_runtime_le(wait), count(*), coalesce(sum(runtime), 0), coalesce(sum(wait), 0)
    FROM (SELECT ended, queue, task_name, outcome,
                 CASE WHEN outcome <> 'cancelled' AND started_at IS NOT NULL
                      THEN greatest(0.0, ended - started_at) END AS runtime,
                 CASE WHEN outcome <> 'cancelled' AND started_at IS NOT NULL
                      THEN greatest(0.0, started_at - scheduled_at) END AS wait
          FROM (SELECT CASE WHEN n.status IN ('complete', 'dead') AND n.finished_at IS NOT NULL THEN n.finished_at
                            ELSE extract(epoch FROM clock_timestamp())::double precision END AS ended,
                       n.queue, n.task_name, n.status AS outcome, n.started_at, o.scheduled_at
                FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                WHERE n.status IN ('complete', 'failed', 'dead', 'cancelled') AND o.status <> n.status) AS ended
         ) AS attempts
    GROUP BY 1, queue, task_name, outcome, taskito_runtime_le(runtime), taskito_runtime_le(wait);
    RETURN NULL;
END
$$;
CREATE TRIGGER taskito_jobs_task_minutes AFTER UPDATE ON taskito_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_record_task_minutes();
