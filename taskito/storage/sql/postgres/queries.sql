-- Named statements of the PostgreSQL engine: the same names as the SQLite engine's, with
-- %(name)s parameters (expire_jobs and release_dependents are part of the taskito_claim() and
-- taskito_complete() functions of the migration here). Connections run with search_path set to the configured schema, so no
-- statement names it. Lists arrive as text[] parameters.

-- name: insert_job
-- A job already stored under its id (a retry after a commit whose answer was lost) stays as it is.
-- A job due later is delayed: out of the claim index until a claim of its queue finds it due.
INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                          unique_key, waiting_deps, created_at, scheduled_at, expires_at, delayed,
                          max_concurrent, concurrency_key)
VALUES (%(id)s, %(task_name)s, %(queue)s, 'pending', %(priority)s, %(payload)s, %(max_retries)s, %(timeout)s,
        %(unique_key)s, %(waiting_deps)s, %(created_at)s, %(scheduled_at)s, %(expires_at)s,
        %(scheduled_at)s > %(created_at)s, %(max_concurrent)s, %(concurrency_key)s)
ON CONFLICT (id) DO NOTHING;

-- name: copy_jobs
-- Batch enqueue (postgres only): one COPY per batch; the insert trigger notifies workers once.
-- Staged jobs (a large enqueue's chunks) carry status 'staged' and their batch's id in worker_id.
COPY taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                   unique_key, waiting_deps, created_at, scheduled_at, expires_at, delayed, worker_id,
                   max_concurrent, concurrency_key) FROM STDIN;
-- worker_id: the batch of a staged job (a large enqueue in chunks), else NULL.

-- name: open_batch
INSERT INTO taskito_batches (id, state, lease_until) VALUES (%(batch)s, 'staging', %(lease_until)s)
ON CONFLICT (id) DO NOTHING;

-- name: renew_batch
-- Renew the lease of a batch in this state (moving it there from from_state if given, and only if
-- its lease ran out before expired_before if given); no row: the batch is gone or in another state.
UPDATE taskito_batches SET state = %(state)s, lease_until = %(lease_until)s
WHERE id = %(batch)s AND state IN (%(state)s, %(from_state)s)
  AND (%(expired_before)s::double precision IS NULL OR lease_until < %(expired_before)s)
RETURNING id;

-- name: publish_staged
UPDATE taskito_jobs SET status = 'pending', worker_id = NULL
WHERE id = ANY(ARRAY(SELECT id FROM taskito_jobs WHERE worker_id = %(batch)s AND status = 'staged'
                     LIMIT %(limit)s));

-- name: discard_staged
DELETE FROM taskito_jobs
WHERE id = ANY(ARRAY(SELECT id FROM taskito_jobs WHERE worker_id = %(batch)s AND status = 'staged'
                     LIMIT %(limit)s));

-- name: close_batch
DELETE FROM taskito_batches WHERE id = %(batch)s;

-- name: abandoned_batches
SELECT id, state FROM taskito_batches WHERE lease_until < %(now)s;

-- name: count_ids
-- How many of these job ids are stored (postgres only: a retried COPY batch checks it went in).
SELECT count(*) AS n FROM taskito_jobs WHERE id = ANY(%(ids)s::text[]);

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
-- start (`start`) when the function is called. It enforces max_concurrent and the rate limits of
-- rate_tasks (seconds between starts in rate_steps) over the whole cluster.
SELECT * FROM taskito_claim(%(worker_id)s, %(queues)s::text[], %(now)s, %(lease_until)s, %(limit)s,
                            %(rate_tasks)s::text[], %(rate_steps)s::double precision[], %(horizon)s);

-- name: next_due
SELECT scheduled, expires FROM taskito_next_due(%(queues)s::text[]);

-- name: release_claim
-- Put back a batch whose claim committed while the connection broke (postgres only). Its jobs
-- are the ones this worker claimed with that lease, never started (the worker never saw them).
UPDATE taskito_jobs
SET status = 'pending', worker_id = NULL, lease_until = NULL
WHERE worker_id = %(worker_id)s AND lease_until = %(lease_until)s AND status = 'claimed';

-- name: start
-- A whole batch of start marks in one statement (postgres takes arrays here): the counting trigger
-- runs once for it. A function, so that its plan is made with the settings it needs (see v9).
SELECT taskito_mark_started(%(ids)s::text[], %(attempts)s::integer[], %(started)s::double precision[]);

-- name: complete
-- A whole batch at once (postgres takes arrays here), with its dependents' release and the NOTIFYs
-- (done_payload: the batch's ids for their waiters). Each completion carries its attempt's start and
-- finish (NULL: keep the start, finish now).
-- The arrays go in binary format: adapting them as text costs the worker more CPU than the rest.
SELECT * FROM taskito_complete(%(ids)b::text[], %(attempts)b::integer[], %(results)b::bytea[],
                               %(started)b::double precision[], %(finished)b::double precision[], %(now)s,
                               %(done_payload)s);

-- name: notify
SELECT pg_notify(%(channel)s, %(payload)s);

-- name: fail_retry
UPDATE taskito_jobs
SET status = 'failed', error = %(error)s, retry_count = retry_count + 1,
    started_at = COALESCE(%(started_at)s::double precision, started_at),
    first_started_at = COALESCE(first_started_at, %(started_at)s::double precision, started_at),
    scheduled_at = %(scheduled_at)s, delayed = %(scheduled_at)s > %(now)s, lease_until = NULL, worker_id = NULL
WHERE id = %(job_id)s AND attempt = %(attempt)s AND status IN ('claimed', 'running');

-- name: fail_dead
UPDATE taskito_jobs
SET status = 'dead', error = %(error)s, started_at = COALESCE(%(started_at)s::double precision, started_at),
    finished_at = %(now)s, lease_until = NULL
WHERE id = %(job_id)s AND attempt = %(attempt)s AND status IN ('claimed', 'running');

-- name: insert_error
-- With its job's task, so that the error is counted per task (see taskito_failure_counts).
INSERT INTO taskito_job_errors (job_id, attempt, error, traceback, failed_at, task_name)
VALUES (%(job_id)s, %(attempt)s, %(error)s, %(traceback)s, %(now)s,
        (SELECT task_name FROM taskito_jobs WHERE id = %(job_id)s));

-- name: requeue
UPDATE taskito_jobs
SET status = 'pending', worker_id = NULL, lease_until = NULL, started_at = NULL, delayed = false
WHERE id = %(job_id)s AND worker_id = %(worker_id)s AND status IN ('claimed', 'running');

-- name: set_progress
UPDATE taskito_jobs SET progress = %(progress)s WHERE id = %(job_id)s;

-- name: cancel_job
UPDATE taskito_jobs
SET status = 'cancelled', error = 'cancelled', finished_at = %(now)s
WHERE id = %(job_id)s AND status IN ('pending', 'failed')
RETURNING id;

-- name: cancel_put_back
-- Run by `requeue`: a job whose cancellation was asked for while a worker held it, and that its worker put
-- back without having stopped it (it was stopping), is cancelled, never run again.
UPDATE taskito_jobs
SET status = 'cancelled', finished_at = %(now)s,
    error = 'cancelled (it went back to the queue before its worker stopped it)'
WHERE id = ANY(ARRAY(SELECT id FROM taskito_jobs WHERE cancel_requested AND status IN ('pending', 'failed')))
RETURNING id;

-- name: request_cancel
-- A job a worker holds: its worker stops it (see cancel_requests) and records it cancelled.
UPDATE taskito_jobs SET cancel_requested = true
WHERE id = %(job_id)s AND status IN ('claimed', 'running')
RETURNING id;

-- name: cancel_requests
-- The jobs of this worker whose cancellation was asked for (a lookup in a tiny partial index).
SELECT id, attempt FROM taskito_jobs
WHERE worker_id = %(worker_id)s AND cancel_requested AND status IN ('claimed', 'running');

-- name: finish_cancelled
-- An attempt stopped because its cancellation was asked for: the job ends cancelled.
UPDATE taskito_jobs
SET status = 'cancelled', error = %(error)s, started_at = COALESCE(%(started_at)s::double precision, started_at),
    finished_at = %(now)s, lease_until = NULL
WHERE id = %(job_id)s AND attempt = %(attempt)s AND status IN ('claimed', 'running')
RETURNING id;

-- name: cancel_waiting
-- One chunk of a bulk cancel (purge_queue, revoke_task): waiting jobs of a queue or of a task.
UPDATE taskito_jobs
SET status = 'cancelled', error = %(reason)s, finished_at = %(now)s
WHERE id = ANY(ARRAY(SELECT id FROM taskito_jobs
                     WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
                       AND (%(task_name)s::text IS NULL OR task_name = %(task_name)s::text)
                       AND status IN ('pending', 'failed')
                     LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
RETURNING id;

-- name: dead_ids
SELECT id, seq FROM taskito_jobs
WHERE (CASE status WHEN 'claimed' THEN 'pending' ELSE status END) = 'dead'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(task_name)s::text IS NULL OR task_name = %(task_name)s::text)
  AND seq > %(after)s
ORDER BY seq LIMIT %(limit)s;

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
       expires_at, started_at, finished_at, worker_id, first_started_at
FROM taskito_jobs
WHERE /* filters */ AND status <> 'staged'
ORDER BY {order}  -- one of sqlbase.JOB_ORDERS
LIMIT %(limit)s OFFSET %(offset)s;

-- name: list_jobs_matching
-- list_jobs with text: the most recent :scan rows that pass the filters ({recent}: seq or id, newest
-- first), whose first :reach bytes of arguments (as encode(..., 'escape') writes bytes that may not be
-- UTF-8) or of error contain the text (ILIKE: letters in any case). Bounded: it reads :scan rows at
-- most, whatever the table holds.
SELECT id, task_name, queue, status, priority, substring(payload FROM 1 FOR %(head)s) AS payload, payload_size,
       CASE WHEN length(error) > %(head)s THEN substring(error FROM 1 FOR %(head)s) || '…' ELSE error END
           AS error,
       retry_count, max_retries, timeout, attempt, progress, unique_key, created_at, scheduled_at,
       expires_at, started_at, finished_at, worker_id, first_started_at
FROM (SELECT seq, id, task_name, queue, status, priority, substring(payload FROM 1 FOR %(reach)s) AS payload,
             octet_length(payload) AS payload_size, substring(error FROM 1 FOR %(reach)s) AS error, retry_count,
             max_retries, timeout, attempt, progress, unique_key, created_at, scheduled_at, expires_at,
             started_at, finished_at, worker_id, first_started_at
      FROM taskito_jobs
      WHERE /* filters */ AND status <> 'staged'
      ORDER BY {recent}
      LIMIT %(scan)s) AS recent
WHERE encode(payload, 'escape') ILIKE %(payload_pattern)s ESCAPE '\' OR error ILIKE %(pattern)s ESCAPE '\'
ORDER BY {order}
LIMIT %(limit)s OFFSET %(offset)s;

-- name: list_jobs_by_id_prefix
-- Ids are lowercase hex: those starting with :id_prefix are the range up to :id_prefix || 'g' of the
-- id index.
id >= %(id_prefix)s::text AND id < %(id_end)s::text AND left(id, %(id_length)s) = %(id_prefix)s::text

-- name: list_jobs_finished
-- Sorted by finish time with a status of finished jobs: the index taskito_jobs_finished reads them in order.
status = %(status)s::text AND finished_at IS NOT NULL

-- name: list_jobs_by_status
-- The status users see: the expression of the index taskito_jobs_listed_by_status, word for word.
(CASE status WHEN 'claimed' THEN 'pending' ELSE status END) = %(status)s::text

-- name: list_jobs_by_queue
queue = %(queue)s::text

-- name: list_jobs_by_task
task_name = %(task_name)s::text

-- name: list_jobs_from_status
-- The filter whose index leads (list_jobs, lead_filter): a range of one value, first in the order, so
-- that only its index gives that order: an equality would make the column a constant, and the plan
-- free to read the table in seq order, meeting matching rows late when they are old.
(CASE status WHEN 'claimed' THEN 'pending' ELSE status END) BETWEEN %(status)s::text AND %(status)s::text

-- name: list_jobs_from_queue
queue BETWEEN %(queue)s::text AND %(queue)s::text

-- name: list_jobs_from_task
task_name BETWEEN %(task_name)s::text AND %(task_name)s::text

-- name: job_errors
SELECT attempt, error, traceback, failed_at FROM taskito_job_errors
WHERE job_id = %(job_id)s ORDER BY id;

-- name: stats
-- Counts come from the counter rows the triggers append (migration 7), never from counting jobs.
SELECT status, sum(n)::bigint AS n FROM taskito_counts
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY status;

-- name: stats_all_queues
SELECT queue, status, sum(n)::bigint AS n FROM taskito_counts GROUP BY queue, status HAVING sum(n) <> 0;

-- name: delete_job
DELETE FROM taskito_jobs WHERE id = %(job_id)s AND status = %(status)s RETURNING id;

-- name: delete_job_details
DELETE FROM taskito_job_errors WHERE job_id = %(job_id)s;

-- name: purge_jobs
-- One chunk of a purge (limit jobs), with the ids deleted; then their errors and the dependency rows
-- that name them go (purge_errors, purge_deps). The jobs of a running workflow stay: a later step
-- reads their results.
DELETE FROM taskito_jobs
WHERE id = ANY(ARRAY(SELECT id FROM taskito_jobs AS j WHERE status = %(status)s AND finished_at < %(before)s
                       AND (workflow_id IS NULL OR NOT EXISTS (
                           SELECT 1 FROM taskito_workflows AS w WHERE w.id = j.workflow_id AND w.status = 'running'))
                     LIMIT %(limit)s))
RETURNING id;

-- name: purge_errors
DELETE FROM taskito_job_errors WHERE job_id = ANY(%(ids)s::text[]);

-- name: purge_deps
DELETE FROM taskito_job_deps WHERE depends_on = ANY(%(ids)s::text[]);

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
-- A schedule declared again (a deploy, a worker restart) keeps whether it is paused and when it last ran.
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
FROM taskito_periodic WHERE next_run_at <= %(now)s AND NOT paused;

-- name: advance_periodic
UPDATE taskito_periodic SET next_run_at = %(new_next)s, last_run_at = %(now)s
WHERE name = %(name)s AND next_run_at = %(expected_next)s AND NOT paused;

-- name: list_periodic
SELECT name, task_name, cron, payload, queue, timezone, next_run_at, last_run_at, paused
FROM taskito_periodic ORDER BY name;

-- name: get_periodic
SELECT name, task_name, cron, payload, queue, timezone, next_run_at, last_run_at, paused
FROM taskito_periodic WHERE name = %(name)s;

-- name: set_periodic_paused
-- Resuming starts again from the next tick after now (next_run_at): ticks missed while paused are not fired.
UPDATE taskito_periodic SET paused = %(paused)s,
    next_run_at = COALESCE(%(next_run_at)s::double precision, next_run_at)
WHERE name = %(name)s;

-- name: ran_periodic
UPDATE taskito_periodic SET last_run_at = %(now)s WHERE name = %(name)s;

-- name: task_counts
-- Monitoring (the dashboard's /metrics), over the rows still retained, from the counters: per task,
-- stored status and run-time bucket (runtime_le: 0 for no run time, infinity above every bound).
SELECT task_name, status, runtime_le, sum(n)::bigint AS n, sum(runtime_sum) AS runtime_sum FROM taskito_counts
GROUP BY task_name, status, runtime_le HAVING sum(n) <> 0;

-- name: task_failures
SELECT task_name, sum(n)::bigint AS n FROM taskito_failure_counts GROUP BY task_name HAVING sum(n) <> 0;

-- name: lock_counts
-- Keeps taskito_fold_counts() out while the counters are checked or rebuilt.
SELECT pg_advisory_xact_lock(hashtext('taskito counts'), hashtext(current_schema()));

-- name: count_differences
-- The job counters against a recount of the jobs table, in one statement (one snapshot): the keys
-- whose count or run-time sum differ.
SELECT queue, task_name, status, runtime_le, sum(counted)::bigint AS counted, sum(actual)::bigint AS actual,
       coalesce(sum(counted_sum), 0) AS counted_sum, coalesce(sum(actual_sum), 0) AS actual_sum
FROM (
    SELECT queue, task_name, status, runtime_le, n AS counted, 0 AS actual,
           runtime_sum AS counted_sum, 0.0::double precision AS actual_sum
    FROM taskito_counts
    UNION ALL
    SELECT queue, task_name, status, taskito_runtime_le(seconds), 0, 1, 0.0, coalesce(seconds, 0)
    FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
          FROM taskito_jobs) AS jobs
) AS both_sides
GROUP BY queue, task_name, status, runtime_le
HAVING sum(counted) <> sum(actual)
    OR abs(coalesce(sum(counted_sum), 0) - coalesce(sum(actual_sum), 0))
       > 0.001 + 1e-9 * abs(coalesce(sum(actual_sum), 0));

-- name: failure_count_differences
SELECT task_name, sum(counted)::bigint AS counted, sum(actual)::bigint AS actual FROM (
    SELECT task_name, n AS counted, 0 AS actual FROM taskito_failure_counts
    UNION ALL
    SELECT task_name, 0, 1 FROM taskito_job_errors WHERE task_name IS NOT NULL
) AS both_sides
GROUP BY task_name HAVING sum(counted) <> sum(actual);

-- name: recount_jobs
-- Replace the counter rows by a recount of the jobs table (taskito check --repair), in one statement:
-- one snapshot, so rows appended by transactions it does not see stay, and add their changes to it.
WITH gone AS (DELETE FROM taskito_counts)
INSERT INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
SELECT queue, task_name, status, taskito_runtime_le(seconds), count(*), coalesce(sum(seconds), 0)
FROM (SELECT queue, task_name, taskito_counted_status(status) AS status,
                 taskito_runtime(status, started_at, finished_at) AS seconds
      FROM taskito_jobs) AS jobs
GROUP BY queue, task_name, status, taskito_runtime_le(seconds);

-- name: recount_failures
WITH gone AS (DELETE FROM taskito_failure_counts)
INSERT INTO taskito_failure_counts (task_name, n)
SELECT task_name, count(*) FROM taskito_job_errors WHERE task_name IS NOT NULL GROUP BY task_name;

-- name: finished_per_bucket
SELECT floor((finished_at - %(since)s) / %(step)s)::integer AS bucket, status, count(*) AS n
FROM taskito_jobs
WHERE status IN ('complete', 'dead') AND finished_at >= %(since)s
GROUP BY bucket, status;

-- name: failures_per_bucket
SELECT floor((failed_at - %(since)s) / %(step)s)::integer AS bucket, count(*) AS n
FROM taskito_job_errors WHERE failed_at >= %(since)s
GROUP BY bucket;

-- name: server_identity
-- Which database of which server a connection reaches (postgres only): the database name, then the
-- server's start time and port, which tell one server from another however it is reached (TCP, a
-- unix socket, another host name); then its address (NULL on a socket) and port, to name it.
SELECT current_database() AS database, pg_postmaster_start_time() AS started, current_setting('port') AS port,
       host(inet_server_addr()) AS address, inet_server_port() AS address_port;

-- name: enter_schema
-- On the app's connection (postgres only): the queue's schema on the search_path for the rest of the
-- transaction, returning the app's own path for leave_schema. OFFSET 0 keeps the subquery apart, so
-- the app's path is read before it is replaced.
SELECT app_path, set_config('search_path', %(schema)s, true)
FROM (SELECT current_setting('search_path') AS app_path OFFSET 0) AS app;

-- name: leave_schema
SELECT set_config('search_path', %(search_path)s, true);

-- name: add_job_log
-- One line of current_job.log(), unless its job holds :limit lines already (counting stops there).
INSERT INTO taskito_job_logs (job_id, logged_at, level, message, extra)
SELECT %(job_id)s, %(logged_at)s, %(level)s, %(message)s, %(extra)s
WHERE (SELECT count(*) FROM (SELECT 1 FROM taskito_job_logs WHERE job_id = %(job_id)s LIMIT %(limit)s) AS kept)
      < %(limit)s;

-- name: job_logs
SELECT id, logged_at, level, message, extra FROM taskito_job_logs
WHERE job_id = %(job_id)s AND id > %(after)s ORDER BY id LIMIT %(limit)s;

-- name: task_minutes
-- Per task, queue, outcome and buckets since :since: a week is at most 24 * 6 hour rows and a day of
-- minute rows per key (see taskito_task_minutes), however many jobs ran.
SELECT queue, task_name, outcome, runtime_le, wait_le, sum(n)::bigint AS n, sum(runtime_sum) AS runtime_sum,
       sum(wait_sum) AS wait_sum
FROM taskito_task_minutes WHERE minute >= %(since)s
GROUP BY queue, task_name, outcome, runtime_le, wait_le;

-- name: task_minutes_series
-- The same in :step-second buckets (bucket 0 starts at :since), for charts.
SELECT floor((minute - %(since)s) / %(step)s)::bigint AS bucket, task_name, outcome, sum(n)::bigint AS n,
       sum(runtime_sum) AS runtime_sum
FROM taskito_task_minutes WHERE minute >= %(since)s
GROUP BY bucket, task_name, outcome;

-- name: grouped_task_minutes
-- The rows of [:start, :end) merged into one per key and :step seconds (a past minute's rows, or a
-- past day's minutes into hours): deleted and written back in one statement. The try-lock leaves
-- the work to a worker already doing it; rows appended meanwhile by transactions not committed yet
-- are not seen, so they stay as they are: the sums are exact at every moment.
WITH locked AS (
    SELECT pg_try_advisory_xact_lock(hashtext('taskito task minutes'), hashtext(current_schema())) AS held
), gone AS (
    DELETE FROM taskito_task_minutes
    WHERE minute >= %(start)s AND minute < %(end)s AND (SELECT held FROM locked)
    RETURNING *
)
INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum, wait_sum)
SELECT floor(minute / %(step)s)::bigint * %(step)s, queue, task_name, outcome, runtime_le, wait_le, sum(n),
       sum(runtime_sum), sum(wait_sum)
FROM gone GROUP BY 1, queue, task_name, outcome, runtime_le, wait_le;

-- name: oldest_due
-- When the longest-waiting due job of :queue became due: a few index lookups, whatever the backlog.
-- Due jobs in the claim index: the earliest of each priority level (walked level by level); delayed
-- ones (not promoted yet) are due once their time has come.
WITH RECURSIVE levels(priority) AS (
    SELECT (SELECT max(priority) FROM taskito_jobs
            WHERE queue = %(queue)s AND status IN ('pending', 'failed') AND waiting_deps = 0 AND NOT delayed)
    UNION ALL
    SELECT (SELECT max(j.priority) FROM taskito_jobs AS j
            WHERE j.queue = %(queue)s AND j.status IN ('pending', 'failed') AND j.waiting_deps = 0 AND NOT j.delayed
              AND j.priority < levels.priority)
    FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min(oldest) AS oldest FROM (
    SELECT (SELECT min(j.scheduled_at) FROM taskito_jobs AS j
            WHERE j.queue = %(queue)s AND j.status IN ('pending', 'failed') AND j.waiting_deps = 0 AND NOT j.delayed
              AND j.priority = levels.priority) AS oldest
    FROM levels WHERE levels.priority IS NOT NULL
    UNION ALL
    -- The first delayed job in the index, if due: min() with a HAVING walked every delayed job of the queue.
    SELECT scheduled_at FROM (SELECT scheduled_at FROM taskito_jobs
                              WHERE queue = %(queue)s AND status IN ('pending', 'failed') AND delayed IS NOT FALSE
                              ORDER BY scheduled_at LIMIT 1) AS first_delayed
    WHERE scheduled_at <= %(now)s
) AS due;

-- name: prune_task_minutes
DELETE FROM taskito_task_minutes WHERE minute < %(before)s;

-- Workflows (migration 10). ----------------------------------------------------------------------
-- Completions advance workflows inside taskito_complete() (the migration's taskito_workflow_advance()).

-- name: insert_workflow
-- A workflow stored already under its id (sent again after a commit whose answer was lost) stays as it is.
INSERT INTO taskito_workflows (id, kind, status, stages, created_at)
VALUES (%(id)s, %(kind)s, 'running', %(stages)s, %(created_at)s)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: insert_workflow_stage
INSERT INTO taskito_workflow_stages (workflow_id, stage, size, remaining, is_group)
VALUES (%(workflow_id)s, %(stage)s, %(size)s, %(size)s, %(is_group)s);

-- name: copy_workflow_jobs
-- The jobs of a workflow, one COPY (see the SQLite engine's insert_workflow_job).
COPY taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                   waiting_deps, created_at, scheduled_at, expires_at, delayed,
                   workflow_id, wf_stage, wf_member, wf_mode) FROM STDIN;

-- name: workflow_of
SELECT workflow_id, wf_stage FROM taskito_jobs WHERE id = %(job_id)s AND workflow_id IS NOT NULL;

-- name: end_workflow
-- Only the first ending counts: a second step dying, or a cancel after a failure, changes nothing.
UPDATE taskito_workflows
SET status = %(status)s, finished_at = %(now)s, failed_job_id = %(failed_job_id)s, error = %(error)s
WHERE id = %(workflow_id)s AND status = 'running'
RETURNING id;

-- name: cancel_workflow_jobs
-- Every step not started yet (or waiting for a retry); the error callback is not a step.
UPDATE taskito_jobs SET status = 'cancelled', error = %(reason)s, finished_at = %(now)s
WHERE workflow_id = %(workflow_id)s AND wf_stage >= 0 AND status IN ('pending', 'failed')
RETURNING id;

-- name: start_error_callback
UPDATE taskito_jobs SET status = 'pending', delayed = false, scheduled_at = %(now)s, created_at = %(now)s
WHERE workflow_id = %(workflow_id)s AND wf_stage = -1 AND status = 'staged';

-- name: drop_error_callback
DELETE FROM taskito_jobs WHERE workflow_id = %(workflow_id)s AND wf_stage = -1 AND status = 'staged';

-- name: get_workflow
SELECT id, kind, status, stages, created_at, finished_at, failed_job_id, error
FROM taskito_workflows WHERE id = %(workflow_id)s;

-- name: list_workflows
-- Newest first by id (the time sent, then random): the primary key's order. Stages done: those whose
-- members all completed.
SELECT w.id, w.kind, w.status, w.created_at, w.finished_at, w.failed_job_id, w.error, w.stages,
       (SELECT count(*) FROM taskito_workflow_stages AS s WHERE s.workflow_id = w.id AND s.remaining = 0)
           AS stages_done,
       (SELECT coalesce(sum(s.size), 0) FROM taskito_workflow_stages AS s WHERE s.workflow_id = w.id)::bigint
           AS jobs
FROM taskito_workflows AS w
ORDER BY w.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: workflow_stages
SELECT stage, size, remaining, is_group FROM taskito_workflow_stages
WHERE workflow_id = %(workflow_id)s ORDER BY stage;

-- name: workflow_jobs
-- The jobs of a workflow in order (the error callback, stage -1, first), as they are now.
SELECT id, task_name, CASE status WHEN 'claimed' THEN 'pending' ELSE status END AS status,
       wf_stage, wf_member, started_at, finished_at
FROM taskito_jobs WHERE workflow_id = %(workflow_id)s
ORDER BY wf_stage, wf_member;

-- name: stage_results
-- What the members of one stage returned, in member order (the next stage's input).
SELECT result FROM taskito_jobs WHERE workflow_id = %(workflow_id)s AND wf_stage = %(stage)s
ORDER BY wf_member;

-- name: purge_workflows
-- Workflows finished before the given time whose jobs are all gone (purged).
DELETE FROM taskito_workflows AS w
WHERE status <> 'running' AND finished_at < %(before)s
  AND NOT EXISTS (SELECT 1 FROM taskito_jobs WHERE workflow_id = w.id)
RETURNING id;

-- name: purge_workflow_stages
DELETE FROM taskito_workflow_stages WHERE workflow_id = ANY(%(ids)s::text[]);
