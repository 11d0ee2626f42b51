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
