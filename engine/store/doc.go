// Package store is the gateway's embedded database: one bbolt file at
// storage.path, owned by the server and outliving every Snapshot. Today it
// holds the access log; the service registry will follow in the same file.
//
// # Access log
//
// Every portal request, refused ones included, becomes one Record. Append
// hands it to a single writer goroutine through a bounded queue and never
// blocks: when the queue is full the record is dropped, counted and the drop
// logged (at most once per 10s). The writer drains up to BatchSize records
// per bbolt write transaction, so a burst costs one fsync, not one per
// request. In sync mode (accessLog.mode: sync) Append waits until its record
// is committed; concurrent callers share a transaction (group commit), and a
// full queue makes them wait instead of dropping. Close flushes what is
// queued, so a graceful shutdown loses no completed request.
//
// Layout (all keys big-endian, so byte order is time order):
//
//	accesslog        key = 8-byte unix nanos of StartedAt + 4-byte sequence, value = Record JSON
//	accesslog_trace  key = traceId + 0x00 + record key, empty value
//	accesslog_api    key = apiCode + 0x00 + record key, empty value
//	accesslog_meta   "count" = number of records (keeps totals and MaxRecords O(1))
//
// A record's ID is the hex of its key: 24 characters that sort like the
// records' start times. Because the key comes from StartedAt, not from the
// moment of writing, a record appended with an old StartedAt sorts (and
// expires) in the past. Index entries are written and removed in the same
// transaction as their record.
//
// Retention (RetentionDays and MaxRecords) runs in the background every
// PruneEvery and deletes in bounded chunks so the writer is never held up
// for long. bbolt reuses freed pages but never shrinks the file: its size
// settles at the high-water mark of the retained records.
//
// Each replica keeps its own file. For fleets, LogOptions.Export also writes
// every record as one JSON line (accessLog.export: stdout | file:PATH) for a
// log shipper.
//
// The caller builds the Record: bodies go through Truncate (maxBodyChars)
// and headers through Redact (redactHeaders) before Append; secrets such as
// app secrets or decrypted keys are never put in a Record.
package store
