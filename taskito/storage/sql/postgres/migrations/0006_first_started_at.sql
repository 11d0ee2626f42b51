-- taskito schema v6: the start of a job's first attempt, kept when a retry starts it again
-- (started_at is the latest attempt's). NULL until the first retry: then started_at was the first.

ALTER TABLE taskito_jobs ADD COLUMN first_started_at double precision;
