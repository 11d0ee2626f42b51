-- taskito schema v7: a claim costs the same however many jobs wait elsewhere, and its plan cannot
-- go bad. (Numbered 6: version 5 is taken, 7 by another change in progress.)
-- Jobs due later are kept out of the claim index ("delayed", cleared by the claims of their
-- queue's workers once due), and the claim index leads with the queue, so a worker walks only
-- the due jobs of the queues it serves: not a paused queue's backlog, not another worker's, not
-- a day's worth of delayed jobs. A row written without the flag (NULL: by a release before this
-- one) counts as delayed until its scheduled time, so it is never claimed early.

ALTER TABLE taskito_jobs ADD COLUMN delayed boolean;
UPDATE taskito_jobs SET delayed = scheduled_at > extract(epoch FROM now())
WHERE status IN ('pending', 'failed');

DROP INDEX taskito_jobs_ready;
CREATE INDEX taskito_jobs_ready ON taskito_jobs (queue, priority DESC, scheduled_at, seq)
    WHERE status IN ('pending', 'failed') AND waiting_deps = 0 AND NOT delayed;
CREATE INDEX taskito_jobs_delayed ON taskito_jobs (queue, scheduled_at)
    WHERE status IN ('pending', 'failed') AND delayed IS NOT FALSE;

-- Statements that find a held job by id (start, complete, fail, requeue) also say it is claimed or
-- running, which the lease index's condition was: their cached generic plans could then walk that
-- index (priced as cheap as the id's, and as small as it was when the plan was made) and read every
-- held job per row, fatal when completions fall behind. Its condition now names lease_until too,
-- which only the reaper's statement implies.
DROP INDEX taskito_jobs_lease;
CREATE INDEX taskito_jobs_lease ON taskito_jobs (lease_until)
    WHERE status IN ('claimed', 'running') AND lease_until IS NOT NULL;

-- Job lists, newest first, filtered by the status users see (claimed is pending), by queue or by
-- task: an index each, ordered by seq.
CREATE INDEX taskito_jobs_listed_by_status ON taskito_jobs ((CASE status WHEN 'claimed' THEN 'pending' ELSE status END), seq);
CREATE INDEX taskito_jobs_listed_by_queue ON taskito_jobs (queue, seq);
CREATE INDEX taskito_jobs_listed_by_task ON taskito_jobs (task_name, seq);

-- Cancel expired jobs, let the served queues' delayed jobs that came due join the claim index,
-- then claim up to p_limit due jobs in priority order: the first p_limit of each served queue
-- that is not paused (rows another worker is claiming are skipped, never waited for), then the
-- first p_limit of those. The claim is the worker's bookkeeping: lost in a server crash before
-- its WAL flush, the job merely runs again (at-least-once), so the commit does not wait for the flush.
--
-- Its plans are cached for the connection's life (generic plans), and a plan made while the table
-- was empty would be a sequential scan and a sort, kept when the table holds a million jobs. With
-- sequential scans and sorts off inside the function, the one plan left for each statement walks
-- its index: the claim index per queue, the expiry and delayed indexes by time. (The final merge
-- of at most p_limit rows per queue is sorted whatever the setting.) The cost the planner gives a
-- switched-off plan node would trigger JIT compilation, at every call: JIT is off here too.
CREATE OR REPLACE FUNCTION taskito_claim(p_worker_id text, p_queues text[], p_now double precision,
                              p_lease_until double precision, p_limit integer)
RETURNS SETOF taskito_jobs LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_sort = off SET jit = off AS $$
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
    UPDATE taskito_jobs SET delayed = false
    WHERE id = ANY(ARRAY(
        SELECT id FROM taskito_jobs
        WHERE queue = ANY(p_queues) AND status IN ('pending', 'failed') AND delayed IS NOT FALSE
          AND scheduled_at <= p_now
        FOR UPDATE SKIP LOCKED
    ));
    -- "id = ANY(ARRAY(...))" rather than a join: the plan stays an index lookup per claimed
    -- row even when the cached generic plan cannot know how small the batch is.
    RETURN QUERY
    UPDATE taskito_jobs AS j
    SET status = 'claimed', attempt = j.attempt + 1, worker_id = p_worker_id,
        started_at = NULL, lease_until = p_lease_until
    WHERE j.id = ANY(ARRAY(
        SELECT candidate.id
        FROM unnest(p_queues) AS served(name)
        CROSS JOIN LATERAL (
            SELECT id, priority, scheduled_at, seq FROM taskito_jobs
            WHERE queue = served.name AND status IN ('pending', 'failed') AND waiting_deps = 0 AND NOT delayed
              AND (expires_at IS NULL OR expires_at >= p_now)
            ORDER BY priority DESC, scheduled_at, seq
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ) AS candidate
        WHERE NOT EXISTS (SELECT 1 FROM taskito_paused_queues WHERE name = served.name)
        ORDER BY candidate.priority DESC, candidate.scheduled_at, candidate.seq
        LIMIT p_limit
    ))
    RETURNING j.*;
END
$$;

-- When the next delayed job of these queues comes due, or the next waiting job (of any queue)
-- expires: time passing changes nothing in the database, so an idle worker sets its alarm by
-- this. One index lookup per queue, one for expiry, whatever the plan cache holds.
CREATE FUNCTION taskito_next_due(p_queues text[])
RETURNS TABLE (scheduled double precision, expires double precision) LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_sort = off SET jit = off AS $$
BEGIN
    RETURN QUERY
    SELECT (SELECT min(next.at) FROM unnest(p_queues) AS served(name)
            CROSS JOIN LATERAL (SELECT min(j.scheduled_at) AS at FROM taskito_jobs AS j
                                WHERE j.queue = served.name AND j.status IN ('pending', 'failed')
                                  AND j.delayed IS NOT FALSE) AS next),
           (SELECT min(j.expires_at) FROM taskito_jobs AS j
            WHERE j.status IN ('pending', 'failed') AND j.expires_at IS NOT NULL);
END
$$;
