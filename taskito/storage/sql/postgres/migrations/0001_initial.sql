-- taskito schema v1 for PostgreSQL. Times are UNIX timestamps (double precision seconds),
-- as on SQLite, so the orchestration in sqlbase.py is shared by both engines.
-- Run with search_path set to the configured schema: nothing here names the schema, so every
-- table, index and function lands in it and `pg_dump -n <schema>` is a complete backup.

CREATE TABLE taskito_jobs (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- enqueue order
    id           text             NOT NULL UNIQUE,
    task_name    text             NOT NULL,
    queue        text             NOT NULL,
    status       text             NOT NULL,
    priority     integer          NOT NULL DEFAULT 0,
    payload      bytea            NOT NULL,
    result       bytea,
    error        text,
    retry_count  integer          NOT NULL DEFAULT 0,
    max_retries  integer,                              -- NULL: the task's own setting
    timeout      double precision,
    attempt      integer          NOT NULL DEFAULT 0,  -- fencing token: bumped by every claim
    progress     double precision,
    unique_key   text,
    waiting_deps integer          NOT NULL DEFAULT 0,  -- dependencies not complete yet
    created_at   double precision NOT NULL,
    scheduled_at double precision NOT NULL,
    expires_at   double precision,
    started_at   double precision,
    finished_at  double precision,
    lease_until  double precision,
    worker_id    text
);

CREATE INDEX taskito_jobs_ready ON taskito_jobs (priority DESC, scheduled_at, seq)
    WHERE status IN ('pending', 'failed') AND waiting_deps = 0;
CREATE INDEX taskito_jobs_status_queue ON taskito_jobs (status, queue, task_name);
CREATE INDEX taskito_jobs_finished ON taskito_jobs (status, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX taskito_jobs_lease ON taskito_jobs (lease_until) WHERE status = 'running';
CREATE INDEX taskito_jobs_worker ON taskito_jobs (worker_id) WHERE status = 'running';
CREATE INDEX taskito_jobs_expiry ON taskito_jobs (expires_at)
    WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL;
CREATE UNIQUE INDEX taskito_jobs_unique ON taskito_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'failed', 'running');

CREATE TABLE taskito_job_deps (
    depends_on text NOT NULL,
    job_id     text NOT NULL,
    PRIMARY KEY (depends_on, job_id)
);
CREATE INDEX taskito_job_deps_job ON taskito_job_deps (job_id);

CREATE TABLE taskito_job_errors (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    text             NOT NULL,
    attempt   integer          NOT NULL,
    error     text             NOT NULL,
    traceback text,
    failed_at double precision NOT NULL
);
CREATE INDEX taskito_job_errors_job ON taskito_job_errors (job_id);

CREATE TABLE taskito_paused_queues (
    name      text PRIMARY KEY,
    paused_at double precision NOT NULL
);

CREATE TABLE taskito_workers (
    id             text PRIMARY KEY,
    hostname       text             NOT NULL,
    pid            integer          NOT NULL,
    queues         text             NOT NULL,
    concurrency    integer          NOT NULL,
    started_at     double precision NOT NULL,
    last_heartbeat double precision NOT NULL
);

CREATE TABLE taskito_periodic (
    name        text PRIMARY KEY,
    task_name   text             NOT NULL,
    cron        text             NOT NULL,
    timezone    text,
    payload     bytea            NOT NULL,
    queue       text             NOT NULL,
    next_run_at double precision NOT NULL
);

-- Every statement that inserts jobs wakes idle workers: NOTIFY on "<schema>_work", delivered
-- at commit. The channel follows the table's schema, so a restored copy keeps working.
CREATE FUNCTION taskito_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_work', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER taskito_jobs_inserted AFTER INSERT ON taskito_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION taskito_notify_work();

-- The statements a busy worker runs most, as functions: one round trip each instead of a
-- BEGIN ... COMMIT exchange of four or more, and every statement inside takes a fresh snapshot.
-- They run with search_path set to this schema (current_schema() names it). Their statements
-- are written so that the cached generic plan is a good one (index lookups by id), and they
-- force it: otherwise PostgreSQL keeps re-planning them on every call, which costs more than
-- running them.

-- A job ended without success (cancelled, dead, expired): cancel what depends on it, in
-- cascade, and wake result() waiters.
CREATE FUNCTION taskito_cancel_dependents(p_id text, p_reason text, p_now double precision)
RETURNS integer LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    cancelled integer;
BEGIN
    WITH RECURSIVE doomed(id) AS (
        SELECT job_id FROM taskito_job_deps WHERE depends_on = p_id
        UNION
        SELECT d.job_id FROM taskito_job_deps d JOIN doomed ON d.depends_on = doomed.id
    )
    UPDATE taskito_jobs
    SET status = 'cancelled', error = p_reason, finished_at = p_now
    WHERE id = ANY(ARRAY(SELECT id FROM doomed)) AND status IN ('pending', 'failed');
    GET DIAGNOSTICS cancelled = ROW_COUNT;
    PERFORM pg_notify(current_schema() || '_done', '');
    RETURN cancelled;
END
$$;

-- Cancel expired jobs, then claim up to p_limit due jobs in priority order. Rows another
-- worker is claiming are skipped, never waited for. The claim is the worker's bookkeeping:
-- lost in a server crash before its WAL flush, the job merely runs again (at-least-once), so
-- the commit does not wait for the flush.
CREATE FUNCTION taskito_claim(p_worker_id text, p_queues text[], p_now double precision,
                              p_lease_until double precision, p_limit integer)
RETURNS SETOF taskito_jobs LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    expired_id text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR expired_id IN
        UPDATE taskito_jobs
        SET status = 'cancelled', error = 'expired before it started', finished_at = p_now
        WHERE id = ANY(ARRAY(
            SELECT id FROM taskito_jobs
            WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL AND expires_at < p_now
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING id
    LOOP
        PERFORM taskito_cancel_dependents(expired_id, 'dependency ' || expired_id || ' expired', p_now);
    END LOOP;
    -- "id = ANY(ARRAY(...))" rather than a join: the plan stays an index lookup per claimed
    -- row even when the cached generic plan cannot know how small the batch is.
    RETURN QUERY
    UPDATE taskito_jobs AS j
    SET status = 'running', attempt = j.attempt + 1, worker_id = p_worker_id,
        started_at = p_now, lease_until = p_lease_until
    WHERE j.id = ANY(ARRAY(
        SELECT id FROM taskito_jobs
        WHERE status IN ('pending', 'failed') AND waiting_deps = 0
          AND scheduled_at <= p_now
          AND (expires_at IS NULL OR expires_at >= p_now)
          AND queue = ANY(p_queues)
          AND queue NOT IN (SELECT name FROM taskito_paused_queues)
        ORDER BY priority DESC, scheduled_at, seq
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING j.*;
END
$$;

-- Record a batch of successful attempts (those still holding their job) and release the jobs
-- that depended on them; returns the ids completed and how many dependents became claimable.
-- Relaxed commit as for claims: a completion lost in a server crash means the job runs again.
-- It sends no NOTIFY itself (a transaction that notifies waits for the WAL flush after all):
-- the caller notifies right after, in a statement of its own.
CREATE FUNCTION taskito_complete(p_ids text[], p_attempts integer[], p_results bytea[],
                                 p_now double precision)
RETURNS TABLE (completed text[], released integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    done_id text;
    dependent text;
    finished_deps bigint;
    remaining integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    completed := '{}';
    released := 0;
    -- Lookups by id, one row at a time: set-based statements over the arrays tempt the cached
    -- generic plan into scanning every running job.
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        UPDATE taskito_jobs
        SET status = 'complete', result = p_results[i], finished_at = p_now, lease_until = NULL, error = NULL
        WHERE id = p_ids[i] AND attempt = p_attempts[i] AND status = 'running'
        RETURNING id INTO done_id;
        IF FOUND THEN
            completed := completed || done_id;
        END IF;
    END LOOP;
    -- A separate statement, hence a fresh snapshot: it also sees dependents whose enqueue
    -- committed while the updates above waited for their FOR SHARE lock on a dependency.
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
