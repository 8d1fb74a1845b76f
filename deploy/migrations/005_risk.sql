-- Risk control: the blacklist (黄牛库), the reviews of held invoices, and the indexes the risk rules count with.
CREATE TABLE blacklist (
    kind     text NOT NULL CHECK (kind IN ('person', 'device', 'seller')),
    value    text NOT NULL,  -- a person's or device's keyed hash (as in invoices), a seller's tax id
    reason   text NOT NULL,
    added_by text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

-- Who released or rejected a held invoice, and why.
CREATE TABLE reviews (
    id       bigserial PRIMARY KEY,
    key      text NOT NULL REFERENCES invoices (key),
    decision text NOT NULL CHECK (decision IN ('release', 'reject')),
    reviewer text NOT NULL,
    note     text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_key ON reviews (key);

CREATE INDEX invoices_device_recent ON invoices (device_ref, accepted_at);
CREATE INDEX invoices_seller_recent ON invoices (seller_tax_id, accepted_at);
CREATE INDEX invoices_held ON invoices (accepted_at) WHERE status = 'held';
CREATE INDEX reversals_at ON reversals (at);
