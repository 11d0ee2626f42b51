-- taskito schema v5: a claim costs the same however many jobs wait elsewhere.
-- Jobs due later are kept out of the claim index ("delayed", cleared by the claims of their
-- queue's workers once due), and the claim index leads with the queue, so a worker walks only
-- the due jobs of the queues it serves: not a paused queue's backlog, not another worker's, not
-- a day's worth of delayed jobs. A row written without the flag (NULL: by a release before this
-- one) counts as delayed until its scheduled time, so it is never claimed early.

ALTER TABLE taskito_jobs ADD COLUMN delayed INTEGER;
UPDATE taskito_jobs SET delayed = scheduled_at > (julianday('now') - 2440587.5) * 86400.0
WHERE status IN ('pending', 'failed');

DROP INDEX taskito_jobs_ready;
CREATE INDEX taskito_jobs_ready ON taskito_jobs (queue, priority DESC, scheduled_at, seq)
    WHERE status IN ('pending', 'failed') AND waiting_deps = 0 AND delayed = 0;
CREATE INDEX taskito_jobs_delayed ON taskito_jobs (queue, scheduled_at)
    WHERE status IN ('pending', 'failed') AND delayed IS NOT 0;

-- Job lists, newest first, filtered by the status users see (claimed is pending), by queue or by
-- task: an index each, ordered by seq (SQLite ends every index with the rowid, which seq is).
CREATE INDEX taskito_jobs_listed_by_status ON taskito_jobs ((CASE status WHEN 'claimed' THEN 'pending' ELSE status END));
CREATE INDEX taskito_jobs_listed_by_queue ON taskito_jobs (queue);
CREATE INDEX taskito_jobs_listed_by_task ON taskito_jobs (task_name);
