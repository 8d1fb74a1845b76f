-- The sealer's update of each invoice it feeds (status verified -> eligible, batch_seq, updated_at: workers/seal.py
-- FEED) becomes a HOT update: the new row version goes into the same page and no index gets a new entry.
--
-- Two things had prevented it. PostgreSQL makes an update HOT only if no column that an index reads (a key, or
-- its predicate) changes: status was read by the predicates of invoices_held and invoices_reversed_by_seller,
-- and updated_at was the latter's key. So every sealed invoice wrote a new entry into each of the table's six
-- indexes, four of them at random places of 10 M-entry indexes: the 10 M burst's sealer waited on reads of
-- them (benchmarks/README.md, "The 10 M burst"). And a HOT update needs room in the row's page, which a full
-- page has not.
--
-- The two partial indexes now read stored generated columns that the sealer's update leaves as they were
-- (false, and null), and the invoices' partitions leave more than half of each page free when rows are
-- inserted (fillfactor 45): the sealer updates a page's rows in one transaction, so none of their old versions
-- can be pruned before the new ones are written beside them, and each new version is 8 bytes longer (its
-- batch_seq). At 50, one row of 400 in tests/integration/test_seal.py did not fit. The heap is about twice its
-- rows (a non-HOT update made it as large until vacuum, and left dead entries in every index);
-- benchmarks/README.md, "The sealer's HOT update", has the figures.
--
-- Adding the columns rewrites the table: on a large database, a maintenance window (deploy/README.md).

ALTER TABLE invoices
    ADD COLUMN held boolean GENERATED ALWAYS AS (status = 'held') STORED,
    ADD COLUMN reversed_at timestamptz GENERATED ALWAYS AS (CASE WHEN status = 'reversed' THEN updated_at END) STORED;

DROP INDEX invoices_held;
DROP INDEX invoices_reversed_by_seller;
CREATE INDEX invoices_held ON invoices (accepted_at) WHERE held;
CREATE INDEX invoices_reversed_by_seller ON invoices (seller_tax_id, reversed_at) WHERE reversed_at IS NOT NULL;

-- Storage parameters of a table's partitions (a partitioned table takes none itself): given to each partition
-- create_partition makes, and set now on those that exist (their pages filled from now on follow them).
ALTER TABLE partitioned ADD COLUMN storage text;
UPDATE partitioned SET storage = 'fillfactor=45' WHERE tbl = 'invoices';

CREATE OR REPLACE FUNCTION create_partition(p partitioned, parent text, month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('%s_p%s', p.tbl, to_char(month, 'YYYY_MM'));
    lo text := month::text;
    hi text := (month + interval '1 month')::date::text;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF NOT p.by_date THEN
        lo := (month::timestamp AT TIME ZONE p.zone)::text;
        hi := ((month + interval '1 month')::timestamp AT TIME ZONE p.zone)::text;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent, lo, hi)
        || CASE WHEN p.storage IS NULL THEN '' ELSE format(' WITH (%s)', p.storage) END;
    RETURN true;
END $$;

DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'invoices'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (%s)', part, (SELECT storage FROM partitioned WHERE tbl = 'invoices'));
    END LOOP;
END $$;
