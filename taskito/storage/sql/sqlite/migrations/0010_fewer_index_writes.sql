-- taskito schema: fewer index writes in a job's life.
-- taskito_jobs_status_queue (status, queue, task_name) was rewritten at every status change of every
-- job (enqueue, claim, start, end). What still needs it, a bulk cancel of the waiting jobs of a queue
-- or a task, reads waiting jobs only: taskito_jobs_waiting holds them alone (a job leaves it once
-- claimed), and the counters name the (queue, task) pairs to look up in it. Task first: the claim's
-- own indexes serve every lookup by queue.
DROP INDEX taskito_jobs_status_queue;
CREATE INDEX taskito_jobs_waiting ON taskito_jobs (task_name, queue) WHERE status IN ('pending', 'failed');
-- A cap counts the held jobs of its group that carry it: jobs of tasks without max_concurrent, nearly
-- all of them, no longer enter this index at every claim and leave it at every end.
DROP INDEX taskito_jobs_held_by_group;
CREATE INDEX taskito_jobs_held_by_group ON taskito_jobs (task_name, coalesce(concurrency_key, ''))
    WHERE max_concurrent IS NOT NULL AND status IN ('claimed', 'running');
