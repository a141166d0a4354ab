-- Atalaya's SQLite schema, version 1.
-- Times are INTEGER nanoseconds since the Unix epoch (UTC).

CREATE TABLE candles (
    instrument TEXT    NOT NULL,
    timeframe  TEXT    NOT NULL,
    open_time  INTEGER NOT NULL,
    open       REAL    NOT NULL,
    high       REAL    NOT NULL,
    low        REAL    NOT NULL,
    close      REAL    NOT NULL,
    volume     REAL    NOT NULL,
    trades     INTEGER NOT NULL,
    PRIMARY KEY (instrument, timeframe, open_time)
) WITHOUT ROWID;

CREATE TABLE opportunities (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    instrument      TEXT    NOT NULL,
    timeframe       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    generated_at    INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    score           REAL    NOT NULL,
    confidence      REAL    NOT NULL,
    expected_return REAL    NOT NULL,
    risk_level      REAL    NOT NULL,
    body            TEXT    NOT NULL,
    UNIQUE (instrument, timeframe, generated_at, kind)
);
CREATE INDEX opportunities_generated_at ON opportunities (generated_at);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  INTEGER NOT NULL,
    priority    TEXT    NOT NULL,
    instrument  TEXT,
    title       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    UNIQUE (created_at, instrument, title)
);

CREATE TABLE text_items (
    kind        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    item_id     TEXT    NOT NULL,
    ts_event    INTEGER NOT NULL,
    ts_received INTEGER NOT NULL,
    title       TEXT    NOT NULL,
    url         TEXT,
    body        TEXT    NOT NULL,
    PRIMARY KEY (kind, source, item_id)
);
CREATE INDEX text_items_ts_received ON text_items (ts_received);
