-- taskito schema: workflows (chain, group, chord) that advance in the database.
--
-- A workflow is a list of stages run one after the other; a stage is one job (a chain step, a chord's
-- callback) or several that run at once (a group, a chord's header). Every job of every stage is
-- written when the workflow is sent, the jobs of later stages held back by waiting_deps = 1. Each
-- stage has a counter row: the completion of a member decrements it (UPDATE ... RETURNING, under the
-- row's lock) inside taskito_complete(), in the statement's transaction, and the completion that
-- takes it to 0 releases the next stage (or finishes the workflow). One row per stage: O(1) per
-- member, and exactly one completion sees 0 however many workers finish members at once.
-- A stage's members read the results of the stage before them when they start (wf_mode 1).
-- The error callback (on_error) is stored as a 'staged' job (invisible, never claimed) at stage -1,
-- released once if a step dies, deleted when the workflow completes or is cancelled.

CREATE TABLE taskito_workflows (
    id            text             PRIMARY KEY,
    kind          text             NOT NULL,
    status        text             NOT NULL,
    stages        integer          NOT NULL,
    created_at    double precision NOT NULL,
    finished_at   double precision,
    failed_job_id text,
    error         text
);

CREATE TABLE taskito_workflow_stages (
    workflow_id text    NOT NULL,
    stage       integer NOT NULL,
    size        integer NOT NULL,
    remaining   integer NOT NULL,
    is_group    boolean NOT NULL,
    PRIMARY KEY (workflow_id, stage)
);

ALTER TABLE taskito_jobs ADD COLUMN workflow_id text;
ALTER TABLE taskito_jobs ADD COLUMN wf_stage integer;
ALTER TABLE taskito_jobs ADD COLUMN wf_member integer;
-- 1: the previous stage's result is the first argument; 2: args is a list of argument lists, one call each
ALTER TABLE taskito_jobs ADD COLUMN wf_mode smallint NOT NULL DEFAULT 0;

CREATE INDEX taskito_jobs_workflow ON taskito_jobs (workflow_id, wf_stage, wf_member) WHERE workflow_id IS NOT NULL;

-- A stage of workflow p_workflow is complete: release the next one, or finish the workflow if it was
-- the last (its error callback is then no longer needed). Returns how many jobs became claimable.
CREATE FUNCTION taskito_workflow_advance(p_workflow text, p_stage integer, p_now double precision)
RETURNS integer LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    released integer;
BEGIN
    UPDATE taskito_jobs SET waiting_deps = 0
    WHERE workflow_id = p_workflow AND wf_stage = p_stage + 1 AND status = 'pending' AND waiting_deps > 0;
    GET DIAGNOSTICS released = ROW_COUNT;
    UPDATE taskito_workflows SET status = 'complete', finished_at = p_now
    WHERE id = p_workflow AND status = 'running' AND stages = p_stage + 1;
    IF FOUND THEN
        DELETE FROM taskito_jobs WHERE workflow_id = p_workflow AND wf_stage = -1 AND status = 'staged';
    END IF;
    RETURN released;
END
$$;

-- As in v9, plus the workflows: the completed jobs of a workflow stage decrement its stage's counter,
-- one UPDATE per stage and batch (not one per job: repeated updates of one row in a transaction
-- leave a chain of row versions that each next update walks), stage rows in a fixed order so that
-- two batches never wait for each other's rows; the completion that takes a counter to 0 advances the
-- workflow, and its released jobs count in `released`.
CREATE OR REPLACE FUNCTION taskito_complete(p_ids text[], p_attempts integer[], p_results bytea[],
                                            p_started double precision[], p_finished double precision[],
                                            p_now double precision)
RETURNS TABLE (completed text[], released integer) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_nestloop = off SET jit = off AS $$
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
        WHERE j.id = batch.id AND j.attempt = batch.attempt
          AND j.status IN ('claimed', 'running')
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
