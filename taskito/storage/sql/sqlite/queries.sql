-- Named statements of the SQLite engine. Parameters use :name.

-- name: insert_job
-- A job already stored under its id (a retry after a commit whose answer was lost) stays as it is.
-- A job due later is delayed: out of the claim index until a claim of its queue finds it due.
INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                          unique_key, waiting_deps, created_at, scheduled_at, expires_at, delayed,
                          max_concurrent, concurrency_key)
VALUES (:id, :task_name, :queue, 'pending', :priority, :payload, :max_retries, :timeout,
        :unique_key, :waiting_deps, :created_at, :scheduled_at, :expires_at, :scheduled_at > :created_at,
        :max_concurrent, :concurrency_key)
ON CONFLICT (id) DO NOTHING;

-- name: stage_job
-- A job of a large enqueue, written hidden (status 'staged', batch id in worker_id) until published.
INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                          waiting_deps, created_at, scheduled_at, expires_at, delayed, worker_id,
                          max_concurrent, concurrency_key)
VALUES (:id, :task_name, :queue, 'staged', :priority, :payload, :max_retries, :timeout,
        0, :created_at, :scheduled_at, :expires_at, :scheduled_at > :created_at, :batch,
        :max_concurrent, :concurrency_key)
ON CONFLICT (id) DO NOTHING;

-- name: open_batch
INSERT INTO taskito_batches (id, state, lease_until) VALUES (:batch, 'staging', :lease_until)
ON CONFLICT (id) DO NOTHING;

-- name: renew_batch
-- Renew the lease of a batch in this state (moving it there from from_state if given, and only if
-- its lease ran out before expired_before if given); no row: the batch is gone or in another state.
UPDATE taskito_batches SET state = :state, lease_until = :lease_until
WHERE id = :batch AND state IN (:state, :from_state)
  AND (:expired_before IS NULL OR lease_until < :expired_before)
RETURNING id;

-- name: publish_staged
UPDATE taskito_jobs SET status = 'pending', worker_id = NULL
WHERE seq IN (SELECT seq FROM taskito_jobs INDEXED BY taskito_jobs_staged
              WHERE worker_id = :batch AND status = 'staged' LIMIT :limit);

-- name: discard_staged
DELETE FROM taskito_jobs
WHERE seq IN (SELECT seq FROM taskito_jobs INDEXED BY taskito_jobs_staged
              WHERE worker_id = :batch AND status = 'staged' LIMIT :limit);

-- name: close_batch
DELETE FROM taskito_batches WHERE id = :batch;

-- name: abandoned_batches
SELECT id, state FROM taskito_batches WHERE lease_until < :now;

-- name: insert_dep
INSERT OR IGNORE INTO taskito_job_deps (depends_on, job_id) VALUES (:depends_on, :job_id);

-- name: find_unique
SELECT id FROM taskito_jobs
WHERE unique_key = :unique_key AND status IN ('pending', 'failed', 'claimed', 'running');

-- name: dep_statuses
SELECT id, status FROM taskito_jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: expire_jobs
-- A job waiting for a retry ran already: its message says so and keeps its last error.
UPDATE taskito_jobs INDEXED BY taskito_jobs_expiry
SET status = 'cancelled', finished_at = :now,
    error = CASE WHEN status = 'failed' THEN 'expired before its retry started; last error: ' || error
                 ELSE 'expired before it started' END
WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL AND expires_at < :now
RETURNING id;

-- name: cancel_put_back
-- Run by `requeue`: a job whose cancellation was asked for while a worker held it, and that its worker put
-- back without having stopped it (it was stopping), is cancelled, never run again.
UPDATE taskito_jobs INDEXED BY taskito_jobs_cancel_put_back
SET status = 'cancelled', finished_at = :now, error = 'cancelled (it went back to the queue before its worker stopped it)'
WHERE cancel_requested <> 0 AND status IN ('pending', 'failed')
RETURNING id;

-- name: cancel_dependents
WITH RECURSIVE doomed(id) AS (
    SELECT job_id FROM taskito_job_deps WHERE depends_on = :id
    UNION
    SELECT d.job_id FROM taskito_job_deps d JOIN doomed ON d.depends_on = doomed.id
)
UPDATE taskito_jobs
SET status = 'cancelled', error = :reason, finished_at = :now
WHERE id IN (SELECT id FROM doomed) AND status IN ('pending', 'failed');

-- name: promote_due
-- Delayed jobs of these queues whose time has come join the claim index (run just before `claim`).
UPDATE taskito_jobs INDEXED BY taskito_jobs_delayed SET delayed = 0
WHERE status IN ('pending', 'failed') AND delayed IS NOT 0
  AND queue IN (SELECT value FROM json_each(:queues)) AND scheduled_at <= :now;

-- name: ensure_rate_limits
-- The cluster-wide slot row of each rate-limited task the claiming worker serves (:rates).
INSERT OR IGNORE INTO taskito_rate_limits (task_name, next_at)
SELECT json_extract(value, '$[0]'), 0 FROM json_each(:rates);

-- name: claim
-- Claimed, not running: the worker marks the start (`start`) when the function is called.
-- The first :limit jobs of each served queue that is not paused, walked in the claim index (due
-- jobs only, in claim order), then the first :limit of those: no other queue's job is read.
-- INDEXED BY: without statistics the planner could prefer another index and sort.
-- Control (the transaction holds the write lock, so no other claim runs meanwhile):
-- * max_concurrent: a job is claimed only while fewer than its cap of its group (task and
--   concurrency_key) are held (claimed or running) by any worker, counting those this claim takes;
--   the walk skips the jobs of a full group, so they never hold back other tasks' jobs.
-- * rate limits (:rates, [task, seconds between starts], from the worker's tasks): the task's row in
--   taskito_rate_limits says when its next slot begins; a claim hands out the slots that begin
--   within :horizon seconds, one per job (start_after), and the caller moves next_at past them.
WITH rates AS (
    SELECT json_extract(value, '$[0]') AS task_name, json_extract(value, '$[1]') AS step,
           max(r.next_at, :now) AS first_slot,
           CASE WHEN max(r.next_at, :now) > :now + :horizon THEN 0
                ELSE CAST((:now + :horizon - max(r.next_at, :now)) / json_extract(value, '$[1]') AS INTEGER) + 1
           END AS allowed
    FROM json_each(:rates) JOIN taskito_rate_limits AS r ON r.task_name = json_extract(value, '$[0]')
),
candidates AS (
    SELECT j.seq, j.priority, j.scheduled_at, j.task_name, coalesce(j.concurrency_key, '') AS grp, j.max_concurrent
    FROM json_each(:queues) AS served, taskito_jobs AS j
    WHERE served.value NOT IN (SELECT name FROM taskito_paused_queues)
      AND j.seq IN (SELECT ready.seq FROM taskito_jobs AS ready INDEXED BY taskito_jobs_ready
                    WHERE ready.queue = served.value AND ready.status IN ('pending', 'failed')
                      AND ready.waiting_deps = 0 AND ready.delayed = 0
                      AND ready.task_name NOT IN (SELECT task_name FROM rates WHERE allowed = 0)
                      AND (ready.max_concurrent IS NULL OR ready.max_concurrent > (
                          SELECT count(*) FROM taskito_jobs AS held INDEXED BY taskito_jobs_held_by_group
                          WHERE held.task_name = ready.task_name
                            AND coalesce(held.concurrency_key, '') = coalesce(ready.concurrency_key, '')
                            AND held.max_concurrent IS NOT NULL AND held.status IN ('claimed', 'running')))
                    ORDER BY ready.priority DESC, ready.scheduled_at, ready.seq
                    LIMIT :limit)
),
capped AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.task_name, c.grp
                                   ORDER BY c.priority DESC, c.scheduled_at, c.seq) AS in_group,
           CASE WHEN c.max_concurrent IS NULL THEN 0 ELSE (
               SELECT count(*) FROM taskito_jobs AS held INDEXED BY taskito_jobs_held_by_group
               WHERE held.task_name = c.task_name AND coalesce(held.concurrency_key, '') = c.grp
                 AND held.max_concurrent IS NOT NULL AND held.status IN ('claimed', 'running')) END AS held
    FROM candidates AS c
),
slotted AS (
    SELECT a.seq, a.priority, a.scheduled_at, r.step, r.first_slot, r.allowed,
           row_number() OVER (PARTITION BY a.task_name ORDER BY a.priority DESC, a.scheduled_at, a.seq) AS in_task
    FROM capped AS a LEFT JOIN rates AS r ON r.task_name = a.task_name
    WHERE a.max_concurrent IS NULL OR a.held + a.in_group <= a.max_concurrent
),
picked AS (
    SELECT seq, CASE WHEN step IS NULL THEN NULL ELSE first_slot + (in_task - 1) * step END AS slot
    FROM slotted
    WHERE allowed IS NULL OR in_task <= allowed
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT :limit
)
UPDATE taskito_jobs
SET status = 'claimed', attempt = attempt + 1, worker_id = :worker_id,
    started_at = NULL, lease_until = :lease_until, start_after = picked.slot
FROM picked
WHERE taskito_jobs.seq = picked.seq
RETURNING seq, id, task_name, queue, status, priority, payload, retry_count, max_retries,
          timeout, attempt, created_at, scheduled_at, expires_at, started_at, worker_id,
          cancel_requested, max_concurrent, concurrency_key, start_after,
          workflow_id, wf_stage, wf_member, wf_mode;

-- name: capped_waiting
-- Whether capped jobs wait in the served queues (one probe of a partial index per queue): if none do
-- and no rate limit applies, the claim takes the plain path (claim_plain). The claim's transaction
-- holds the write lock: none can be enqueued meanwhile.
SELECT 1 AS found FROM json_each(:queues) AS served
WHERE EXISTS (SELECT 1 FROM taskito_jobs INDEXED BY taskito_jobs_capped_waiting
              WHERE queue = served.value AND max_concurrent IS NOT NULL AND status IN ('pending', 'failed'))
LIMIT 1;

-- name: claimable
-- Whether a claim of these queues has anything to do: a ready job of a queue not paused, a delayed job now
-- due, or a waiting job (of any queue) expired. A read, outside the write lock: an idle worker woken by a
-- commit that brought it nothing (a completion, another queue's job) leaves the lock to producers.
SELECT EXISTS (SELECT 1 FROM json_each(:queues) AS served, taskito_jobs AS ready INDEXED BY taskito_jobs_ready
               WHERE ready.queue = served.value AND ready.status IN ('pending', 'failed')
                 AND ready.waiting_deps = 0 AND ready.delayed = 0
                 AND served.value NOT IN (SELECT name FROM taskito_paused_queues))
    OR EXISTS (SELECT 1 FROM json_each(:queues) AS served, taskito_jobs AS due INDEXED BY taskito_jobs_delayed
               WHERE due.queue = served.value AND due.status IN ('pending', 'failed') AND due.delayed IS NOT 0
                 AND due.scheduled_at <= :now)
    OR EXISTS (SELECT 1 FROM taskito_jobs INDEXED BY taskito_jobs_expiry
               WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL AND expires_at < :now) AS found;

-- name: claim_plain
-- `claim` when no cap or rate limit applies (see capped_waiting), without its counting: the first
-- :limit jobs of each served queue that is not paused, walked in the claim index, then the first :limit.
UPDATE taskito_jobs
SET status = 'claimed', attempt = attempt + 1, worker_id = :worker_id,
    started_at = NULL, lease_until = :lease_until, start_after = NULL
WHERE seq IN (
    SELECT seq FROM (
        SELECT j.seq, j.priority, j.scheduled_at FROM json_each(:queues) AS served, taskito_jobs AS j
        WHERE served.value NOT IN (SELECT name FROM taskito_paused_queues)
          AND j.seq IN (SELECT ready.seq FROM taskito_jobs AS ready INDEXED BY taskito_jobs_ready
                        WHERE ready.queue = served.value AND ready.status IN ('pending', 'failed')
                          AND ready.waiting_deps = 0 AND ready.delayed = 0
                        ORDER BY ready.priority DESC, ready.scheduled_at, ready.seq
                        LIMIT :limit)
    )
    ORDER BY priority DESC, scheduled_at, seq
    LIMIT :limit
)
RETURNING seq, id, task_name, queue, status, priority, payload, retry_count, max_retries,
          timeout, attempt, created_at, scheduled_at, expires_at, started_at, worker_id,
          cancel_requested, max_concurrent, concurrency_key, start_after,
          workflow_id, wf_stage, wf_member, wf_mode;

-- name: bump_rate_limit
-- After a claim, in its transaction: the task's next slot begins after the last one handed out.
UPDATE taskito_rate_limits SET next_at = :next_at WHERE task_name = :task_name AND next_at < :next_at;

-- name: start
UPDATE taskito_jobs SET status = 'running', started_at = :started_at
WHERE id = :job_id AND attempt = :attempt AND status = 'claimed';

-- name: with_dependents
-- The jobs of a batch of completions (:ids, a JSON array) that others depend on: release_dependents
-- runs for those only (a statement per job otherwise, for nothing in the usual case).
SELECT DISTINCT depends_on AS id FROM taskito_job_deps WHERE depends_on IN (SELECT value FROM json_each(:ids));

-- name: release_dependents
-- Run just before `complete`, in its transaction: only while this attempt still holds the job,
-- so a stale or repeated completion does not release its dependents a second time.
UPDATE taskito_jobs SET waiting_deps = waiting_deps - 1
WHERE id IN (SELECT job_id FROM taskito_job_deps WHERE depends_on = :job_id)
  AND waiting_deps > 0
  AND EXISTS (SELECT 1 FROM taskito_jobs held WHERE held.id = :job_id AND held.attempt = :attempt
              AND held.status IN ('claimed', 'running'));

-- name: complete
-- A completion carries its attempt's start: its start mark may not have been written yet.
UPDATE taskito_jobs
SET status = 'complete', result = :result, started_at = COALESCE(:started_at, started_at),
    finished_at = :finished_at, lease_until = NULL, error = NULL
WHERE id = :job_id AND attempt = :attempt AND status IN ('claimed', 'running');

-- name: fail_retry
UPDATE taskito_jobs
SET status = 'failed', error = :error, retry_count = retry_count + 1, started_at = COALESCE(:started_at, started_at),
    first_started_at = COALESCE(first_started_at, :started_at, started_at),
    scheduled_at = :scheduled_at, delayed = :scheduled_at > :now, lease_until = NULL, worker_id = NULL
WHERE id = :job_id AND attempt = :attempt AND status IN ('claimed', 'running');

-- name: fail_dead
UPDATE taskito_jobs
SET status = 'dead', error = :error, started_at = COALESCE(:started_at, started_at), finished_at = :now,
    lease_until = NULL
WHERE id = :job_id AND attempt = :attempt AND status IN ('claimed', 'running');

-- name: record_completions
-- The task minutes of a batch of completions (see migration 10), in its transaction, one upsert per key
-- rather than per job: :done is a JSON array of [id, attempt, finished_at], and only jobs that this
-- batch completed (that attempt, that time) count, not those a stale completion found finished.
INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum, wait_sum)
SELECT minute, queue, task_name, 'complete', runtime_le, wait_le, count(*), total(runtime), total(wait)
FROM (SELECT CAST(j.finished_at / 60 AS INTEGER) * 60 AS minute, j.queue, j.task_name,
             max(0.0, j.finished_at - j.started_at) AS runtime, max(0.0, j.started_at - j.scheduled_at) AS wait,
             CASE WHEN j.started_at IS NULL THEN 0 ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds
                  WHERE le >= max(0.0, j.finished_at - j.started_at)), 9e999) END AS runtime_le,
             CASE WHEN j.started_at IS NULL THEN 0 ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds
                  WHERE le >= max(0.0, j.started_at - j.scheduled_at)), 9e999) END AS wait_le
      FROM json_each(:done) AS done
      JOIN taskito_jobs AS j ON j.id = json_extract(done.value, '$[0]')
      WHERE j.status = 'complete' AND j.attempt = json_extract(done.value, '$[1]')
        AND j.finished_at = json_extract(done.value, '$[2]'))
GROUP BY minute, queue, task_name, runtime_le, wait_le
ON CONFLICT (minute, queue, task_name, outcome, runtime_le, wait_le)
DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum,
              wait_sum = wait_sum + excluded.wait_sum;

-- name: insert_error
-- With its job's task, so that the error is counted per task (see taskito_failure_counts).
INSERT INTO taskito_job_errors (job_id, attempt, error, traceback, failed_at, task_name)
VALUES (:job_id, :attempt, :error, :traceback, :now, (SELECT task_name FROM taskito_jobs WHERE id = :job_id));

-- name: requeue
UPDATE taskito_jobs
SET status = 'pending', worker_id = NULL, lease_until = NULL, started_at = NULL, delayed = 0
WHERE id = :job_id AND worker_id = :worker_id AND status IN ('claimed', 'running');

-- name: next_due
-- When the next delayed job of these queues comes due, or the next waiting job (of any queue) expires:
-- time passing changes nothing in the database, so an idle worker sets its alarm by this. One index
-- lookup per queue (the smallest scheduled_at), one for expiry.
SELECT min((SELECT min(scheduled_at) FROM taskito_jobs INDEXED BY taskito_jobs_delayed
            WHERE queue = served.value AND status IN ('pending', 'failed') AND delayed IS NOT 0))
       AS scheduled,
       (SELECT min(expires_at) FROM taskito_jobs INDEXED BY taskito_jobs_expiry
        WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL) AS expires
FROM json_each(:queues) AS served;

-- name: set_progress
UPDATE taskito_jobs SET progress = :progress WHERE id = :job_id;

-- name: cancel_job
UPDATE taskito_jobs
SET status = 'cancelled', error = 'cancelled', finished_at = :now
WHERE id = :job_id AND status IN ('pending', 'failed')
RETURNING id;

-- name: request_cancel
-- A job a worker holds: its worker stops it (see cancel_requests) and records it cancelled.
UPDATE taskito_jobs SET cancel_requested = 1
WHERE id = :job_id AND status IN ('claimed', 'running')
RETURNING id;

-- name: cancel_requests
-- The jobs of this worker whose cancellation was asked for (a lookup in a tiny partial index).
SELECT id, attempt FROM taskito_jobs INDEXED BY taskito_jobs_cancel_requested
WHERE worker_id = :worker_id AND cancel_requested <> 0 AND status IN ('claimed', 'running');

-- name: finish_cancelled
-- An attempt stopped because its cancellation was asked for: the job ends cancelled.
UPDATE taskito_jobs
SET status = 'cancelled', error = :error, started_at = COALESCE(:started_at, started_at),
    finished_at = :now, lease_until = NULL
WHERE id = :job_id AND attempt = :attempt AND status IN ('claimed', 'running')
RETURNING id;

-- name: cancel_waiting
-- One chunk of a bulk cancel (purge_queue, revoke_task): waiting jobs of a queue or of a task.
UPDATE taskito_jobs
SET status = 'cancelled', error = :reason, finished_at = :now
WHERE seq IN (SELECT seq FROM taskito_jobs INDEXED BY taskito_jobs_waiting
              WHERE (queue, task_name) IN (SELECT queue, task_name FROM taskito_counts
                                           WHERE status IN ('pending', 'failed') AND n > 0
                                             AND (:queue IS NULL OR queue = :queue)
                                             AND (:task_name IS NULL OR task_name = :task_name))
                AND status IN ('pending', 'failed')
              LIMIT :limit)
RETURNING id;

-- name: dead_ids
SELECT id, seq FROM taskito_jobs
WHERE (CASE status WHEN 'claimed' THEN 'pending' ELSE status END) = 'dead'
  AND (:queue IS NULL OR queue = :queue) AND (:task_name IS NULL OR task_name = :task_name)
  AND seq > :after
ORDER BY seq LIMIT :limit;

-- name: get_job
-- With the ids it depends on (a JSON array), so that reading a job is one query.
SELECT j.*, (SELECT json_group_array(d.depends_on) FROM
                 (SELECT depends_on FROM taskito_job_deps WHERE job_id = j.id ORDER BY depends_on) d)
            AS depends_on
FROM taskito_jobs j WHERE j.id = :job_id;

-- name: list_jobs
-- Partial rows: the payload cut here to its first "head" bytes, its full length, the error cut to as
-- many characters, and no result, so a listing of jobs with megabytes of arguments reads kilobytes.
-- Claimed jobs (not started yet) are listed as pending.
-- The filters asked for (list_jobs_by_*, joined with AND) replace the marker. Each has an index in
-- seq order, so a page filtered by one reads about as many rows as it shows, whatever the table
-- holds; with several, one index leads and the others filter the rows it yields.
SELECT id, task_name, queue, status, priority, substr(payload, 1, :head) AS payload,
       length(payload) AS payload_size,
       CASE WHEN length(error) > :head THEN substr(error, 1, :head) || '…' ELSE error END AS error,
       retry_count, max_retries, timeout, attempt, progress, unique_key, created_at, scheduled_at,
       expires_at, started_at, finished_at, worker_id, first_started_at
FROM taskito_jobs
WHERE /* filters */ AND status <> 'staged'
ORDER BY {order}  -- one of sqlbase.JOB_ORDERS
LIMIT :limit OFFSET :offset;

-- name: list_jobs_matching
-- list_jobs with text: the most recent :scan rows that pass the filters ({recent}: seq or id, newest
-- first), whose first :reach bytes of arguments or of error contain the text (LIKE: ASCII letters in
-- any case). Bounded: it reads :scan rows at most, whatever the table holds.
SELECT id, task_name, queue, status, priority, substr(payload, 1, :head) AS payload, payload_size,
       CASE WHEN length(error) > :head THEN substr(error, 1, :head) || '…' ELSE error END AS error,
       retry_count, max_retries, timeout, attempt, progress, unique_key, created_at, scheduled_at,
       expires_at, started_at, finished_at, worker_id, first_started_at
FROM (SELECT seq, id, task_name, queue, status, priority, substr(payload, 1, :reach) AS payload,
             length(payload) AS payload_size, substr(error, 1, :reach) AS error, retry_count, max_retries,
             timeout, attempt, progress, unique_key, created_at, scheduled_at, expires_at, started_at,
             finished_at, worker_id, first_started_at
      FROM taskito_jobs
      WHERE /* filters */ AND status <> 'staged'
      ORDER BY {recent}
      LIMIT :scan) AS recent
WHERE CAST(payload AS TEXT) LIKE :payload_pattern ESCAPE '\' OR error LIKE :pattern ESCAPE '\'
ORDER BY {order}
LIMIT :limit OFFSET :offset;

-- name: list_jobs_by_id_prefix
-- Ids are lowercase hex: those starting with :id_prefix are the range up to :id_prefix || 'g' of the
-- id index.
id >= :id_prefix AND id < :id_end AND substr(id, 1, :id_length) = :id_prefix

-- name: list_jobs_finished
-- Sorted by finish time with a status of finished jobs: the index taskito_jobs_finished reads them in order.
status = :status AND finished_at IS NOT NULL

-- name: list_jobs_by_status
-- The status users see: the expression of the index taskito_jobs_listed_by_status, word for word.
(CASE status WHEN 'claimed' THEN 'pending' ELSE status END) = :status

-- name: list_jobs_by_queue
queue = :queue

-- name: list_jobs_by_task
task_name = :task_name

-- name: job_errors
SELECT attempt, error, traceback, failed_at FROM taskito_job_errors
WHERE job_id = :job_id ORDER BY id;

-- name: stats
-- Counts come from the counter table the triggers keep (migration 5), never from counting jobs.
SELECT status, sum(n) AS n FROM taskito_counts
WHERE (:queue IS NULL OR queue = :queue)
GROUP BY status;

-- name: stats_all_queues
SELECT queue, status, sum(n) AS n FROM taskito_counts GROUP BY queue, status HAVING sum(n) <> 0;

-- name: delete_job
DELETE FROM taskito_jobs WHERE id = :job_id AND status = :status RETURNING id;

-- name: delete_job_details
DELETE FROM taskito_job_errors WHERE job_id = :job_id;

-- name: purge_jobs
-- One chunk of a purge (:limit jobs), with the ids deleted; then their errors and the dependency
-- rows that name them go (purge_details). The jobs of a running workflow stay: a later step reads
-- their results.
DELETE FROM taskito_jobs WHERE seq IN (
    SELECT seq FROM taskito_jobs AS j INDEXED BY taskito_jobs_finished
    WHERE status = :status AND finished_at < :before
      AND (workflow_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM taskito_workflows AS w WHERE w.id = j.workflow_id AND w.status = 'running'))
    LIMIT :limit)
RETURNING id;

-- name: purge_errors
DELETE FROM taskito_job_errors WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: purge_deps
DELETE FROM taskito_job_deps WHERE depends_on IN (SELECT value FROM json_each(:ids));

-- name: expired_leases
SELECT * FROM taskito_jobs WHERE status IN ('claimed', 'running') AND lease_until < :now;

-- name: pause
INSERT OR IGNORE INTO taskito_paused_queues (name, paused_at) VALUES (:name, :now);

-- name: resume
DELETE FROM taskito_paused_queues WHERE name = :name;

-- name: paused_queues
SELECT name FROM taskito_paused_queues ORDER BY name;

-- name: register_worker
INSERT OR REPLACE INTO taskito_workers (id, hostname, pid, queues, concurrency, started_at, last_heartbeat)
VALUES (:id, :hostname, :pid, :queues, :concurrency, :now, :now);

-- name: heartbeat_worker
UPDATE taskito_workers SET last_heartbeat = :now WHERE id = :worker_id;

-- name: renew_leases
UPDATE taskito_jobs SET lease_until = :lease_until
WHERE worker_id = :worker_id AND status IN ('claimed', 'running') AND id IN (SELECT value FROM json_each(:ids));

-- name: unregister_worker
DELETE FROM taskito_workers WHERE id = :worker_id;

-- name: forget_stale_workers
DELETE FROM taskito_workers WHERE last_heartbeat < :now - :forget_after;

-- name: workers
SELECT w.*, (SELECT count(*) FROM taskito_jobs j
             WHERE j.worker_id = w.id AND j.status = 'running') AS running
FROM taskito_workers w WHERE last_heartbeat >= :now - :alive_within ORDER BY started_at;

-- name: upsert_periodic
-- A schedule declared again (a deploy, a worker restart) keeps whether it is paused and when it last ran.
INSERT INTO taskito_periodic (name, task_name, cron, timezone, payload, queue, next_run_at)
VALUES (:name, :task_name, :cron, :timezone, :payload, :queue, :next_run_at)
ON CONFLICT (name) DO UPDATE SET
    task_name = excluded.task_name, payload = excluded.payload, queue = excluded.queue,
    next_run_at = CASE WHEN taskito_periodic.cron = excluded.cron
                        AND taskito_periodic.timezone IS excluded.timezone
                       THEN taskito_periodic.next_run_at ELSE excluded.next_run_at END,
    cron = excluded.cron, timezone = excluded.timezone;

-- name: due_periodic
SELECT name, task_name, cron, payload, queue, timezone, next_run_at
FROM taskito_periodic WHERE next_run_at <= :now AND paused = 0;

-- name: advance_periodic
UPDATE taskito_periodic SET next_run_at = :new_next, last_run_at = :now
WHERE name = :name AND next_run_at = :expected_next AND paused = 0;

-- name: list_periodic
SELECT name, task_name, cron, payload, queue, timezone, next_run_at, last_run_at, paused
FROM taskito_periodic ORDER BY name;

-- name: get_periodic
SELECT name, task_name, cron, payload, queue, timezone, next_run_at, last_run_at, paused
FROM taskito_periodic WHERE name = :name;

-- name: set_periodic_paused
-- Resuming starts again from the next tick after now (:next_run_at): ticks missed while paused are not fired.
UPDATE taskito_periodic SET paused = :paused, next_run_at = COALESCE(:next_run_at, next_run_at)
WHERE name = :name;

-- name: ran_periodic
UPDATE taskito_periodic SET last_run_at = :now WHERE name = :name;

-- name: task_counts
-- Monitoring (the dashboard's /metrics), over the rows still retained, from the counters: per task,
-- stored status and run-time bucket (runtime_le: 0 for no run time, infinity above every bound).
SELECT task_name, status, runtime_le, sum(n) AS n, sum(runtime_sum) AS runtime_sum FROM taskito_counts
GROUP BY task_name, status, runtime_le HAVING sum(n) <> 0;

-- name: task_failures
SELECT task_name, sum(n) AS n FROM taskito_failure_counts GROUP BY task_name HAVING sum(n) <> 0;

-- name: count_differences
-- The job counters against a recount of the jobs table, in one statement (one snapshot): the keys
-- whose count or run-time sum differ.
SELECT queue, task_name, status, runtime_le, sum(counted) AS counted, sum(actual) AS actual,
       total(counted_sum) AS counted_sum, total(actual_sum) AS actual_sum
FROM (
    SELECT queue, task_name, status, runtime_le, n AS counted, 0 AS actual,
           runtime_sum AS counted_sum, 0.0 AS actual_sum
    FROM taskito_counts
    UNION ALL
    SELECT queue, task_name, status,
           CASE WHEN seconds IS NULL THEN 0
                ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds WHERE le >= seconds), 9e999) END,
           0, 1, 0.0, coalesce(seconds, 0)
    FROM (SELECT queue, task_name, CASE status WHEN 'claimed' THEN 'pending' ELSE status END AS status,
                 CASE WHEN status = 'complete' THEN finished_at - started_at END AS seconds
          FROM taskito_jobs)
)
GROUP BY queue, task_name, status, runtime_le
HAVING sum(counted) <> sum(actual) OR abs(total(counted_sum) - total(actual_sum)) > 0.001 + 1e-9 * abs(total(actual_sum));

-- name: failure_count_differences
SELECT task_name, sum(counted) AS counted, sum(actual) AS actual FROM (
    SELECT task_name, n AS counted, 0 AS actual FROM taskito_failure_counts
    UNION ALL
    SELECT task_name, 0, 1 FROM taskito_job_errors WHERE task_name IS NOT NULL
)
GROUP BY task_name HAVING sum(counted) <> sum(actual);

-- name: recount_jobs
-- Replace every job counter by a recount of the jobs table (taskito check --repair), in one statement
-- under the write lock; a counter no job matches any more is set to 0.
REPLACE INTO taskito_counts (queue, task_name, status, runtime_le, n, runtime_sum)
SELECT queue, task_name, status, runtime_le, sum(n), total(seconds) FROM (
    SELECT queue, task_name, status, runtime_le, 0 AS n, 0.0 AS seconds FROM taskito_counts
    UNION ALL
    SELECT queue, task_name, status,
           CASE WHEN seconds IS NULL THEN 0
                ELSE coalesce((SELECT min(le) FROM taskito_runtime_bounds WHERE le >= seconds), 9e999) END,
           1, coalesce(seconds, 0)
    FROM (SELECT queue, task_name, CASE status WHEN 'claimed' THEN 'pending' ELSE status END AS status,
                 CASE WHEN status = 'complete' THEN finished_at - started_at END AS seconds
          FROM taskito_jobs)
)
GROUP BY queue, task_name, status, runtime_le;

-- name: recount_failures
REPLACE INTO taskito_failure_counts (task_name, n)
SELECT task_name, sum(n) FROM (
    SELECT task_name, 0 AS n FROM taskito_failure_counts
    UNION ALL
    SELECT task_name, 1 FROM taskito_job_errors WHERE task_name IS NOT NULL
)
GROUP BY task_name;

-- name: finished_per_bucket
SELECT CAST((finished_at - :since) / :step AS INTEGER) AS bucket, status, count(*) AS n
FROM taskito_jobs
WHERE status IN ('complete', 'dead') AND finished_at >= :since
GROUP BY bucket, status;

-- name: failures_per_bucket
SELECT CAST((failed_at - :since) / :step AS INTEGER) AS bucket, count(*) AS n
FROM taskito_job_errors WHERE failed_at >= :since
GROUP BY bucket;

-- name: add_job_log
-- One line of current_job.log(), unless its job holds :limit lines already (counting stops there).
INSERT INTO taskito_job_logs (job_id, logged_at, level, message, extra)
SELECT :job_id, :logged_at, :level, :message, :extra
WHERE (SELECT count(*) FROM (SELECT 1 FROM taskito_job_logs WHERE job_id = :job_id LIMIT :limit)) < :limit;

-- name: job_logs
SELECT id, logged_at, level, message, extra FROM taskito_job_logs
WHERE job_id = :job_id AND id > :after ORDER BY id LIMIT :limit;

-- name: task_minutes
-- Per task, queue, outcome and buckets since :since: a week is at most 24 * 6 hour rows and a day of
-- minute rows per key (see taskito_task_minutes), however many jobs ran.
SELECT queue, task_name, outcome, runtime_le, wait_le, sum(n) AS n, sum(runtime_sum) AS runtime_sum,
       sum(wait_sum) AS wait_sum
FROM taskito_task_minutes WHERE minute >= :since
GROUP BY queue, task_name, outcome, runtime_le, wait_le;

-- name: task_minutes_series
-- The same in :step-second buckets (bucket 0 starts at :since), for charts.
SELECT CAST((minute - :since) / :step AS INTEGER) AS bucket, task_name, outcome, sum(n) AS n,
       sum(runtime_sum) AS runtime_sum
FROM taskito_task_minutes WHERE minute >= :since
GROUP BY bucket, task_name, outcome;

-- name: grouped_task_minutes
-- The rows of [:start, :end) merged into one per key and :step seconds (a past minute's rows, or a
-- past day's minutes into hours): read, then deleted (delete_task_minutes) and written back.
SELECT CAST(minute / :step AS INTEGER) * :step AS minute, queue, task_name, outcome, runtime_le, wait_le,
       sum(n) AS n, sum(runtime_sum) AS runtime_sum, sum(wait_sum) AS wait_sum
FROM taskito_task_minutes WHERE minute >= :start AND minute < :end
GROUP BY 1, queue, task_name, outcome, runtime_le, wait_le;

-- name: delete_task_minutes
DELETE FROM taskito_task_minutes WHERE minute >= :start AND minute < :end;

-- name: insert_task_minutes
INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum, wait_sum)
VALUES (:minute, :queue, :task_name, :outcome, :runtime_le, :wait_le, :n, :runtime_sum, :wait_sum)
ON CONFLICT (minute, queue, task_name, outcome, runtime_le, wait_le)
DO UPDATE SET n = n + excluded.n, runtime_sum = runtime_sum + excluded.runtime_sum,
              wait_sum = wait_sum + excluded.wait_sum;

-- name: oldest_due
-- When the longest-waiting due job of :queue became due: a few index lookups, whatever the backlog.
-- Due jobs in the claim index: the earliest of each priority level (walked level by level); delayed
-- ones (not promoted yet) are due once their time has come.
WITH RECURSIVE levels(priority) AS (
    SELECT (SELECT max(priority) FROM taskito_jobs INDEXED BY taskito_jobs_ready
            WHERE queue = :queue AND status IN ('pending', 'failed') AND waiting_deps = 0 AND delayed = 0)
    UNION ALL
    SELECT (SELECT max(j.priority) FROM taskito_jobs AS j INDEXED BY taskito_jobs_ready
            WHERE j.queue = :queue AND j.status IN ('pending', 'failed') AND j.waiting_deps = 0 AND j.delayed = 0
              AND j.priority < levels.priority)
    FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min(oldest) AS oldest FROM (
    SELECT (SELECT min(j.scheduled_at) FROM taskito_jobs AS j INDEXED BY taskito_jobs_ready
            WHERE j.queue = :queue AND j.status IN ('pending', 'failed') AND j.waiting_deps = 0 AND j.delayed = 0
              AND j.priority = levels.priority) AS oldest
    FROM levels WHERE levels.priority IS NOT NULL
    UNION ALL
    -- The first delayed job in the index, if due: min() with a HAVING walked every delayed job of the queue.
    SELECT scheduled_at FROM (SELECT scheduled_at FROM taskito_jobs INDEXED BY taskito_jobs_delayed
                              WHERE queue = :queue AND status IN ('pending', 'failed') AND delayed IS NOT 0
                              ORDER BY scheduled_at LIMIT 1)
    WHERE scheduled_at <= :now
);

-- name: prune_task_minutes
DELETE FROM taskito_task_minutes WHERE minute < :before;

-- Workflows (migration 8). --------------------------------------------------------------------

-- name: insert_workflow
-- A workflow stored already under its id (sent again after a commit whose answer was lost) stays as it is.
INSERT INTO taskito_workflows (id, kind, status, stages, created_at)
VALUES (:id, :kind, 'running', :stages, :created_at)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: insert_workflow_stage
INSERT INTO taskito_workflow_stages (workflow_id, stage, size, remaining, is_group)
VALUES (:workflow_id, :stage, :size, :size, :is_group);

-- name: insert_workflow_job
-- A job of a workflow: stage 0 claimable at once, later stages held (waiting_deps 1) until the stage
-- before them completes, the error callback (stage -1) staged: never claimed, listed nor counted.
INSERT INTO taskito_jobs (id, task_name, queue, status, priority, payload, max_retries, timeout,
                          waiting_deps, created_at, scheduled_at, expires_at, delayed,
                          workflow_id, wf_stage, wf_member, wf_mode)
VALUES (:id, :task_name, :queue, :status, :priority, :payload, :max_retries, :timeout,
        :waiting_deps, :created_at, :scheduled_at, :expires_at, :delayed,
        :workflow_id, :wf_stage, :wf_member, :wf_mode)
ON CONFLICT (id) DO NOTHING;

-- name: workflow_step_done
-- Run before `complete`, in its transaction, for a completion of a workflow job: only while this
-- attempt still holds the job, so that a stale or repeated completion counts nothing.
UPDATE taskito_workflow_stages SET remaining = remaining - 1
WHERE remaining > 0
  AND (workflow_id, stage) = (SELECT workflow_id, wf_stage FROM taskito_jobs
                              WHERE id = :job_id AND attempt = :attempt AND status IN ('claimed', 'running')
                                AND wf_stage >= 0)
RETURNING workflow_id, stage, remaining;

-- name: workflow_release_stage
-- The stage before these jobs completed: they become claimable (those not cancelled meanwhile).
UPDATE taskito_jobs SET waiting_deps = 0
WHERE workflow_id = :workflow_id AND wf_stage = :stage + 1 AND status = 'pending' AND waiting_deps > 0;

-- name: workflow_finish
-- The last stage completed: the workflow is complete (unless it failed or was cancelled meanwhile).
UPDATE taskito_workflows SET status = 'complete', finished_at = :now
WHERE id = :workflow_id AND status = 'running' AND stages = :stage + 1
RETURNING id;

-- name: workflow_of
SELECT workflow_id, wf_stage FROM taskito_jobs WHERE id = :job_id AND workflow_id IS NOT NULL;

-- name: end_workflow
-- Only the first ending counts: a second step dying, or a cancel after a failure, changes nothing.
UPDATE taskito_workflows
SET status = :status, finished_at = :now, failed_job_id = :failed_job_id, error = :error
WHERE id = :workflow_id AND status = 'running'
RETURNING id;

-- name: cancel_workflow_jobs
-- Every step not started yet (or waiting for a retry); the error callback is not a step.
UPDATE taskito_jobs SET status = 'cancelled', error = :reason, finished_at = :now
WHERE workflow_id = :workflow_id AND wf_stage >= 0 AND status IN ('pending', 'failed')
RETURNING id;

-- name: start_error_callback
UPDATE taskito_jobs SET status = 'pending', delayed = 0, scheduled_at = :now, created_at = :now
WHERE workflow_id = :workflow_id AND wf_stage = -1 AND status = 'staged';

-- name: drop_error_callback
DELETE FROM taskito_jobs WHERE workflow_id = :workflow_id AND wf_stage = -1 AND status = 'staged';

-- name: get_workflow
SELECT id, kind, status, stages, created_at, finished_at, failed_job_id, error
FROM taskito_workflows WHERE id = :workflow_id;

-- name: list_workflows
-- Newest first by id (the time sent, then random): the primary key's order. Stages done: those whose
-- members all completed.
SELECT w.id, w.kind, w.status, w.created_at, w.finished_at, w.failed_job_id, w.error, w.stages,
       (SELECT count(*) FROM taskito_workflow_stages AS s WHERE s.workflow_id = w.id AND s.remaining = 0)
           AS stages_done,
       (SELECT coalesce(sum(s.size), 0) FROM taskito_workflow_stages AS s WHERE s.workflow_id = w.id) AS jobs
FROM taskito_workflows AS w
ORDER BY w.id DESC
LIMIT :limit OFFSET :offset;

-- name: workflow_stages
SELECT stage, size, remaining, is_group FROM taskito_workflow_stages
WHERE workflow_id = :workflow_id ORDER BY stage;

-- name: workflow_jobs
-- The jobs of a workflow in order (the error callback, stage -1, first), as they are now.
SELECT id, task_name, CASE status WHEN 'claimed' THEN 'pending' ELSE status END AS status,
       wf_stage, wf_member, started_at, finished_at
FROM taskito_jobs WHERE workflow_id = :workflow_id
ORDER BY wf_stage, wf_member;

-- name: stage_results
-- What the members of one stage returned, in member order (the next stage's input).
SELECT result FROM taskito_jobs WHERE workflow_id = :workflow_id AND wf_stage = :stage
ORDER BY wf_member;

-- name: purge_workflows
-- Workflows finished before :before whose jobs are all gone (purged).
DELETE FROM taskito_workflows
WHERE status <> 'running' AND finished_at < :before
  AND NOT EXISTS (SELECT 1 FROM taskito_jobs WHERE workflow_id = taskito_workflows.id)
RETURNING id;

-- name: purge_workflow_stages
DELETE FROM taskito_workflow_stages WHERE workflow_id IN (SELECT value FROM json_each(:ids));
