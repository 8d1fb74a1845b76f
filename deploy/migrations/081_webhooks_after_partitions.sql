-- A database that had 080 (webhooks) before 030 (partitions) lost the webhook trigger when 030 converted
-- invoice_events (the trigger went with the old table). Make it again, on the partitioned table; on a database
-- made in numbering order this replaces the trigger with itself. The statement trigger on a partitioned table sees
-- the new rows of every partition in its transition table.
CREATE OR REPLACE TRIGGER invoice_events_webhooks AFTER INSERT ON invoice_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION invoice_events_to_webhooks();
