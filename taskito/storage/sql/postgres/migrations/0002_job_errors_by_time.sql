-- taskito schema v2: failed attempts by time, for the dashboard's throughput chart
-- (it counts the failures of the last minutes on every refresh).

CREATE INDEX taskito_job_errors_failed_at ON taskito_job_errors (failed_at);
