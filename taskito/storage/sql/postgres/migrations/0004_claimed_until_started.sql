-- taskito schema v4: a claimed job is 'claimed' (shown as pending, held by its worker) until its
-- function starts; only then is it 'running', with started_at the real start. The indexes over
-- jobs a worker holds (leases, unique keys) cover both states; taskito_claim() claims with no
-- start, and taskito_complete() takes each attempt's start and finish. Rows of v3 stay as they are.

DROP INDEX taskito_jobs_lease;
CREATE INDEX taskito_jobs_lease ON taskito_jobs (lease_until) WHERE status IN ('claimed', 'running');
DROP INDEX taskito_jobs_unique;
CREATE UNIQUE INDEX taskito_jobs_unique ON taskito_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'failed', 'claimed', 'running');

-- Cancel expired jobs, then claim up to p_limit due jobs in priority order. Rows another
-- worker is claiming are skipped, never waited for. The claim is the worker's bookkeeping:
-- lost in a server crash before its WAL flush, the job merely runs again (at-least-once), so
-- the commit does not wait for the flush.
CREATE OR REPLACE FUNCTION taskito_claim(p_worker_id text, p_queues text[], p_now double precision,
                              p_lease_until double precision, p_limit integer)
RETURNS SETOF taskito_jobs LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    expired_id text;
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
    -- "id = ANY(ARRAY(...))" rather than a join: the plan stays an index lookup per claimed
    -- row even when the cached generic plan cannot know how small the batch is.
    RETURN QUERY
    UPDATE taskito_jobs AS j
    SET status = 'claimed', attempt = j.attempt + 1, worker_id = p_worker_id,
        started_at = NULL, lease_until = p_lease_until
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
-- Each attempt brings its start and finish (NULL: keep the stored start, finish at p_now): its
-- start mark may not have been written yet.
-- Relaxed commit as for claims: a completion lost in a server crash means the job runs again.
-- It sends no NOTIFY itself (a transaction that notifies waits for the WAL flush after all):
-- the caller notifies right after, in a statement of its own.
DROP FUNCTION taskito_complete(text[], integer[], bytea[], double precision);
CREATE FUNCTION taskito_complete(p_ids text[], p_attempts integer[], p_results bytea[],
                                 p_started double precision[], p_finished double precision[],
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
        SET status = 'complete', result = p_results[i], started_at = coalesce(p_started[i], started_at),
            finished_at = coalesce(p_finished[i], p_now), lease_until = NULL, error = NULL
        WHERE id = p_ids[i] AND attempt = p_attempts[i] AND status IN ('claimed', 'running')
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
