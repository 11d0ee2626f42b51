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
-- survive purges (TASKITO_METRICS_RETENTION prunes them; rows older than two hours are merged into one
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

-- A job's row before and after the statement are matched by grouping both sides by id, never by a join:
-- a plan cached while batches were small would otherwise match each row of a large batch against all of
-- them. A statement that leaves no row in an outcome (claims, leases, progress) returns at the EXISTS.
CREATE FUNCTION taskito_record_task_minutes() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status IN ('complete', 'failed', 'dead', 'cancelled')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum,
                                      wait_sum)
    SELECT floor(ended / 60)::bigint * 60, queue, task_name, outcome, taskito_runtime_le(runtime),
           taskito_runtime_le(wait), count(*), coalesce(sum(runtime), 0), coalesce(sum(wait), 0)
    FROM (SELECT ended, queue, task_name, outcome,
                 CASE WHEN outcome <> 'cancelled' AND started_at IS NOT NULL
                      THEN greatest(0.0, ended - started_at) END AS runtime,
                 CASE WHEN outcome <> 'cancelled' AND started_at IS NOT NULL
                      THEN greatest(0.0, started_at - due_at) END AS wait
          FROM (SELECT CASE WHEN max(new_status) IN ('complete', 'dead') AND max(finished_at) IS NOT NULL
                            THEN max(finished_at)
                            ELSE extract(epoch FROM clock_timestamp())::double precision END AS ended,
                       max(queue) AS queue, max(task_name) AS task_name, max(new_status) AS outcome,
                       max(started_at) AS started_at, max(old_scheduled_at) AS due_at
                FROM (SELECT id, NULL::text AS new_status, status AS old_status, NULL::text AS queue,
                             NULL::text AS task_name, NULL::double precision AS started_at,
                             NULL::double precision AS finished_at, scheduled_at AS old_scheduled_at
                      FROM old_rows
                      UNION ALL
                      SELECT id, status, NULL, queue, task_name, started_at, finished_at, NULL
                      FROM new_rows WHERE status IN ('complete', 'failed', 'dead', 'cancelled')) AS sides
                GROUP BY id
                HAVING count(new_status) = 1 AND count(old_status) = 1 AND max(old_status) <> max(new_status)
               ) AS changed
         ) AS attempts
    GROUP BY 1, queue, task_name, outcome, taskito_runtime_le(runtime), taskito_runtime_le(wait);
    RETURN NULL;
END
$$;
CREATE TRIGGER taskito_jobs_task_minutes AFTER UPDATE ON taskito_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_record_task_minutes();
