/* The store's schema as numbered migrations. Migration i (1-based) brings a database
 * from PRAGMA user_version i-1 to i; never edit a released migration, append a new one.
 * Private to data/store.c. */
#ifndef DRISK_SCHEMA_H
#define DRISK_SCHEMA_H

static const char *const drisk_migrations[] = {
    /* 1: merchants, shipments, scans; registry, risk, alerts, recommendations, keys. */
    "CREATE TABLE merchants ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  settings TEXT"                       /* JSON: alert thresholds, costs */
    ");"
    /* Timestamps are INTEGER UTC seconds; event/reason codes are enum drisk_event /
     * enum drisk_reason, named in event_codes / reason_codes for SQL users. */
    "CREATE TABLE shipments ("
    "  id INTEGER PRIMARY KEY,"
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  shipment_key TEXT NOT NULL,"         /* the interchange shipment_id */
    "  order_id TEXT,"
    "  carrier TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  origin TEXT NOT NULL,"
    "  destination TEXT NOT NULL,"
    "  weight_kg REAL,"
    "  declared_value REAL,"
    "  created_at INTEGER NOT NULL,"
    "  promised_at INTEGER NOT NULL,"
    "  delivered_at INTEGER,"
    "  outcome TEXT CHECK (outcome IN ('delivered','lost','returned')),"
    "  UNIQUE (merchant_id, shipment_key)"
    ");"
    "CREATE INDEX shipments_by_merchant_created ON shipments(merchant_id, created_at);"
    "CREATE INDEX shipments_by_created ON shipments(created_at);"
    "CREATE INDEX shipments_by_key ON shipments(shipment_key);" /* scans without merchant */
    /* Facility / place codes, interned: network statistics key on them, and an integer
     * keeps scans and their location index small. Id 0 is "no location". */
    "CREATE TABLE locations (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE);"
    "INSERT INTO locations VALUES (0, '');"
    /* The primary key is the idempotency key and the 'scans of a shipment in time
     * order' access path in one B-tree (WITHOUT ROWID: no second index to maintain). */
    "CREATE TABLE scans ("
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  ts INTEGER NOT NULL,"
    "  event INTEGER NOT NULL,"
    "  location_id INTEGER NOT NULL DEFAULT 0 REFERENCES locations(id),"
    "  reason INTEGER,"
    "  description TEXT,"
    "  PRIMARY KEY (shipment_id, ts, event, location_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX scans_by_location_ts ON scans(location_id, ts);"
    "CREATE TABLE event_codes (code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO event_codes VALUES (1,'label_created'),(2,'picked_up'),"
    "  (3,'arrived_at_facility'),(4,'departed_facility'),(5,'in_transit'),"
    "  (6,'out_for_delivery'),(7,'delivery_attempted'),(8,'available_for_pickup'),"
    "  (9,'delivered'),(10,'exception'),(11,'return_to_sender'),(12,'lost');"
    "CREATE TABLE reason_codes (code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO reason_codes VALUES (1,'weather_delay'),(2,'address_issue'),(3,'damaged'),"
    "  (4,'delayed'),(5,'customs'),(6,'held'),(7,'refused'),(8,'missorted'),"
    "  (9,'recipient_unavailable'),(10,'other');"
    /* Model registry: the payload is the model file (magic, version, metadata, data). */
    "CREATE TABLE models ("
    "  id INTEGER PRIMARY KEY,"
    "  target TEXT NOT NULL CHECK (target IN ('late','lost','eta')),"
    "  algorithm TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  active INTEGER NOT NULL DEFAULT 0,"
    "  schema_hash TEXT NOT NULL,"
    "  schema TEXT NOT NULL,"               /* the feature schema's text form */
    "  train_from INTEGER, train_until INTEGER,"
    "  train_rows INTEGER, valid_rows INTEGER,"
    "  metrics TEXT,"                       /* JSON */
    "  payload BLOB NOT NULL"
    ");"
    "CREATE UNIQUE INDEX models_one_active ON models(target) WHERE active = 1;"
    /* The latest risk of each shipment, as scored by the server or a batch job. */
    "CREATE TABLE risk ("
    "  shipment_id INTEGER PRIMARY KEY REFERENCES shipments(id) ON DELETE CASCADE,"
    "  as_of INTEGER NOT NULL,"
    "  p_late REAL, p_lost REAL, eta INTEGER, eta_p90 INTEGER,"
    "  level TEXT, reasons TEXT,"           /* JSON array */
    "  model_ids TEXT"                      /* JSON object */
    ");"
    "CREATE TABLE alerts ("
    "  id INTEGER PRIMARY KEY,"             /* also the feed cursor */
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  opened_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  cleared_at INTEGER,"
    "  message TEXT"
    ");"
    "CREATE INDEX alerts_by_merchant ON alerts(merchant_id, id);"
    "CREATE UNIQUE INDEX alerts_one_open ON alerts(shipment_id, type) WHERE cleared_at IS NULL;"
    "CREATE TABLE recommendations ("
    "  id INTEGER PRIMARY KEY,"
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  action TEXT NOT NULL,"
    "  deadline INTEGER,"
    "  costs TEXT,"                         /* JSON: expected cost of every option */
    "  why TEXT,"
    "  open INTEGER NOT NULL DEFAULT 1"
    ");"
    "CREATE INDEX recommendations_open ON recommendations(merchant_id, open);"
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  merchant_id INTEGER REFERENCES merchants(id),"
    "  key_hash BLOB NOT NULL UNIQUE,"      /* only a hash is kept */
    "  admin INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL"
    ");",
    /* 2: the scoring server. An alert's seq orders the feed: it is bumped each time the
     * alert opens, escalates or clears, so a consumer resuming after seq N sees every
     * change since. One open recommendation per shipment. The open-shipment index keeps
     * the server's periodic sweep off the delivered history. */
    "ALTER TABLE alerts ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX alerts_feed ON alerts(merchant_id, seq);"
    "CREATE INDEX alerts_seq ON alerts(seq);"
    "ALTER TABLE recommendations ADD COLUMN updated_at INTEGER;"
    "CREATE UNIQUE INDEX recommendations_one_open ON recommendations(shipment_id) WHERE open = 1;"
    "CREATE INDEX shipments_open ON shipments(created_at) WHERE outcome IS NULL;",
    /* 3: shadow scoring. A model may be its target's shadow (at most one per target): the
     * server scores live requests with it as well and keeps both scores, answering and
     * acting with the active one. */
    "ALTER TABLE models ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX models_one_shadow ON models(target) WHERE shadow = 1;"
    "CREATE TABLE shadow_scores ("
    "  id INTEGER PRIMARY KEY,"
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  target TEXT NOT NULL,"
    "  as_of INTEGER NOT NULL,"
    "  champion_id INTEGER, champion_score REAL, champion_p90 REAL,"
    "  shadow_id INTEGER NOT NULL, shadow_score REAL, shadow_p90 REAL"
    ");"
    "CREATE INDEX shadow_scores_by_pair ON shadow_scores(target, champion_id, shadow_id);",
    /* 4: a merchant acknowledges an alert (POST /v1/alerts/{id}/ack); the first time
     * counts. */
    "ALTER TABLE alerts ADD COLUMN acked_at INTEGER;",
    /* 5: webhooks out (data/outbox.h). An event is written in the transaction of the
     * change it reports, with one delivery per subscribed endpoint; a delivery is pending
     * until a 2xx, the end of its retry period, or its endpoint's disabling. next_at is
     * Unix milliseconds (retries start at sub-second delays in tests). */
    "CREATE TABLE webhooks ("
    "  id INTEGER PRIMARY KEY,"
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  url TEXT NOT NULL,"
    "  events TEXT NOT NULL,"              /* ",alert.opened,alert.cleared," or ",*," */
    "  secret TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  disabled_at INTEGER, disabled_reason TEXT"
    ");"
    "CREATE INDEX webhooks_by_merchant ON webhooks(merchant_id, id);"
    "CREATE TABLE webhook_events ("
    "  id INTEGER PRIMARY KEY,"
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  shipment_id INTEGER NOT NULL REFERENCES shipments(id) ON DELETE CASCADE,"
    "  type TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data TEXT NOT NULL"                 /* JSON object: the body's "data" */
    ");"
    "CREATE TABLE webhook_deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id INTEGER NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,"
    "  webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  shipment_id INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'pending'"
    "    CHECK (status IN ('pending','delivered','failed','disabled')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER,"
    "  last_attempt_at INTEGER, last_code INTEGER, last_error TEXT,"
    "  delivered_at INTEGER"
    ");"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE status = 'pending';"
    "CREATE INDEX webhook_deliveries_line ON webhook_deliveries(webhook_id, shipment_id, id)"
    "  WHERE status = 'pending';"
    "CREATE INDEX webhook_deliveries_log ON webhook_deliveries(webhook_id, id);",
    /* 6: aggregator webhooks in. The carrier's own estimated delivery, kept as data; and
     * each merchant's secret per provider, to verify what arrives at /v1/inbound/... */
    "ALTER TABLE shipments ADD COLUMN carrier_eta INTEGER;"
    "CREATE TABLE inbound_secrets ("
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  provider TEXT NOT NULL CHECK (provider IN ('easypost','aftership','shippo')),"
    "  secret TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (merchant_id, provider)"
    ");",
    /* 7: what merchants did with recommendations (POST /v1/recommendations/{id}/outcome),
     * oldest first; settled loss claims feed each carrier's claim success rate. */
    "CREATE TABLE rec_outcomes ("
    "  id INTEGER PRIMARY KEY,"
    "  recommendation_id INTEGER NOT NULL REFERENCES recommendations(id) ON DELETE CASCADE,"
    "  merchant_id INTEGER NOT NULL REFERENCES merchants(id),"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('accepted','dismissed','claim_filed',"
    "    'claim_paid','claim_denied')),"
    "  amount REAL,"
    "  note TEXT,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX rec_outcomes_by_rec ON rec_outcomes(recommendation_id, id);"
    "CREATE INDEX rec_outcomes_by_merchant ON rec_outcomes(merchant_id, outcome);",
    /* 8: checkpoints of the server's network statistics (data/replay.h): a start replays
     * only what followed the newest. */
    "CREATE TABLE network_checkpoints ("
    "  id INTEGER PRIMARY KEY,"
    "  as_of INTEGER NOT NULL,"             /* the state holds every event up to here */
    "  created_at INTEGER NOT NULL,"
    "  payload BLOB NOT NULL"               /* engine/network.h's bytes */
    ");",
    /* 9: what the server nodes sharing one store share (data/live.h). The ingest log:
     * each scan a node stored and each passed promise its sweep saw, so every node's
     * network statistics follow the others' (seq is the commit order: one writer at a
     * time). And the sweep's shards, each claimed by one node at a time. */
    "CREATE TABLE ingest_log ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  node INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  shipment_id INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  event INTEGER NOT NULL,"
    "  location TEXT NOT NULL,"
    "  delivered INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX ingest_log_created ON ingest_log(created_at);"
    "CREATE TABLE sweep_shards ("
    "  shard INTEGER PRIMARY KEY,"
    "  swept_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL,"
    "  node INTEGER NOT NULL"
    ");"
    "INSERT INTO sweep_shards WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k"
    "  WHERE n < 15) SELECT n, 0, 0, 0 FROM k;",
};

#define DRISK_SCHEMA_VERSION ((int)(sizeof drisk_migrations / sizeof drisk_migrations[0]))

#endif
