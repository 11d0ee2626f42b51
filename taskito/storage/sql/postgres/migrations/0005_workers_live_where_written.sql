-- taskito schema v5: a worker row shows a live worker only in the table it was written into, on the
-- server that wrote it. pg_dump copies taskito_workers with its fresh heartbeats, and a copy
-- restored elsewhere must not show workers that run nowhere near it. Each registration and
-- heartbeat stamps the row with its table's oid (a restored table is a new table, with a new oid)
-- and the start time of the server (a copy in another cluster comes from another server), and
-- heartbeats are timed by the server's clock, not the hosts'. (Numbered 5: version 4 is taken by
-- another change in progress.)

ALTER TABLE taskito_workers
    ADD COLUMN written_in oid,
    ADD COLUMN server_started double precision;
