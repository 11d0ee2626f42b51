-- taskito schema v1 for SQLite. Times are UNIX timestamps (REAL seconds).

CREATE TABLE taskito_jobs (
    seq          INTEGER PRIMARY KEY,          -- enqueue order
    id           TEXT    NOT NULL UNIQUE,
    task_name    TEXT    NOT NULL,
    queue        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    payload      BLOB    NOT NULL,
    result       BLOB,
    error        TEXT,
    retry_count  INTEGER NOT NULL DEFAULT 0,
    max_retries  INTEGER,                      -- NULL: the task's own setting
    timeout      REAL,
    attempt      INTEGER NOT NULL DEFAULT 0,   -- fencing token: bumped by every claim
    progress     REAL,
    unique_key   TEXT,
    waiting_deps INTEGER NOT NULL DEFAULT 0,   -- dependencies not complete yet
    created_at   REAL    NOT NULL,
    scheduled_at REAL    NOT NULL,
    expires_at   REAL,
    started_at   REAL,
    finished_at  REAL,
    lease_until  REAL,
    worker_id    TEXT
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
    depends_on TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    PRIMARY KEY (depends_on, job_id)
) WITHOUT ROWID;
CREATE INDEX taskito_job_deps_job ON taskito_job_deps (job_id);

CREATE TABLE taskito_job_errors (
    id        INTEGER PRIMARY KEY,
    job_id    TEXT    NOT NULL,
    attempt   INTEGER NOT NULL,
    error     TEXT    NOT NULL,
    traceback TEXT,
    failed_at REAL    NOT NULL
);
CREATE INDEX taskito_job_errors_job ON taskito_job_errors (job_id);

CREATE TABLE taskito_paused_queues (
    name      TEXT PRIMARY KEY,
    paused_at REAL NOT NULL
);

CREATE TABLE taskito_workers (
    id             TEXT PRIMARY KEY,
    hostname       TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    queues         TEXT NOT NULL,
    concurrency    INTEGER NOT NULL,
    started_at     REAL NOT NULL,
    last_heartbeat REAL NOT NULL
);

CREATE TABLE taskito_periodic (
    name        TEXT PRIMARY KEY,
    task_name   TEXT NOT NULL,
    cron        TEXT NOT NULL,
    timezone    TEXT,
    payload     BLOB NOT NULL,
    queue       TEXT NOT NULL,
    next_run_at REAL NOT NULL
);
