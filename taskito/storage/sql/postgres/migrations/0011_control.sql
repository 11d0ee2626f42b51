-- taskito schema: control over running work.
-- cancel_requested: queue.cancel_job() on a claimed or running job asks its worker to stop it; the
-- worker looks for requests on its own jobs (the partial index keeps that lookup free).
-- max_concurrent / concurrency_key: a cap on the jobs of one task (and key) held at once, over every
-- worker; the claim counts the held jobs of a candidate's group through taskito_jobs_held_by_group.
-- start_after: the time slot a claim gave a job of a rate-limited task; taskito_rate_limits keeps,
-- per task, when the next slot begins, shared by the whole cluster.
-- Schedules: paused ones are skipped by every worker until resumed; last_run_at for the operator.
ALTER TABLE taskito_jobs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
ALTER TABLE taskito_jobs ADD COLUMN max_concurrent integer;
ALTER TABLE taskito_jobs ADD COLUMN concurrency_key text;
ALTER TABLE taskito_jobs ADD COLUMN start_after double precision;

CREATE INDEX taskito_jobs_cancel_requested ON taskito_jobs (worker_id) WHERE cancel_requested;
-- Jobs put back (or retried) after their cancellation was asked for: each claim cancels them; empty otherwise.
CREATE INDEX taskito_jobs_cancel_put_back ON taskito_jobs (seq)
    WHERE cancel_requested AND status IN ('pending', 'failed');
-- Waiting capped jobs, by queue: a claim of queues that have none (the usual case) takes the plain path.
CREATE INDEX taskito_jobs_capped_waiting ON taskito_jobs (queue)
    WHERE max_concurrent IS NOT NULL AND status IN ('pending', 'failed');
CREATE INDEX taskito_jobs_held_by_group ON taskito_jobs (task_name, (coalesce(concurrency_key, '')))
    WHERE status IN ('claimed', 'running');

CREATE TABLE taskito_rate_limits (
    task_name text             PRIMARY KEY,
    next_at   double precision NOT NULL
);

ALTER TABLE taskito_periodic ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE taskito_periodic ADD COLUMN last_run_at double precision;

-- A capped job that stops being held frees a slot: idle workers are woken to claim the next job of
-- its group (nothing else would announce it). Only capped jobs fire it.
CREATE TRIGGER taskito_jobs_slot_freed AFTER UPDATE OF status ON taskito_jobs
    FOR EACH ROW WHEN (OLD.max_concurrent IS NOT NULL AND OLD.status IN ('claimed', 'running')
                       AND NEW.status NOT IN ('claimed', 'running'))
    EXECUTE FUNCTION taskito_notify_work();

-- The claim of v7, with control: it takes the served tasks' rate limits (p_rate_tasks, and the seconds
-- between two starts of each, p_rate_steps) and hands out time slots that begin within p_horizon
-- seconds (start_after), moving each task's next_at past them; and it never lets the jobs of a group
-- (task and concurrency_key) with a cap (max_concurrent) held at once exceed it, over all workers.
-- Claims that could take jobs of one capped group serialise on an advisory lock of that group, taken
-- after the candidates are locked and before they are counted, in a fixed order (no deadlock);
-- the rate-limit rows are locked first, in name order. The walk skips the jobs of a full group and
-- of a task without a free slot, so those never hold back other tasks' jobs.
DROP FUNCTION taskito_claim(text, text[], double precision, double precision, integer);
CREATE FUNCTION taskito_claim(p_worker_id text, p_queues text[], p_now double precision,
                              p_lease_until double precision, p_limit integer,
                              p_rate_tasks text[], p_rate_steps double precision[], p_horizon double precision)
RETURNS SETOF taskito_jobs LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_sort = off SET jit = off AS $$
DECLARE
    expired_id text;
    exhausted text[] := '{}';
    candidates text[];
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOR expired_id IN
        UPDATE taskito_jobs
        SET status = 'cancelled', finished_at = p_now,
            error = CASE WHEN status = 'failed' THEN 'expired before its retry started; last error: ' || error
                         ELSE 'expired before it started' END
        WHERE id = ANY(ARRAY(
            SELECT id FROM taskito_jobs
            WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL AND expires_at < p_now
            FOR UPDATE SKIP LOCKED
        ))
        RETURNING id
    LOOP
        PERFORM taskito_cancel_dependents(expired_id, 'dependency ' || expired_id || ' expired', p_now);
    END LOOP;
    UPDATE taskito_jobs SET delayed = false
    WHERE id = ANY(ARRAY(
        SELECT id FROM taskito_jobs
        WHERE queue = ANY(p_queues) AND status IN ('pending', 'failed') AND delayed IS NOT FALSE
          AND scheduled_at <= p_now
        FOR UPDATE SKIP LOCKED
    ));
    -- The plain path (as in v7): no rate limit to apply and no capped job waiting in the served queues.
    -- It never takes a capped job (one enqueued meanwhile waits for the next claim, which counts).
    IF cardinality(p_rate_tasks) = 0 AND NOT EXISTS (
        SELECT 1 FROM unnest(p_queues) AS served(name)
        WHERE EXISTS (SELECT 1 FROM taskito_jobs WHERE queue = served.name AND max_concurrent IS NOT NULL
                                                   AND status IN ('pending', 'failed'))) THEN
        RETURN QUERY
        UPDATE taskito_jobs AS j
        SET status = 'claimed', attempt = j.attempt + 1, worker_id = p_worker_id,
            started_at = NULL, lease_until = p_lease_until, start_after = NULL
        WHERE j.id = ANY(ARRAY(
            SELECT candidate.id
            FROM unnest(p_queues) AS served(name)
            CROSS JOIN LATERAL (
                SELECT id, priority, scheduled_at, seq FROM taskito_jobs
                WHERE queue = served.name AND status IN ('pending', 'failed') AND waiting_deps = 0 AND NOT delayed
                  AND (expires_at IS NULL OR expires_at >= p_now) AND max_concurrent IS NULL
                ORDER BY priority DESC, scheduled_at, seq
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            ) AS candidate
            WHERE NOT EXISTS (SELECT 1 FROM taskito_paused_queues WHERE name = served.name)
            ORDER BY candidate.priority DESC, candidate.scheduled_at, candidate.seq
            LIMIT p_limit
        ))
        RETURNING j.*;
        RETURN;
    END IF;
    IF cardinality(p_rate_tasks) > 0 THEN
        INSERT INTO taskito_rate_limits (task_name, next_at)
        SELECT name, 0 FROM unnest(p_rate_tasks) AS t(name) ORDER BY name
        ON CONFLICT (task_name) DO NOTHING;
        PERFORM 1 FROM taskito_rate_limits WHERE task_name = ANY(p_rate_tasks) ORDER BY task_name FOR UPDATE;
        exhausted := ARRAY(SELECT task_name FROM taskito_rate_limits
                           WHERE task_name = ANY(p_rate_tasks) AND next_at > p_now + p_horizon);
    END IF;
    candidates := ARRAY(
        SELECT candidate.id
        FROM unnest(p_queues) AS served(name)
        CROSS JOIN LATERAL (
            SELECT id, priority, scheduled_at, seq FROM taskito_jobs AS ready
            WHERE queue = served.name AND status IN ('pending', 'failed') AND waiting_deps = 0 AND NOT delayed
              AND (expires_at IS NULL OR expires_at >= p_now)
              AND task_name <> ALL(exhausted)
              AND (max_concurrent IS NULL OR max_concurrent > (
                  SELECT count(*) FROM taskito_jobs AS held
                  WHERE held.task_name = ready.task_name
                    AND coalesce(held.concurrency_key, '') = coalesce(ready.concurrency_key, '')
                    AND held.status IN ('claimed', 'running')))
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ) AS candidate
        WHERE NOT EXISTS (SELECT 1 FROM taskito_paused_queues WHERE name = served.name)
        ORDER BY candidate.priority DESC, candidate.scheduled_at, candidate.seq
        LIMIT p_limit
    );
    IF cardinality(candidates) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || ' concurrency'), hashtext(grp.task_name || ' ' || grp.key))
    FROM (SELECT DISTINCT task_name, coalesce(concurrency_key, '') AS key FROM taskito_jobs
          WHERE id = ANY(candidates) AND max_concurrent IS NOT NULL ORDER BY 1, 2) AS grp;
    -- A statement of its own, hence a fresh snapshot: it counts what claims that held those locks committed.
    RETURN QUERY
    WITH rates AS (
        SELECT t.task_name, t.step, greatest(r.next_at, p_now) AS first_slot,
               CASE WHEN r.next_at > p_now + p_horizon THEN 0
                    ELSE floor((p_now + p_horizon - greatest(r.next_at, p_now)) / t.step)::integer + 1 END AS allowed
        FROM unnest(p_rate_tasks, p_rate_steps) AS t(task_name, step)
        JOIN taskito_rate_limits AS r ON r.task_name = t.task_name
    ),
    capped AS (
        SELECT c.id, c.priority, c.scheduled_at, c.seq, c.task_name, c.max_concurrent,
               row_number() OVER (PARTITION BY c.task_name, coalesce(c.concurrency_key, '')
                                  ORDER BY c.priority DESC, c.scheduled_at, c.seq) AS in_group,
               CASE WHEN c.max_concurrent IS NULL THEN 0 ELSE (
                   SELECT count(*) FROM taskito_jobs AS held
                   WHERE held.task_name = c.task_name
                     AND coalesce(held.concurrency_key, '') = coalesce(c.concurrency_key, '')
                     AND held.status IN ('claimed', 'running')) END AS held
        FROM taskito_jobs AS c WHERE c.id = ANY(candidates)
    ),
    slotted AS (
        SELECT a.id, a.priority, a.scheduled_at, a.seq, r.step, r.first_slot, r.allowed,
               row_number() OVER (PARTITION BY a.task_name ORDER BY a.priority DESC, a.scheduled_at, a.seq) AS in_task
        FROM capped AS a LEFT JOIN rates AS r ON r.task_name = a.task_name
        WHERE a.max_concurrent IS NULL OR a.held + a.in_group <= a.max_concurrent
    ),
    picked AS (
        SELECT s.id, CASE WHEN s.step IS NULL THEN NULL ELSE s.first_slot + (s.in_task - 1) * s.step END AS slot
        FROM slotted AS s
        WHERE s.allowed IS NULL OR s.in_task <= s.allowed
        ORDER BY s.priority DESC, s.scheduled_at, s.seq
        LIMIT p_limit
    ),
    claimed AS (
        UPDATE taskito_jobs AS j
        SET status = 'claimed', attempt = j.attempt + 1, worker_id = p_worker_id,
            started_at = NULL, lease_until = p_lease_until, start_after = picked.slot
        FROM picked
        WHERE j.id = ANY(ARRAY(SELECT id FROM picked)) AND j.id = picked.id
        RETURNING j.*
    ),
    bumped AS (
        UPDATE taskito_rate_limits AS b SET next_at = last.slot + rates.step
        FROM (SELECT task_name, max(start_after) AS slot FROM claimed WHERE start_after IS NOT NULL
              GROUP BY task_name) AS last
        JOIN rates ON rates.task_name = last.task_name
        WHERE b.task_name = last.task_name
    )
    SELECT * FROM claimed;
END
$$;
