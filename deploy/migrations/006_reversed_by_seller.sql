-- Reversed invoices by seller, whichever way they were found reversed (a red-letter reversal sent to the
-- gateway, or the tax service's answer at verification): the risk rule seller_reversal_spike and the admins'
-- count per seller read only these rows.
CREATE INDEX invoices_reversed_by_seller ON invoices (seller_tax_id, updated_at) WHERE status = 'reversed';
