-- taskito schema v9: a batch of completions or start marks costs O(batch), not O(batch squared).
--
-- v8's taskito_complete() also filtered the jobs by `id = ANY(p_ids)`: the planner then took the
-- jobs for a single row and joined them to the batch's arrays by a nested loop that rescanned the
-- arrays once per job (1,000 completions: a million comparisons, a quarter of a second).
-- Nested loops are now off in both functions: the batch is hashed, and the jobs come from the
-- status index (the claimed and running jobs: at most what the workers hold) or by id, whichever
-- the plan (generic, made whatever the table held) found cheaper. Start marks, which ran the same
-- statement from the client, now go through a function with the same settings.

CREATE OR REPLACE FUNCTION taskito_complete(p_ids text[], p_attempts integer[], p_results bytea[],
                                            p_started double precision[], p_finished double precision[],
                                            p_now double precision)
RETURNS TABLE (completed text[], released integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_nestloop = off SET jit = off AS $$
DECLARE
    dependent text;
    finished_deps bigint;
    remaining integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    released := 0;
    WITH done AS (
        UPDATE taskito_jobs AS j
        SET status = 'complete', result = batch.result, started_at = coalesce(batch.started, j.started_at),
            finished_at = coalesce(batch.finished, p_now), lease_until = NULL, error = NULL
        FROM unnest(p_ids, p_attempts, p_results, p_started, p_finished)
             AS batch(id, attempt, result, started, finished)
        WHERE j.id = batch.id AND j.attempt = batch.attempt
          AND j.status IN ('claimed', 'running')
        RETURNING j.id
    )
    SELECT coalesce(array_agg(id), '{}') INTO completed FROM done;
    -- A separate statement, hence a fresh snapshot: it also sees dependents whose enqueue
    -- committed while the update above waited for their FOR SHARE lock on a dependency.
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

-- Mark a batch of claimed jobs as started (running since each one's own start time).
CREATE FUNCTION taskito_mark_started(p_ids text[], p_attempts integer[], p_started double precision[])
RETURNS void LANGUAGE sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_nestloop = off SET jit = off AS $$
    UPDATE taskito_jobs AS j SET status = 'running', started_at = mark.started_at
    FROM unnest(p_ids, p_attempts, p_started) AS mark(id, attempt, started_at)
    WHERE j.id = mark.id AND j.attempt = mark.attempt AND j.status = 'claimed'
$$;
