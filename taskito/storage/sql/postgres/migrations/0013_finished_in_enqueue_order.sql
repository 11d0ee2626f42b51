-- taskito schema v13: jobs of a finished status listed by their finish time, a page at a time.
--
-- The dashboard sorts dead letters and finished jobs by finish time, enqueue order breaking ties. With
-- seq in the index, a page reads about as many entries as it shows even where many jobs share a finish
-- time (a million rows written by one statement); without it, the ties were sorted in full. Purges read
-- the same index by its first two columns. (SQLite's index holds the rowid, seq, already.)

DROP INDEX taskito_jobs_finished;
CREATE INDEX taskito_jobs_finished ON taskito_jobs (status, finished_at, seq) WHERE finished_at IS NOT NULL;
