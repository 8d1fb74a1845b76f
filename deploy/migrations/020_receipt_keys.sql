-- The public keys of receipts (gateway/receipts.py), published at GET /v1/keys: a gateway registers its signing
-- key when it starts; `gateway retire-receipt-key KID` ends a key's validity once no gateway signs with it.
CREATE TABLE receipt_keys (
    kid        text PRIMARY KEY,
    public_key bytea NOT NULL,
    not_before timestamptz NOT NULL DEFAULT now(),
    not_after  timestamptz
);
