-- Atalaya's SQLite schema, version 3: the alert outbox.
-- Each alert's channels are written in the same transaction as the alert (and the opportunity
-- it reports); the dispatcher moves each row from pending to delivered or dead_lettered.
-- (alert_id, channel) is the idempotency key of a delivery.

CREATE TABLE alert_deliveries (
    alert_id        INTEGER NOT NULL REFERENCES alerts (id),
    channel         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (alert_id, channel)
) WITHOUT ROWID;
CREATE INDEX alert_deliveries_due ON alert_deliveries (state, channel, next_attempt_at);

-- The timeframe of the bar an alert is about (for its chart) and its one-line form (for SMS).
ALTER TABLE alerts ADD COLUMN timeframe TEXT;
ALTER TABLE alerts ADD COLUMN short TEXT;
