-- The sealer looks each day's merchants and consumers up by value, and keeps them at the finest scope only (a
-- channel and an industry; core/rollup.py): the key leads with the value. Rows of the wider scopes written
-- before (channel or industry '') stay until their partition goes, and are not read.
ALTER TABLE report_distinct DROP CONSTRAINT report_distinct_pkey;
ALTER TABLE report_distinct ADD CONSTRAINT report_distinct_pkey PRIMARY KEY (day, kind, value, channel, industry);
