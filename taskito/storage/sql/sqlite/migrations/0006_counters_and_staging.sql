-- taskito schema v6: counting is O(1), and large enqueues commit in chunks.
--
-- Counters. stats(), the dashboard and /metrics read small counter tables instead of counting the jobs
-- table. Triggers keep them in the transaction of every change of a job row (whoever makes it: taskito,
-- the reaper, a raw SQL statement), so they stay exact; `taskito check --repair` recounts them anyway.
-- taskito_counts has one row per queue, task, status as users see it (a claimed job is pending: so a
-- claim, the most frequent change, changes no counter) and, for completed jobs, run-time bucket:
-- runtime_le is the smallest bound of taskito_runtime_bounds at or above the run time
-- (finished_at - started_at; 9e999, infinity, above them all), 0 for a job with no run time (not
-- complete, or a time missing); runtime_sum adds up those run times.

CREATE TABLE taskito_runtime_bounds (le REAL PRIMARY KEY);
INSERT INTO taskito_runtime_bounds (le) VALUES (0.005), (0.01), (0.025), (0.05), (0.1), (0.25), (0.5), (1.0),
    (2.5), (5.0), (10.0), (30.0), (60.0), (120.0), (300.0), (600.0), (1800.0), (3600.0);

CREATE TABLE taskito_counts (
    queue       TEXT    NOT NULL,
    task_name   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    runtime_le  REAL    NOT NULL,
    n           INTEGER NOT NULL,
    runtime_sum REAL    NOT NULL,
    PRIMARY KEY (queue, task_name, status, runtime_le)
) WITHOUT ROWID;

INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
SELECT queue, task_name, status, le, count(*), total(seconds) FROM (
    SELECT queue, task_name, status, seconds,
           CASE WHEN seconds IS NULL THEN 0
                ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds WHERE le >= seconds), 9e999) END AS le
    FROM (SELECT queue, task_name, CASE status WHEN 'claimed' THEN 'pending' ELSE status END AS status,
                 CASE WHEN status = 'complete' THEN finished_at - started_at END AS seconds FROM taskito_jobs))
GROUP BY queue, task_name, status, le;

CREATE TRIGGER taskito_jobs_count_insert AFTER INSERT ON taskito_jobs
BEGIN
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    VALUES (NEW.queue, NEW.task_name, CASE NEW.status WHEN 'claimed' THEN 'pending' ELSE NEW.status END,
            CASE WHEN NEW.status = 'complete' AND NEW.finished_at - NEW.started_at IS NOT NULL
                 THEN coalesce((SELECT min(le) FROM taskito_runtime_bounds
                                WHERE le >= NEW.finished_at - NEW.started_at), 9e999) ELSE 0 END,
            1, CASE WHEN NEW.status = 'complete' THEN coalesce(NEW.finished_at - NEW.started_at, 0) ELSE 0 END)
    ON CONFLICT (queue, task_name, status, runtime_le)
    DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum;
END;

CREATE TRIGGER taskito_jobs_count_delete AFTER DELETE ON taskito_jobs
BEGIN
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    VALUES (OLD.queue, OLD.task_name, CASE OLD.status WHEN 'claimed' THEN 'pending' ELSE OLD.status END,
            CASE WHEN OLD.status = 'complete' AND OLD.finished_at - OLD.started_at IS NOT NULL
                 THEN coalesce((SELECT min(le) FROM taskito_runtime_bounds
                                WHERE le >= OLD.finished_at - OLD.started_at), 9e999) ELSE 0 END,
            -1, CASE WHEN OLD.status = 'complete' THEN -coalesce(OLD.finished_at - OLD.started_at, 0) ELSE 0 END)
    ON CONFLICT (queue, task_name, status, runtime_le)
    DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum;
END;

-- Only a change of what is counted fires it: claims, leases, progress and heartbeats cost nothing.
CREATE TRIGGER taskito_jobs_count_update
AFTER UPDATE OF status, queue, task_name, started_at, finished_at ON taskito_jobs
WHEN (CASE OLD.status WHEN 'claimed' THEN 'pending' ELSE OLD.status END)
         IS NOT (CASE NEW.status WHEN 'claimed' THEN 'pending' ELSE NEW.status END)
  OR OLD.queue IS NOT NEW.queue OR OLD.task_name IS NOT NEW.task_name
  OR (NEW.status = 'complete' AND (OLD.started_at IS NOT NEW.started_at OR OLD.finished_at IS NOT NEW.finished_at))
BEGIN
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    VALUES (OLD.queue, OLD.task_name, CASE OLD.status WHEN 'claimed' THEN 'pending' ELSE OLD.status END,
            CASE WHEN OLD.status = 'complete' AND OLD.finished_at - OLD.started_at IS NOT NULL
                 THEN coalesce((SELECT min(le) FROM taskito_runtime_bounds
                                WHERE le >= OLD.finished_at - OLD.started_at), 9e999) ELSE 0 END,
            -1, CASE WHEN OLD.status = 'complete' THEN -coalesce(OLD.finished_at - OLD.started_at, 0) ELSE 0 END)
    ON CONFLICT (queue, task_name, status, runtime_le)
    DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum;
    INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
    VALUES (NEW.queue, NEW.task_name, CASE NEW.status WHEN 'claimed' THEN 'pending' ELSE NEW.status END,
            CASE WHEN NEW.status = 'complete' AND NEW.finished_at - NEW.started_at IS NOT NULL
                 THEN coalesce((SELECT min(le) FROM taskito_runtime_bounds
                                WHERE le >= NEW.finished_at - NEW.started_at), 9e999) ELSE 0 END,
            1, CASE WHEN NEW.status = 'complete' THEN coalesce(NEW.finished_at - NEW.started_at, 0) ELSE 0 END)
    ON CONFLICT (queue, task_name, status, runtime_le)
    DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum;
END;

-- Failed attempts per task: each error row carries its job's task, so that it is counted (and
-- uncounted when purged) without its job, which may be deleted first.
ALTER TABLE taskito_job_errors ADD COLUMN task_name TEXT;
UPDATE taskito_job_errors SET task_name = (SELECT task_name FROM taskito_jobs j WHERE j.id = job_id);

CREATE TABLE taskito_failure_counts (
    task_name TEXT    PRIMARY KEY,
    n         INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO taskito_failure_counts (task_name, n)
SELECT task_name, count(*) FROM taskito_job_errors WHERE task_name IS NOT NULL GROUP BY task_name;

CREATE TRIGGER taskito_job_errors_count_insert AFTER INSERT ON taskito_job_errors WHEN NEW.task_name IS NOT NULL
BEGIN
    INSERT INTO taskito_failure_counts (task_name, n) VALUES (NEW.task_name, 1)
    ON CONFLICT (task_name) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER taskito_job_errors_count_delete AFTER DELETE ON taskito_job_errors WHEN OLD.task_name IS NOT NULL
BEGIN
    INSERT INTO taskito_failure_counts (task_name, n) VALUES (OLD.task_name, -1)
    ON CONFLICT (task_name) DO UPDATE SET n = n - 1;
END;

CREATE TRIGGER taskito_job_errors_count_update AFTER UPDATE OF task_name ON taskito_job_errors
WHEN OLD.task_name IS NOT NEW.task_name
BEGIN
    INSERT INTO taskito_failure_counts (task_name, n) SELECT OLD.task_name, -1 WHERE OLD.task_name IS NOT NULL
    ON CONFLICT (task_name) DO UPDATE SET n = n - 1;
    INSERT INTO taskito_failure_counts (task_name, n) SELECT NEW.task_name, 1 WHERE NEW.task_name IS NOT NULL
    ON CONFLICT (task_name) DO UPDATE SET n = n + 1;
END;

-- Staging. An enqueue too large for one short transaction writes its jobs in chunks, as 'staged'
-- rows that no worker claims, nothing lists and stats() does not count, with worker_id holding the
-- batch's id; then it publishes them (staged -> pending, in chunks too). taskito_batches records each
-- batch in progress: 'staging' until the writer has written every job (a failure then discards
-- them all), 'publishing' from then on (the jobs will all become claimable), 'discarding' while a
-- failed batch is deleted. The writer renews lease_until with every chunk; a batch whose writer
-- died (its lease ran out) is discarded or finished by the workers' maintenance.
CREATE TABLE taskito_batches (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    lease_until REAL NOT NULL
);
CREATE INDEX taskito_jobs_staged ON taskito_jobs (worker_id, seq) WHERE status = 'staged';
