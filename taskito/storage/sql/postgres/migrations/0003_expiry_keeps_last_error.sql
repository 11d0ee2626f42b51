-- taskito schema v3: a job that expires while waiting for its retry ran already, so its
-- message says so and keeps its last error (v1 said "expired before it started").
-- taskito_claim() as in v1 otherwise.

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
