-- taskito schema: no statement trigger work for an update of no rows.
--
-- Every UPDATE of taskito_jobs fires the statement triggers that keep the counters and the task
-- minutes, even when it changes no row: an idle claim ran three such updates (expiries, delayed jobs
-- falling due, the claim itself), and the counters' trigger grouped its empty transition tables each
-- time, 33 us apiece, a third of the claim's server time. The claim now looks (through the same
-- partial indexes) before it updates expired or due jobs, and the counters' trigger returns at once
-- when the statement changed nothing.

CREATE OR REPLACE FUNCTION taskito_claim(p_worker_id text, p_queues text[], p_now double precision,
                                         p_lease_until double precision, p_limit integer, p_rate_tasks text[],
                                         p_rate_steps double precision[], p_horizon double precision)
RETURNS SETOF taskito_jobs LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_sort = off SET jit = off AS $$
DECLARE
    expired_id text;
    exhausted text[] := '{}';
    candidates text[];
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF EXISTS (SELECT 1 FROM taskito_jobs
               WHERE status IN ('pending', 'failed') AND expires_at IS NOT NULL AND expires_at < p_now) THEN
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
    END IF;
    IF EXISTS (SELECT 1 FROM taskito_jobs
               WHERE queue = ANY(p_queues) AND status IN ('pending', 'failed') AND delayed IS NOT FALSE
                 AND scheduled_at <= p_now) THEN
        UPDATE taskito_jobs SET delayed = false
        WHERE id = ANY(ARRAY(
            SELECT id FROM taskito_jobs
            WHERE queue = ANY(p_queues) AND status IN ('pending', 'failed') AND delayed IS NOT FALSE
              AND scheduled_at <= p_now
            FOR UPDATE SKIP LOCKED
        ));
    END IF;
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

CREATE OR REPLACE FUNCTION taskito_count_updated_jobs() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    appended bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
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
