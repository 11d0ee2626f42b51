-- taskito schema: taskito_complete() records the task minutes of its completions itself.
--
-- v12's statement trigger found each batch's outcomes by grouping the rows before and after the update
-- by id, which made it about as costly as the update itself (0.4 ms a batch of 40). taskito_complete()
-- knows its rows are completions (only claimed and running jobs are updated), and its update returns
-- what the minutes need: it adds them up in the same statement and tells the trigger, through a setting
-- local to the transaction, that this update is counted. Every other change of status (failures,
-- expiries, cancellations, a workflow's end) is still counted by the trigger.

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
    PERFORM set_config('taskito.minutes_recorded', 'on', true);
    released := 0;
    WITH done AS (
        UPDATE taskito_jobs AS j
        SET status = 'complete', result = batch.result, started_at = coalesce(batch.started, j.started_at),
            finished_at = coalesce(batch.finished, p_now), lease_until = NULL, error = NULL
        FROM unnest(p_ids, p_attempts, p_results, p_started, p_finished)
             AS batch(id, attempt, result, started, finished)
        WHERE j.id = ANY(p_ids) AND j.id = batch.id AND j.attempt = batch.attempt
          AND CASE WHEN j.status IN ('claimed', 'running') THEN true ELSE false END
        RETURNING j.id, j.workflow_id, j.wf_stage, j.queue, j.task_name, j.finished_at,
                  CASE WHEN j.started_at IS NOT NULL THEN greatest(0.0, j.finished_at - j.started_at) END AS runtime,
                  CASE WHEN j.started_at IS NOT NULL THEN greatest(0.0, j.started_at - j.scheduled_at) END AS wait
    ), minutes AS (
        INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum,
                                          wait_sum)
        SELECT floor(finished_at / 60)::bigint * 60, queue, task_name, 'complete', taskito_runtime_le(runtime),
               taskito_runtime_le(wait), count(*), coalesce(sum(runtime), 0), coalesce(sum(wait), 0)
        FROM done
        GROUP BY 1, queue, task_name, taskito_runtime_le(runtime), taskito_runtime_le(wait)
    )
    SELECT coalesce(array_agg(id), '{}'),
           array_agg(workflow_id) FILTER (WHERE workflow_id IS NOT NULL AND wf_stage >= 0),
           array_agg(wf_stage) FILTER (WHERE workflow_id IS NOT NULL AND wf_stage >= 0)
    INTO completed, wf_ids, wf_stages FROM done;
    PERFORM set_config('taskito.minutes_recorded', 'off', true);
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

CREATE OR REPLACE FUNCTION taskito_record_task_minutes() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('taskito.minutes_recorded', true) = 'on' THEN
        RETURN NULL;  -- taskito_complete() recorded them from what its update returned
    END IF;
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status IN ('complete', 'failed', 'dead', 'cancelled')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO taskito_task_minutes (minute, queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum,
                                      wait_sum)
    SELECT floor(ended / 60)::bigint * 60, queue, task_name, outcome, taskito_runtime_le(runtime),
           taskito_runtime_le(wait), count(*), coalesce(sum(runtime), 0), coalesce(sum(wait), 0)
    FROM (SELECT ended, queue, task_name, outcome,
                 CASE WHEN outcome <> 'cancelled' AND started_at IS NOT NULL
                      THEN greatest(0.0, ended - started_at) END AS runtime,
                 CASE WHEN outcome <> 'cancelled' AND started_at IS NOT NULL
                      THEN greatest(0.0, started_at - due_at) END AS wait
          FROM (SELECT CASE WHEN max(new_status) IN ('complete', 'dead') AND max(finished_at) IS NOT NULL
                            THEN max(finished_at)
                            ELSE extract(epoch FROM clock_timestamp())::double precision END AS ended,
                       max(queue) AS queue, max(task_name) AS task_name, max(new_status) AS outcome,
                       max(started_at) AS started_at, max(old_scheduled_at) AS due_at
                FROM (SELECT id, NULL::text AS new_status, status AS old_status, NULL::text AS queue,
                             NULL::text AS task_name, NULL::double precision AS started_at,
                             NULL::double precision AS finished_at, scheduled_at AS old_scheduled_at
                      FROM old_rows
                      UNION ALL
                      SELECT id, status, NULL, queue, task_name, started_at, finished_at, NULL
                      FROM new_rows WHERE status IN ('complete', 'failed', 'dead', 'cancelled')) AS sides
                GROUP BY id
                HAVING count(new_status) = 1 AND count(old_status) = 1 AND max(old_status) <> max(new_status)
               ) AS changed
         ) AS attempts
    GROUP BY 1, queue, task_name, outcome, taskito_runtime_le(runtime), taskito_runtime_le(wait);
    RETURN NULL;
END
$$;
