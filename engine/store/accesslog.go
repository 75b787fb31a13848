package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// LogOptions configure an AccessLog. Zero values take the defaults.
type LogOptions struct {
	Sync          bool          // accessLog.mode: sync — Append returns after its record is committed
	QueueSize     int           // async queue bound; default 10000
	BatchSize     int           // records per write transaction; default 256
	RetentionDays int           // records that started longer ago are removed; 0 = keep
	MaxRecords    int           // the optional max size: the oldest beyond it are removed; 0 = unbounded
	PruneEvery    time.Duration // background retention period; default 10m; negative = no background pass
	Export        io.Writer     // also write each record as one JSON line after its transaction; nil = none
	Logger        *slog.Logger  // nil = discard
	Observer      Observer      // nil = none
}

// Observer receives the access log's metrics. Calls come from Append's
// callers and from the writer goroutine, so implementations must be safe
// for concurrent use and cheap.
type Observer interface {
	QueueDepth(n int)                   // after each enqueue and each dequeued batch
	Dropped(records int)                // records lost: the queue was full, the log closed, or their write failed
	Wrote(records int, d time.Duration) // one committed write transaction
	WriteFailed(records int)            // one failed write transaction (its records are also Dropped)
}

type nopObserver struct{}

func (nopObserver) QueueDepth(int)           {}
func (nopObserver) Dropped(int)              {}
func (nopObserver) Wrote(int, time.Duration) {}
func (nopObserver) WriteFailed(int)          {}

// Health is the access log's state as /readyz shows it. The log is
// degraded from a failed write transaction (a full disk, say) until the
// next one succeeds; records keep being accepted meanwhile and those lost
// are counted.
type Health struct {
	Status       string    `json:"status"`                // ok | degraded
	Since        time.Time `json:"since,omitzero"`        // degraded: the first failed write of this outage
	Error        string    `json:"error,omitempty"`       // degraded: the last write error
	Lost         uint64    `json:"lost,omitempty"`        // degraded: records lost in this outage
	DroppedTotal uint64    `json:"droppedTotal"`          // records lost since start, for any reason
	WriteErrors  uint64    `json:"writeErrors,omitempty"` // failed write transactions since start
}

const (
	defaultQueueSize = 10000
	defaultBatchSize = 256
	// batchLinger is how long the async writer waits for more records
	// before committing a small batch.
	batchLinger       = 5 * time.Millisecond
	defaultPruneEvery = 10 * time.Minute
	// pruneChunk bounds one retention transaction, so the writer waits for
	// the write lock milliseconds, not for a whole day's deletions.
	pruneChunk = 2000
	// maxKeptBuffer is the largest encoding buffer the writer keeps between batches.
	maxKeptBuffer = 16 << 20
	// maxDays keeps the retention cutoff inside the range of unix nanos.
	maxDays = 100 * 366
	// logEvery spaces out repeated warnings (drops, write and export errors).
	logEvery = 10 * time.Second
)

// AccessLog is the access log in a DB. All methods are safe for concurrent use.
type AccessLog struct {
	db  *DB
	o   LogOptions
	log *slog.Logger
	obs Observer

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	queue  chan item

	seq        atomic.Uint32
	days       atomic.Int64
	maxRecords atomic.Int64

	dropped       atomic.Uint64 // every lost record
	droppedLogged atomic.Uint64
	dropLog       limiter
	writeLog      limiter
	exportLog     limiter
	writeErrors   atomic.Uint64
	writeLost     uint64 // writer only: records lost to failed writes, not yet logged

	healthMu sync.Mutex
	outage   Health // Status "" when healthy
	told     bool   // writer only: the current outage was logged

	closing     atomic.Bool
	lostOnClose int   // records the final flush could not store; writer only until wg.Wait
	errOnClose  error // the final flush's last error

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// writer goroutine only
	buf  bytes.Buffer
	enc  *json.Encoder
	rj   *recordJSON // what enc writes, without reflection
	ends []int
	// comp holds the batch's compressed values, compEnds where each ends.
	comp     []byte
	compEnds []int
}

type item struct {
	rec  *Record
	key  key
	done chan error // sync mode: receives the transaction's result
}

var donePool = sync.Pool{New: func() any { return make(chan error, 1) }}

// AccessLog opens the access log in db and starts its writer goroutine and,
// unless o.PruneEvery is negative, its retention goroutine (which makes a
// first pass at once). Close it before closing db.
func (db *DB) AccessLog(o LogOptions) (*AccessLog, error) {
	if o.QueueSize <= 0 {
		o.QueueSize = defaultQueueSize
	}
	if o.BatchSize <= 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.PruneEvery == 0 {
		o.PruneEvery = defaultPruneEvery
	}
	l := &AccessLog{
		db:    db,
		o:     o,
		log:   o.Logger,
		obs:   o.Observer,
		queue: make(chan item, o.QueueSize),
		stop:  make(chan struct{}),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.obs == nil {
		l.obs = nopObserver{}
	}
	l.rj = newRecordJSON()
	l.enc = json.NewEncoder(&l.buf)
	l.enc.SetEscapeHTML(false) // bodies stay readable; the JSON is never embedded in HTML
	// A random start keeps keys unique across restarts even for records
	// with the same StartedAt nanosecond.
	l.seq.Store(rand.Uint32())
	l.SetRetention(o.RetentionDays, o.MaxRecords)
	if err := db.bolt.Update(initCount); err != nil {
		return nil, fmt.Errorf("access log in %s: %w", db.path, err)
	}
	l.wg.Add(1)
	go l.writer()
	if o.PruneEvery > 0 {
		l.wg.Add(1)
		go l.pruner()
	}
	return l, nil
}

// SetRetention changes retention without reopening (settings reload); the
// next background pass applies it. 0 disables either limit.
func (l *AccessLog) SetRetention(days, maxRecords int) {
	l.days.Store(int64(min(max(days, 0), maxDays)))
	l.maxRecords.Store(int64(max(maxRecords, 0)))
}

// Dropped is the number of records lost so far: dropped because the queue
// was full or the log closed, or lost with a failed write transaction.
func (l *AccessLog) Dropped() uint64 { return l.dropped.Load() }

// Health is the access log's state now.
func (l *AccessLog) Health() Health {
	l.healthMu.Lock()
	h := l.outage
	l.healthMu.Unlock()
	if h.Status == "" {
		h = Health{Status: "ok"}
	}
	h.DroppedTotal = l.dropped.Load()
	h.WriteErrors = l.writeErrors.Load()
	return h
}

// Append logs r. It sets r.ID when empty (from r.StartedAt, which it sets
// to now when zero) and r.Status from r.HTTPStatus, then takes ownership of
// r: the caller must not touch r or anything it refers to afterwards, except
// to read r.ID.
//
// In async mode Append never blocks: a full queue drops the record (see
// Dropped). In sync mode it returns once the record is committed (or its
// transaction failed, which is logged).
func (l *AccessLog) Append(r *Record) {
	if r == nil {
		return
	}
	it := item{rec: r, key: l.prepare(r)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		l.drop("access log closed")
		return
	}
	if l.o.Sync {
		it.done = donePool.Get().(chan error)
		l.queue <- it // backpressure, not drops: that is what sync mode asks for
		l.mu.RUnlock()
		<-it.done
		donePool.Put(it.done)
		return
	}
	select {
	case l.queue <- it:
		l.mu.RUnlock()
		l.obs.QueueDepth(len(l.queue))
	default:
		l.mu.RUnlock()
		l.drop("access log queue full")
	}
}

// prepare fills in what Append promises and returns the record's key.
func (l *AccessLog) prepare(r *Record) key {
	if r.StartedAt.IsZero() {
		r.StartedAt = time.Now()
	}
	r.Status = StatusOf(r.HTTPStatus)
	if r.ID != "" {
		if k, ok := parseKey(r.ID); ok {
			return k
		}
		l.log.Warn("access log: record id is not one this store made; replacing it", "id", r.ID)
	}
	k := makeKey(r.StartedAt, l.seq.Add(1))
	r.ID = k.String()
	return k
}

func (l *AccessLog) drop(msg string) {
	n := l.dropped.Add(1)
	l.obs.Dropped(1)
	if l.dropLog.allow() {
		prev := l.droppedLogged.Swap(n)
		l.log.Warn(msg+"; records dropped", "dropped", n-prev, "droppedTotal", n)
	}
}

// Close stops accepting records, writes everything queued and stops the
// goroutines. It returns an error if the final flush could not store some
// records. Calls after the first return the first's result.
func (l *AccessLog) Close() error {
	l.closeOnce.Do(func() {
		l.closing.Store(true)
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
		close(l.stop)
		l.wg.Wait()
		if n, prev := l.dropped.Load(), l.droppedLogged.Load(); n > prev {
			l.log.Warn("access log closed; records dropped", "dropped", n-prev, "droppedTotal", n)
		}
		if l.lostOnClose > 0 {
			l.closeErr = fmt.Errorf("access log in %s: %d queued records not stored on close: %w", l.db.path, l.lostOnClose, l.errOnClose)
		}
	})
	return l.closeErr
}

// writer is the only goroutine that writes records: it takes what is
// queued, up to BatchSize, and commits it in one transaction.
func (l *AccessLog) writer() {
	defer l.wg.Done()
	batch := make([]item, 0, l.o.BatchSize)
	for it := range l.queue {
		batch = append(batch[:0], it)
	fill:
		for len(batch) < l.o.BatchSize {
			select {
			case it, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		// Under load, wait a moment for more records so that one
		// transaction (one fsync) carries many; sync callers do not wait.
		if !l.o.Sync && len(batch) < l.o.BatchSize {
			t := time.NewTimer(batchLinger)
		linger:
			for len(batch) < l.o.BatchSize {
				select {
				case it, ok := <-l.queue:
					if !ok {
						break linger
					}
					batch = append(batch, it)
				case <-t.C:
					break linger
				}
			}
			t.Stop()
		}
		l.obs.QueueDepth(len(l.queue))
		l.write(batch)
		clear(batch) // let the records go
		l.rj.trim(maxKeptBuffer)
		if l.buf.Cap() > maxKeptBuffer {
			l.buf = bytes.Buffer{} // after a burst of huge records; l.enc writes to &l.buf still
		}
	}
}

func (l *AccessLog) write(batch []item) {
	l.buf.Reset()
	l.ends = l.ends[:0]
	for _, it := range batch {
		l.encode(it.rec)
		l.ends = append(l.ends, l.buf.Len())
	}
	data := l.buf.Bytes()
	// The stored values: each record's JSON (without the encoder's '\n'),
	// compressed.
	l.comp = l.comp[:0]
	l.compEnds = l.compEnds[:0]
	from := 0
	for i := range batch {
		l.comp = compress(l.comp, data[from:l.ends[i]-1])
		l.compEnds = append(l.compEnds, len(l.comp))
		from = l.ends[i]
	}
	start := time.Now()
	err := l.db.bolt.Update(func(tx *bbolt.Tx) error {
		t := tablesOf(tx)
		// Keys arrive almost in order: records by time, index entries by
		// time within each trace id (which the gateway makes time-ordered)
		// or API code. Full pages then, not bbolt's half-full default.
		t.log.FillPercent = 0.9
		t.trace.FillPercent = 0.9
		t.api.FillPercent = 0.9
		added, from := 0, 0
		for i, it := range batch {
			v := l.comp[from:l.compEnds[i]]
			from = l.compEnds[i]
			k := it.key[:]
			if old := t.log.Get(k); old != nil { // an id given twice: replace
				if err := t.unindex(k, old); err != nil {
					return err
				}
			} else {
				added++
			}
			if err := t.log.Put(k, v); err != nil {
				return err
			}
			if err := t.index(k, it.rec.TraceID, it.rec.APICode); err != nil {
				return err
			}
		}
		return t.addCount(added)
	})
	elapsed := time.Since(start)
	if err != nil {
		l.writeFailed(len(batch), err)
	} else {
		l.obs.Wrote(len(batch), elapsed)
		l.recovered()
	}
	// Exported even when the transaction failed: the shipper may be the
	// only copy left (a full disk, say).
	if l.o.Export != nil {
		if _, err := l.o.Export.Write(data); err != nil && l.exportLog.allow() {
			l.log.Error("access log: export failed", "records", len(batch), "err", err)
		}
	}
	for _, it := range batch {
		if it.done != nil {
			it.done <- err
		}
	}
}

// writeFailed counts the n records of a failed write transaction as lost,
// marks the log degraded, and logs at most once per logEvery with the count
// since the last message.
func (l *AccessLog) writeFailed(n int, err error) {
	if l.closing.Load() {
		l.lostOnClose += n
		l.errOnClose = err
	}
	total := l.dropped.Add(uint64(n))
	l.writeErrors.Add(1)
	l.obs.WriteFailed(n)
	l.obs.Dropped(n)
	l.healthMu.Lock()
	if l.outage.Status == "" {
		l.outage = Health{Status: "degraded", Since: time.Now()}
	}
	l.outage.Error = err.Error()
	l.outage.Lost += uint64(n)
	l.healthMu.Unlock()
	l.writeLost += uint64(n)
	if l.writeLog.allow() {
		l.log.Error("access log: write failed; records lost", "records", l.writeLost, "droppedTotal", total, "path", l.db.path, "err", err)
		l.writeLost = 0
		l.told = true
	}
}

// recovered ends an outage after a successful write. An outage that was
// logged ends with a message saying what it cost; one that was not (it
// began within logEvery of the last message: a nearly full disk where some
// writes still fit) is left to the next failure message's count, so a
// flapping disk cannot flood the log either.
func (l *AccessLog) recovered() {
	l.healthMu.Lock()
	h := l.outage
	l.outage = Health{}
	l.healthMu.Unlock()
	if h.Status == "" || !l.told {
		return
	}
	l.told = false
	l.writeLost = 0 // counted in the message below
	l.log.Warn("access log: writes recovered", "lost", h.Lost, "degradedFor", time.Since(h.Since).Round(time.Millisecond), "path", l.db.path)
}

// encode appends r's JSON and a newline to l.buf. Values that cannot be
// encoded (a channel in Extra, a NaN in a step response) are replaced by
// their error rather than losing the record.
func (l *AccessLog) encode(r *Record) {
	n := l.buf.Len()
	if b, ok := l.rj.encode(r); ok {
		l.buf.Write(b)
		l.buf.WriteByte('\n')
		return
	}
	err := l.enc.Encode(r)
	if err == nil {
		return
	}
	l.buf.Truncate(n)
	c := *r
	bad := "unencodable: " + err.Error()
	c.Extra = map[string]any{"encodeError": bad}
	c.StepResults = make([]StepRecord, len(r.StepResults))
	for i, s := range r.StepResults {
		if s.Request != nil {
			s.Request = bad
		}
		if s.Response != nil {
			s.Response = bad
		}
		c.StepResults[i] = s
	}
	if err := l.enc.Encode(&c); err != nil { // only the typed fields are left; cannot fail
		l.buf.Truncate(n)
		l.buf.WriteString(`{"id":"` + r.ID + `"}` + "\n")
	}
}

func (l *AccessLog) pruner() {
	defer l.wg.Done()
	t := time.NewTicker(l.o.PruneEvery)
	defer t.Stop()
	for {
		if n, err := l.prune(time.Now(), l.stop); err != nil {
			if !errors.Is(err, bbolt.ErrDatabaseNotOpen) {
				l.log.Error("access log: retention failed", "removed", n, "err", err)
			}
		} else if n > 0 {
			l.log.Info("access log: retention removed records", "removed", n)
		}
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
	}
}

// Prune applies retention now: it removes records that started more than
// RetentionDays before now, then the oldest beyond MaxRecords, with their
// index entries. The background pass calls it every PruneEvery.
func (l *AccessLog) Prune(now time.Time) (removed int, err error) {
	return l.prune(now, nil)
}

func (l *AccessLog) prune(now time.Time, stop <-chan struct{}) (removed int, err error) {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	if days := l.days.Load(); days > 0 {
		before := timeKey(now.AddDate(0, 0, -int(days)))
		for {
			n, err := l.deleteOldest(func(int) int { return pruneChunk }, before)
			removed += n
			if err != nil || stopped() {
				return removed, err
			}
			if n < pruneChunk {
				break
			}
		}
	}
	if limit := int(l.maxRecords.Load()); limit > 0 {
		for {
			n, err := l.deleteOldest(func(count int) int { return min(count-limit, pruneChunk) }, nil)
			removed += n
			if err != nil || n < pruneChunk || stopped() {
				return removed, err
			}
		}
	}
	return removed, nil
}

// deleteOldest removes, in one transaction, the oldest records with keys
// below before (nil: any), at most limit(count of records) of them.
func (l *AccessLog) deleteOldest(limit func(count int) int, before []byte) (int, error) {
	var removed int
	err := l.db.bolt.Update(func(tx *bbolt.Tx) error {
		t := tablesOf(tx)
		n := limit(t.count())
		if n <= 0 {
			return nil
		}
		keys := make([][]byte, 0, min(n, 256))
		c := t.log.Cursor()
		for k, v := c.First(); k != nil && len(keys) < n; k, v = c.Next() {
			if before != nil && bytes.Compare(k, before) >= 0 {
				break
			}
			if err := t.unindex(k, v); err != nil {
				return err
			}
			keys = append(keys, bytes.Clone(k))
		}
		// Deleting behind a moving cursor skips keys in bbolt: collect, then delete.
		for _, k := range keys {
			if err := t.log.Delete(k); err != nil {
				return err
			}
		}
		removed = len(keys)
		return t.addCount(-removed)
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}

// tables are the access log's buckets in one transaction.
type tables struct{ log, trace, api, meta *bbolt.Bucket }

func tablesOf(tx *bbolt.Tx) tables {
	return tables{
		log:   tx.Bucket(bucketLog),
		trace: tx.Bucket(bucketTrace),
		api:   tx.Bucket(bucketAPI),
		meta:  tx.Bucket(bucketMeta),
	}
}

var empty = []byte{}

func (t tables) index(k []byte, traceID, apiCode string) error {
	if indexable(traceID) {
		if err := t.trace.Put(indexKey(traceID, k), empty); err != nil {
			return err
		}
	}
	if indexable(apiCode) {
		if err := t.api.Put(indexKey(apiCode, k), empty); err != nil {
			return err
		}
	}
	return nil
}

// unindex removes the index entries of the record k whose value is v.
func (t tables) unindex(k, v []byte) error {
	var p probe
	v, err := plain(v)
	if err != nil {
		return nil // unreadable: it cannot have been indexed by anything we can name
	}
	if err := json.Unmarshal(v, &p); err != nil {
		return nil // unreadable: it cannot have been indexed by anything we can name
	}
	if indexable(p.TraceID) {
		if err := t.trace.Delete(indexKey(p.TraceID, k)); err != nil {
			return err
		}
	}
	if indexable(p.APICode) {
		if err := t.api.Delete(indexKey(p.APICode, k)); err != nil {
			return err
		}
	}
	return nil
}

func (t tables) count() int {
	v := t.meta.Get(metaCount)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

func (t tables) addCount(d int) error {
	if d == 0 {
		return nil
	}
	return t.meta.Put(metaCount, binary.BigEndian.AppendUint64(nil, uint64(max(t.count()+d, 0))))
}

// initCount makes sure the record count exists (a file written before it
// was kept, or a first open).
func initCount(tx *bbolt.Tx) error {
	t := tablesOf(tx)
	if t.meta.Get(metaCount) != nil {
		return nil
	}
	return t.meta.Put(metaCount, binary.BigEndian.AppendUint64(nil, uint64(t.log.Stats().KeyN)))
}

// probe is the part of a stored record that filters and deletions read.
type probe struct {
	TraceID    string   `json:"traceId"`
	APICode    string   `json:"apiCode"`
	AppID      string   `json:"appId"`
	Status     int      `json:"status"`
	HTTPStatus int      `json:"httpStatus"`
	Capture    *Capture `json:"capture"`
}

// limiter lets one event through per logEvery.
type limiter struct{ last atomic.Int64 }

func (lm *limiter) allow() bool {
	now := time.Now().UnixNano()
	last := lm.last.Load()
	if last != 0 && now-last < int64(logEvery) {
		return false
	}
	return lm.last.CompareAndSwap(last, now)
}
