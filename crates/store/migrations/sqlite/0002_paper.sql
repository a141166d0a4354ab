-- Atalaya's SQLite schema, version 2: the paper trader's journal.
-- Rows are written again, unchanged, when a restart replays history: the keys make that a no-op.

CREATE TABLE paper_trades (
    instrument  TEXT    NOT NULL,
    entry_time  INTEGER NOT NULL,
    exit_time   INTEGER NOT NULL,
    pnl         TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (instrument, entry_time)
) WITHOUT ROWID;
CREATE INDEX paper_trades_exit_time ON paper_trades (exit_time);

CREATE TABLE paper_audit (
    ts          INTEGER NOT NULL,
    instrument  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    PRIMARY KEY (ts, instrument, action, reason)
) WITHOUT ROWID;
