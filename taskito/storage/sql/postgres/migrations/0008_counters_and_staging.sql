-- taskito schema v8: counting is O(1), and large enqueues commit in chunks.
--
-- Counters. stats(), the dashboard and /metrics read small counter tables instead of counting the jobs
-- table. Triggers keep them in the transaction of every statement that changes job rows (whoever runs
-- it: taskito, the reaper, a raw SQL statement), so they stay exact; `taskito check --repair` recounts
-- them anyway. Counter rows are keyed by queue, task, status as users see it (a claimed job is pending:
-- so a claim, the most frequent change, adds no row) and, for completed jobs, run-time bucket: runtime_le is the smallest bound of taskito_runtime_bounds at or above the run time
-- (finished_at - started_at; infinity above them all), 0 for a job with no run time; runtime_sum adds
-- up those run times.
--
-- No hot row: every worker would queue on the row lock of a counter that each claim and completion
-- updates. The triggers only append rows (one per key a statement changed, with +n / -n), which take
-- no lock anyone waits for; readers add them up, and taskito_fold_counts() folds them into one row per
-- key every few hundred statements, so readers always add up a few thousand rows at most.
-- The triggers are per statement, over its transition tables: a claim of 50 jobs, a completion batch
-- (taskito_complete() below now completes its batch in one statement), a COPY of thousands or a purge
-- costs one trigger call, not one per row.

-- The bounds of the run-time histogram, sorted; a completed job's run time, else NULL; and the bucket it
-- falls in: the smallest bound at or above it (infinity above them all; 0: no run time). Plain
-- expressions, so that the planner inlines them into the triggers' statements.
CREATE FUNCTION taskito_runtime_bounds() RETURNS double precision[] LANGUAGE sql IMMUTABLE AS $$
    SELECT '{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
             1800.0, 3600.0}'::double precision[]
$$;

CREATE FUNCTION taskito_counted_status(p_status text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_status = 'claimed' THEN 'pending' ELSE p_status END
$$;

CREATE FUNCTION taskito_runtime(p_status text, p_started double precision, p_finished double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_status = 'complete' THEN p_finished - p_started END
$$;

-- width_bucket(x, bounds) is the number of bounds <= x: x itself if it is one, else the next one up.
CREATE FUNCTION taskito_runtime_le(p_seconds double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_seconds IS NULL THEN 0
                WHEN (taskito_runtime_bounds())[width_bucket(p_seconds, taskito_runtime_bounds())] = p_seconds
                    THEN p_seconds
                ELSE coalesce((taskito_runtime_bounds())[width_bucket(p_seconds, taskito_runtime_bounds()) + 1],
                              'Infinity') END
$$;

CREATE TABLE taskito_counts (
    queue       text             NOT NULL,
    task_name   text             NOT NULL,
    status      text             NOT NULL,
    runtime_le  double precision NOT NULL,
    n           bigint           NOT NULL,
    runtime_sum double precision NOT NULL
);

INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
SELECT queue, task_name, status, taskito_runtime_le(seconds), count(*), coalesce(sum(seconds), 0)
FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
      FROM taskito_jobs) AS jobs
GROUP BY queue, task_name, status, taskito_runtime_le(seconds);

-- Failed attempts per task: each error row carries its job's task, so that it is counted (and
-- uncounted when purged) without its job, which may be deleted first.
ALTER TABLE taskito_job_errors ADD COLUMN task_name text;
UPDATE taskito_job_errors AS e SET task_name = j.task_name FROM taskito_jobs AS j WHERE j.id = e.job_id;

CREATE TABLE taskito_failure_counts (
    task_name text   NOT NULL,
    n         bigint NOT NULL
);

INSERT INTO taskito_failure_counts (task_name, n)
SELECT task_name, count(*) FROM taskito_job_errors WHERE task_name IS NOT NULL GROUP BY task_name;

-- Fold the appended rows into one per key. Never waits: if another transaction is folding, this one
-- leaves it to that one. Rows appended meanwhile by transactions not committed yet are not seen, so
-- they stay as they are: the sums are exact at every moment.
CREATE FUNCTION taskito_fold_counts() RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF pg_try_advisory_xact_lock(hashtext('taskito counts'), hashtext(current_schema())) THEN
        WITH gone AS (DELETE FROM taskito_counts RETURNING *)
        INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
        SELECT queue, task_name, status, runtime_le, sum(n), sum(runtime_sum) FROM gone
        GROUP BY queue, task_name, status, runtime_le HAVING sum(n) <> 0;
        WITH gone AS (DELETE FROM taskito_failure_counts RETURNING *)
        INSERT INTO taskito_failure_counts (task_name, n)
        SELECT task_name, sum(n) FROM gone GROUP BY task_name HAVING sum(n) <> 0;
    END IF;
END
$$;

-- The trigger functions run with this schema's search_path whoever fires them (a psql session too).
CREATE FUNCTION taskito_count_inserted_jobs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    SELECT queue, task_name, status, taskito_runtime_le(seconds), count(*), coalesce(sum(seconds), 0)
    FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
          FROM new_rows) AS changed
    GROUP BY queue, task_name, status, taskito_runtime_le(seconds);
    IF random() < 0.002 THEN
        PERFORM taskito_fold_counts();
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION taskito_count_deleted_jobs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    SELECT queue, task_name, status, taskito_runtime_le(seconds), -count(*), -coalesce(sum(seconds), 0)
    FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
          FROM old_rows) AS changed
    GROUP BY queue, task_name, status, taskito_runtime_le(seconds);
    IF random() < 0.002 THEN
        PERFORM taskito_fold_counts();
    END IF;
    RETURN NULL;
END
$$;

-- Every UPDATE statement calls it (a statement trigger cannot look at columns first); one that changes
-- nothing counted (claims, leases, progress) adds nothing.
CREATE FUNCTION taskito_count_updated_jobs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    appended bigint;
BEGIN
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    SELECT queue, task_name, status, le, sum(n), sum(seconds)
    FROM (SELECT queue, task_name, status, taskito_runtime_le(seconds) AS le, -1 AS n,
                 -coalesce(seconds, 0) AS seconds
          FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
                FROM old_rows) AS o
          UNION ALL
          SELECT queue, task_name, status, taskito_runtime_le(seconds), 1, coalesce(seconds, 0)
          FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
                FROM new_rows) AS n) AS changed
    GROUP BY queue, task_name, status, le
    HAVING sum(n) <> 0 OR sum(seconds) <> 0;
    GET DIAGNOSTICS appended = ROW_COUNT;
    IF appended > 0 AND random() < 0.002 THEN
        PERFORM taskito_fold_counts();
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION taskito_count_truncated_jobs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM taskito_counts;
    RETURN NULL;
END
$$;

CREATE TRIGGER taskito_jobs_count_insert AFTER INSERT ON taskito_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_inserted_jobs();
CREATE TRIGGER taskito_jobs_count_delete AFTER DELETE ON taskito_jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_deleted_jobs();
CREATE TRIGGER taskito_jobs_count_update AFTER UPDATE ON taskito_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_updated_jobs();
CREATE TRIGGER taskito_jobs_count_truncate AFTER TRUNCATE ON taskito_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_truncated_jobs();

CREATE FUNCTION taskito_count_errors() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM taskito_failure_counts;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO taskito_failure_counts (task_name, n)
        SELECT task_name, count(*) FROM new_errors WHERE task_name IS NOT NULL GROUP BY task_name;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO taskito_failure_counts (task_name, n)
        SELECT task_name, -count(*) FROM old_errors WHERE task_name IS NOT NULL GROUP BY task_name;
    ELSE
        INSERT INTO taskito_failure_counts (task_name, n)
        SELECT task_name, sum(n) FROM (SELECT task_name, -1 AS n FROM old_errors
                                       UNION ALL SELECT task_name, 1 FROM new_errors) AS changed
        WHERE task_name IS NOT NULL GROUP BY task_name HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER taskito_job_errors_count_insert AFTER INSERT ON taskito_job_errors
    REFERENCING NEW TABLE AS new_errors FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_errors();
CREATE TRIGGER taskito_job_errors_count_delete AFTER DELETE ON taskito_job_errors
    REFERENCING OLD TABLE AS old_errors FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_errors();
CREATE TRIGGER taskito_job_errors_count_update AFTER UPDATE ON taskito_job_errors
    REFERENCING OLD TABLE AS old_errors NEW TABLE AS new_errors
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_errors();
CREATE TRIGGER taskito_job_errors_count_truncate AFTER TRUNCATE ON taskito_job_errors
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_count_errors();

-- Staging. An enqueue too large for one short transaction writes its jobs in chunks, as 'staged'
-- rows that no worker claims, nothing lists and stats() does not count, with worker_id holding the
-- batch's id; then it publishes them (staged -> pending, in chunks too). taskito_batches records each
-- batch in progress: 'staging' until the writer has written every job (a failure then discards
-- them all), 'publishing' from then on (the jobs will all become claimable), 'discarding' while a
-- failed batch is deleted. The writer renews lease_until with every chunk; a batch whose writer
-- died (its lease ran out) is discarded or finished by the workers' maintenance.
CREATE TABLE taskito_batches (
    id          text             PRIMARY KEY,
    state       text             NOT NULL,
    lease_until double precision NOT NULL
);
CREATE INDEX taskito_jobs_staged ON taskito_jobs (worker_id, seq) WHERE status = 'staged';

-- Record a batch of successful attempts (those still holding their job) and release the jobs that
-- depended on them; returns the ids completed and how many dependents became claimable. As in v4,
-- but the batch is completed by one statement: the counting trigger then runs once per batch, not
-- once per job. Its cached generic plan looks the jobs up by id (sequential scans are off here, so no
-- plan made while the table was small can scan it), joined to the batch's arrays.
-- Relaxed commit as for claims: a completion lost in a server crash means the job runs again.
-- It sends no NOTIFY itself (a transaction that notifies waits for the WAL flush after all):
-- the caller notifies right after, in a statement of its own.
CREATE OR REPLACE FUNCTION taskito_complete(p_ids text[], p_attempts integer[], p_results bytea[],
                                            p_started double precision[], p_finished double precision[],
                                            p_now double precision)
RETURNS TABLE (completed text[], released integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
DECLARE
    dependent text;
    finished_deps bigint;
    remaining integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    released := 0;
    WITH done AS (
        UPDATE taskito_jobs AS j
        SET status = 'complete', result = batch.result, started_at = coalesce(batch.started, j.started_at),
            finished_at = coalesce(batch.finished, p_now), lease_until = NULL, error = NULL
        FROM unnest(p_ids, p_attempts, p_results, p_started, p_finished)
             AS batch(id, attempt, result, started, finished)
        WHERE j.id = ANY(p_ids) AND j.id = batch.id AND j.attempt = batch.attempt
          AND j.status IN ('claimed', 'running')
        RETURNING j.id
    )
    SELECT coalesce(array_agg(id), '{}') INTO completed FROM done;
    -- A separate statement, hence a fresh snapshot: it also sees dependents whose enqueue
    -- committed while the update above waited for their FOR SHARE lock on a dependency.
    FOR dependent, finished_deps IN
        SELECT job_id, count(*) FROM taskito_job_deps WHERE depends_on = ANY(completed) GROUP BY job_id
    LOOP
        UPDATE taskito_jobs SET waiting_deps = greatest(waiting_deps - finished_deps, 0)
        WHERE id = dependent AND waiting_deps > 0
        RETURNING waiting_deps INTO remaining;
        IF FOUND AND remaining = 0 THEN
            released := released + 1;
        END IF;
    END LOOP;
    RETURN NEXT;
END
$$;
