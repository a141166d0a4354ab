-- Atalaya's SQLite schema, version 4: on-chain metrics, each with the time it became known
-- (so a replay sees only what was known at each moment).

CREATE TABLE onchain_metrics (
    chain       TEXT    NOT NULL,
    metric      TEXT    NOT NULL,
    ts_received INTEGER NOT NULL,
    value       REAL    NOT NULL,
    unit        TEXT    NOT NULL,
    PRIMARY KEY (chain, metric, ts_received)
) WITHOUT ROWID;
