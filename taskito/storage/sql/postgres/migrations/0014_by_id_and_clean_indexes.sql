-- taskito schema: completions and start marks find their jobs by id, whatever the statistics say, and
-- every VACUUM of the jobs table cleans its indexes.
--
-- v9's taskito_complete() and taskito_mark_started() took the jobs of a batch from the held jobs (status
-- claimed or running) and hashed them against the batch: their plans, generic and made at a connection's
-- first call, walked either the whole held_by_group index or a bitmap of every claimed and running row
-- version of status_queue, chosen by the statistics of the moment. A bitmap scan never marks dead entries,
-- so that walk visited every claimed and running version written since the last VACUUM: on a table never
-- analyzed (a new one), or analyzed while many jobs were held, each batch of 18 completions read 500 to
-- 1,000 buffers after 10,000 jobs, and more with every job until the next VACUUM (which autovacuum puts
-- off in proportion to the table's size). Every batch also read every job held by any worker.
--
-- Now the only way to the jobs is their ids: `id = ANY(p_ids)` is the one condition an index can serve
-- (the status is tested through CASE, which neither matches an index nor implies a partial index's
-- condition), and with nested loops, merge joins and sequential scans off the batch is hashed against
-- the jobs found by id. A batch costs its own size, whatever the table, the other workers and the
-- statistics.
--
-- A claim walks the claim index from the head of its queue: the entries of the jobs claimed since the
-- last VACUUM that cleaned the indexes lie there, and each claim steps over them (each 10,000 jobs add
-- about 14 buffers per job claimed). PostgreSQL's VACUUM skips the indexes when under 2 % of the table's
-- pages hold dead rows, which on a table of millions of jobs lets tens of thousands of them pile up
-- across vacuums. On this table a VACUUM always cleans them (about half a second per million jobs).
ALTER TABLE taskito_jobs SET (vacuum_index_cleanup = on);

CREATE OR REPLACE FUNCTION taskito_complete(p_ids text[], p_attempts integer[], p_results bytea[],
                                            p_started double precision[], p_finished double precision[],
                                            p_now double precision)
RETURNS TABLE (completed text[], released integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_nestloop = off
SET enable_mergejoin = off SET jit = off AS $$
DECLARE
    dependent text;
    finished_deps bigint;
    remaining integer;
    wf_ids text[];
    wf_stages integer[];
    step_workflow text;
    step_stage integer;
    step_count integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    released := 0;
    WITH done AS (
        UPDATE taskito_jobs AS j
        SET status = 'complete', result = batch.result, started_at = coalesce(batch.started, j.started_at),
            finished_at = coalesce(batch.finished, p_now), lease_until = NULL, error = NULL
        FROM unnest(p_ids, p_attempts, p_results, p_started, p_finished)
             AS batch(id, attempt, result, started, finished)
        WHERE j.id = ANY(p_ids) AND j.id = batch.id AND j.attempt = batch.attempt
          AND CASE WHEN j.status IN ('claimed', 'running') THEN true ELSE false END
        RETURNING j.id, j.workflow_id, j.wf_stage
    )
    SELECT coalesce(array_agg(id), '{}'),
           array_agg(workflow_id) FILTER (WHERE workflow_id IS NOT NULL AND wf_stage >= 0),
           array_agg(wf_stage) FILTER (WHERE workflow_id IS NOT NULL AND wf_stage >= 0)
    INTO completed, wf_ids, wf_stages FROM done;
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
    IF wf_ids IS NOT NULL THEN
        FOR step_workflow, step_stage, step_count IN
            SELECT w, s, count(*) FROM unnest(wf_ids, wf_stages) AS steps(w, s) GROUP BY w, s ORDER BY w, s
        LOOP
            UPDATE taskito_workflow_stages
            SET remaining = greatest(taskito_workflow_stages.remaining - step_count, 0)
            WHERE workflow_id = step_workflow AND stage = step_stage AND taskito_workflow_stages.remaining > 0
            RETURNING taskito_workflow_stages.remaining INTO remaining;
            IF FOUND AND remaining = 0 THEN
                released := released + taskito_workflow_advance(step_workflow, step_stage, p_now);
            END IF;
        END LOOP;
    END IF;
    RETURN NEXT;
END
$$;

-- Start marks are the worker's bookkeeping too: like claims and completions, their commit no longer waits
-- for the WAL flush (lost in a server crash, the job shows as claimed and runs again after its lease).
CREATE OR REPLACE FUNCTION taskito_mark_started(p_ids text[], p_attempts integer[], p_started double precision[])
RETURNS void LANGUAGE sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_nestloop = off
SET enable_mergejoin = off SET jit = off AS $$
    SELECT set_config('synchronous_commit', 'off', true);
    UPDATE taskito_jobs AS j SET status = 'running', started_at = mark.started_at
    FROM unnest(p_ids, p_attempts, p_started) AS mark(id, attempt, started_at)
    WHERE j.id = ANY(p_ids) AND j.id = mark.id AND j.attempt = mark.attempt
      AND CASE WHEN j.status = 'claimed' THEN true ELSE false END
$$;
