-- taskito schema v3: a claimed job is 'claimed' (shown as pending, held by its worker) until its
-- function starts; only then is it 'running', with started_at the real start. The indexes over
-- jobs a worker holds (leases, unique keys) cover both states. Rows of v2 stay as they are.

DROP INDEX taskito_jobs_lease;
CREATE INDEX taskito_jobs_lease ON taskito_jobs (lease_until) WHERE status IN ('claimed', 'running');
DROP INDEX taskito_jobs_unique;
CREATE UNIQUE INDEX taskito_jobs_unique ON taskito_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'failed', 'claimed', 'running');
