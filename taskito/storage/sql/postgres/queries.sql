-- Named statements of the PostgreSQL engine: the same names as the SQLite engine's, with
-- %(name)s parameters (expire_jobs and release_dependents are part of the taskito_claim() and
-- taskito_complete() functions of the migration here). Connections run with search_path set to the configured schema, so no
-- statement names it. Lists arrive as text[] parameters.

-- name: insert_job
-- A job already stored under its id (a retry after a commit whose answer was lost) stays as it is.
-- A job due later is delayed: out of the claim index until a claim of its queue finds it due.
INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                          unique_key, waiting_deps, created_at, scheduled_at, expires_at, delayed)
VALUES (%(id)s, %(task_name)s, %(queue)s, 'pending', %(priority)s, %(payload)s, %(max_retries)s, %(timeout)s,
        %(unique_key)s, %(waiting_deps)s, %(created_at)s, %(scheduled_at)s, %(expires_at)s,
        %(scheduled_at)s > %(created_at)s)
ON CONFLICT (id) DO NOTHING;

-- name: copy_jobs
-- Batch enqueue (postgres only): one COPY per batch; the insert trigger notifies workers once.
COPY taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                   unique_key, waiting_deps, created_at, scheduled_at, expires_at, delayed) FROM STDIN;

-- name: count_ids
-- How many of these job ids are stored (postgres only: a retried COPY batch checks it went in).
SELECT count(*) FROM taskito_jobs WHERE id = ANY(%(ids)s::text[]);

-- name: insert_dep
INSERT INTO taskito_job_deps (depends_on, job_id) VALUES (%(depends_on)s, %(job_id)s)
ON CONFLICT DO NOTHING;

-- name: lock_unique
-- Serializes enqueuers of one unique_key (postgres only) until the first one commits.
SELECT pg_advisory_xact_lock(hashtext(%(namespace)s), hashtext(%(unique_key)s));

-- name: find_unique
SELECT id FROM taskito_jobs
WHERE unique_key = %(unique_key)s AND status IN ('pending', 'failed', 'claimed', 'running');

-- name: dep_statuses
-- FOR SHARE: a dependency cannot finish between this read and our commit, so the dependent's
-- waiting_deps count and the release in `complete` never miss each other.
SELECT id, status FROM taskito_jobs WHERE id = ANY(%(ids)s::text[]) FOR SHARE;

-- name: cancel_dependents
-- taskito_cancel_dependents() in the schema; it also notifies result() waiters.
SELECT taskito_cancel_dependents(%(id)s, %(reason)s, %(now)s);

-- name: claim
-- taskito_claim() in the schema also cancels expired jobs and lets delayed jobs that came due join
-- the claim index first (one round trip). The jobs are claimed, not running: the worker marks the
-- start (`start`) when the function is called.
SELECT * FROM taskito_claim(%(worker_id)s, %(queues)s::text[], %(now)s, %(lease_until)s, %(limit)s);

-- name: next_due
SELECT scheduled, expires FROM taskito_next_due(%(queues)s::text[]);

-- name: release_claim
-- Put back a batch whose claim committed while the connection broke (postgres only). Its jobs
-- are the ones this worker claimed with that lease, never started (the worker never saw them).
UPDATE taskito_jobs
SET status = 'pending', worker_id = NULL, lease_until = NULL
WHERE worker_id = %(worker_id)s AND lease_until = %(lease_until)s AND status = 'claimed';

-- name: start
UPDATE taskito_jobs SET status = 'running', started_at = %(started_at)s
WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = 'claimed';

-- name: complete
-- A whole batch at once (postgres takes arrays here), with its dependents' release. Each
-- completion carries its attempt's start and finish (NULL: keep the start, finish now).
-- The arrays go in binary format: adapting them as text costs the worker more CPU than the rest.
SELECT * FROM taskito_complete(%(ids)b::text[], %(attempts)b::integer[], %(results)b::bytea[],
                               %(started)b::double precision[], %(finished)b::double precision[], %(now)s);

-- name: notify
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: fail_retry
UPDATE taskito_jobs
SET status = 'failed', error = %(error)s, retry_count = retry_count + 1,
    started_at = COALESCE(%(started_at)s::double precision, started_at),
    scheduled_at = %(scheduled_at)s, delayed = %(scheduled_at)s > %(now)s, lease_until = NULL, worker_id = NULL
WHERE id = %(job_id)s AND attempt = %(attempt)s AND status IN ('claimed', 'running');

-- name: fail_dead
UPDATE taskito_jobs
SET status = 'dead', error = %(error)s, started_at = COALESCE(%(started_at)s::double precision, started_at),
    finished_at = %(now)s, lease_until = NULL
WHERE id = %(job_id)s AND attempt = %(attempt)s AND status IN ('claimed', 'running');

-- name: insert_error
INSERT INTO taskito_job_errors (job_id, attempt, error, traceback, failed_at)
VALUES (%(job_id)s, %(attempt)s, %(error)s, %(traceback)s, %(now)s);

-- name: requeue
UPDATE taskito_jobs
SET status = 'pending', worker_id = NULL, lease_until = NULL, started_at = NULL,
    scheduled_at = COALESCE(%(not_before)s::double precision, scheduled_at),
    delayed = COALESCE(%(not_before)s::double precision > %(now)s, false)
WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND status IN ('claimed', 'running');

-- name: set_progress
UPDATE taskito_jobs SET progress = %(progress)s WHERE id = %(job_id)s;

-- name: cancel_job
UPDATE taskito_jobs
SET status = 'cancelled', error = 'cancelled', finished_at = %(now)s
WHERE id = %(job_id)s AND status IN ('pending', 'failed')
RETURNING id;

-- name: get_job
-- With the ids it depends on, so that reading a job is one round trip.
SELECT j.*, ARRAY(SELECT d.depends_on FROM taskito_job_deps d WHERE d.job_id = j.id ORDER BY d.depends_on)
            AS depends_on
FROM taskito_jobs j WHERE j.id = %(job_id)s;

-- name: list_jobs
-- Partial rows: the payload cut here to its first "head" bytes (PostgreSQL reads only the start of a
-- large value), its full length, the error cut to as many characters, and no result, so a listing of
-- jobs with megabytes of arguments reads kilobytes. Claimed jobs (not started yet) are listed as pending.
-- The filters asked for (list_jobs_by_*, joined with AND) replace the marker. Each has an index in
-- seq order, so a page filtered by one reads about as many rows as it shows, whatever the table
-- holds; with several, one index leads and the others filter the rows it yields.
SELECT id, task_name, queue, status, priority, substring(payload FROM 1 FOR %(head)s) AS payload,
       octet_length(payload) AS payload_size,
       CASE WHEN length(error) > %(head)s THEN substring(error FROM 1 FOR %(head)s) || '…' ELSE error END
           AS error,
       retry_count, max_retries, timeout, attempt, progress, unique_key, created_at, scheduled_at,
       expires_at, started_at, finished_at, worker_id
FROM taskito_jobs
WHERE /* filters */
ORDER BY seq DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: list_jobs_by_status
-- The status users see: the expression of the index taskito_jobs_listed_by_status, word for word.
(CASE status WHEN 'claimed' THEN 'pending' ELSE status END) = %(status)s::text

-- name: list_jobs_by_queue
queue = %(queue)s::text

-- name: list_jobs_by_task
task_name = %(task_name)s::text

-- name: job_errors
SELECT attempt, error, traceback, failed_at FROM taskito_job_errors
WHERE job_id = %(job_id)s ORDER BY id;

-- name: stats
SELECT status, count(*) FROM taskito_jobs
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY status;

-- name: stats_all_queues
SELECT queue, status, count(*) FROM taskito_jobs GROUP BY queue, status;

-- name: delete_job
DELETE FROM taskito_jobs WHERE id = %(job_id)s AND status = %(status)s RETURNING id;

-- name: delete_job_details
DELETE FROM taskito_job_errors WHERE job_id = %(job_id)s;

-- name: purge_errors
DELETE FROM taskito_job_errors WHERE job_id IN (
    SELECT id FROM taskito_jobs WHERE status = %(status)s AND finished_at < %(before)s);

-- name: purge_deps
DELETE FROM taskito_job_deps WHERE depends_on IN (
    SELECT id FROM taskito_jobs WHERE status = %(status)s AND finished_at < %(before)s);

-- name: purge_jobs
DELETE FROM taskito_jobs WHERE status = %(status)s AND finished_at < %(before)s;

-- name: expired_leases
SELECT * FROM taskito_jobs WHERE status IN ('claimed', 'running') AND lease_until < %(now)s;

-- name: pause
INSERT INTO taskito_paused_queues (name, paused_at) VALUES (%(name)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: resume
DELETE FROM taskito_paused_queues WHERE name = %(name)s;

-- name: paused_queues
SELECT name FROM taskito_paused_queues ORDER BY name;

-- name: register_worker
-- Worker rows are timed by the server's clock and stamped with where they were written (see the
-- migration to version 5 and `workers`); search_path makes 'taskito_workers' this schema's table.
INSERT INTO taskito_workers (id, hostname, pid, queues, concurrency, started_at, last_heartbeat,
                             written_in, server_started)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s, extract(epoch FROM now()),
        extract(epoch FROM now()), 'taskito_workers'::regclass, extract(epoch FROM pg_postmaster_start_time()))
ON CONFLICT (id) DO UPDATE SET
    hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, started_at = excluded.started_at,
    last_heartbeat = excluded.last_heartbeat, written_in = excluded.written_in,
    server_started = excluded.server_started;

-- name: heartbeat_worker
UPDATE taskito_workers
SET last_heartbeat = extract(epoch FROM now()), written_in = tableoid,
    server_started = extract(epoch FROM pg_postmaster_start_time())
WHERE id = %(worker_id)s;

-- name: renew_leases
-- Rows locked right now are being completed or failed: skipping them cannot deadlock with
-- the completion writer, which locks the same worker's rows in another order.
UPDATE taskito_jobs SET lease_until = %(lease_until)s
WHERE id = ANY(ARRAY(
    SELECT id FROM taskito_jobs
    WHERE worker_id = %(worker_id)s AND status IN ('claimed', 'running') AND id = ANY(%(ids)s)
    FOR UPDATE SKIP LOCKED
));

-- name: unregister_worker
DELETE FROM taskito_workers WHERE id = %(worker_id)s;

-- name: forget_stale_workers
DELETE FROM taskito_workers WHERE last_heartbeat < extract(epoch FROM now()) - %(forget_after)s;

-- name: workers
-- Live: a recent heartbeat by the server's clock, written into this very table through this very
-- server. A row restored from a dump fails the last two (another table, or another server), so a
-- restored copy never shows its workers; after a server restart a live worker shows again at its
-- next heartbeat.
SELECT w.*, (SELECT count(*) FROM taskito_jobs j
             WHERE j.worker_id = w.id AND j.status = 'running') AS running
FROM taskito_workers w
WHERE w.last_heartbeat >= extract(epoch FROM now()) - %(alive_within)s
  AND w.written_in = w.tableoid
  AND w.server_started = extract(epoch FROM pg_postmaster_start_time())
ORDER BY w.started_at;

-- name: upsert_periodic
INSERT INTO taskito_periodic (name, task_name, cron, timezone, payload, queue, next_run_at)
VALUES (%(name)s, %(task_name)s, %(cron)s, %(timezone)s, %(payload)s, %(queue)s, %(next_run_at)s)
ON CONFLICT (name) DO UPDATE SET
    task_name = excluded.task_name, payload = excluded.payload, queue = excluded.queue,
    next_run_at = CASE WHEN taskito_periodic.cron = excluded.cron
                        AND taskito_periodic.timezone IS NOT DISTINCT FROM excluded.timezone
                       THEN taskito_periodic.next_run_at ELSE excluded.next_run_at END,
    cron = excluded.cron, timezone = excluded.timezone;

-- name: due_periodic
SELECT name, task_name, cron, payload, queue, timezone, next_run_at
FROM taskito_periodic WHERE next_run_at <= %(now)s;

-- name: advance_periodic
UPDATE taskito_periodic SET next_run_at = %(new_next)s
WHERE name = %(name)s AND next_run_at = %(expected_next)s;

-- name: task_status_counts
-- Monitoring (the dashboard's /metrics and throughput chart), over the rows still retained.
SELECT task_name, status, count(*) FROM taskito_jobs GROUP BY task_name, status;

-- name: task_failures
SELECT j.task_name, count(*) FROM taskito_job_errors AS e
JOIN taskito_jobs AS j ON j.id = e.job_id
GROUP BY j.task_name;

-- name: task_runtimes
-- Completed jobs per task and smallest bucket bound holding their run time (NULL: above every bound).
-- bounds is a double precision[].
WITH bounds(le) AS (SELECT unnest(%(bounds)s::double precision[])),
     runs(task_name, seconds) AS (
         SELECT task_name, finished_at - started_at FROM taskito_jobs
         WHERE status = 'complete' AND started_at IS NOT NULL AND finished_at IS NOT NULL)
SELECT task_name, (SELECT min(le) FROM bounds WHERE le >= runs.seconds) AS le, count(*), sum(seconds)
FROM runs GROUP BY task_name, le;

-- name: finished_per_bucket
SELECT floor((finished_at - %(since)s) / %(step)s)::integer AS bucket, status, count(*)
FROM taskito_jobs
WHERE status IN ('complete', 'dead') AND finished_at >= %(since)s
GROUP BY bucket, status;

-- name: failures_per_bucket
SELECT floor((failed_at - %(since)s) / %(step)s)::integer AS bucket, count(*)
FROM taskito_job_errors WHERE failed_at >= %(since)s
GROUP BY bucket;
