package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// openDB opens a fresh bbolt file in a temp dir, closed at cleanup.
func openDB(t testing.TB) *DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "data", "databus.db"))
}

func openPath(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openLog opens the access log, closed at cleanup (before its DB, since
// cleanups run last-in first-out). Background retention is off unless
// the test asks for it.
func openLog(t testing.TB, db *DB, o LogOptions) *AccessLog {
	t.Helper()
	if o.PruneEvery == 0 {
		o.PruneEvery = -1
	}
	l, err := db.AccessLog(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// reopen closes l and db and opens both again on the same file.
func reopen(t testing.TB, l *AccessLog, db *DB, o LogOptions) (*AccessLog, *DB) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, db.Path())
	return openLog(t, db, o), db
}

// sample is a typical portal request.
func sample(trace, api string, httpStatus int, at time.Time) *Record {
	return &Record{
		TraceID:        trace,
		APICode:        api,
		Version:        "v1",
		AppID:          "app-1",
		TenantID:       "t-1",
		ClientIP:       "10.0.0.7",
		Method:         "POST",
		Path:           "/portal/" + api,
		RequestHeaders: map[string]string{"Content-Type": "application/json", "Authorization": "***"},
		RequestBody:    `{"orderId":"A-1001","items":[{"sku":"X","qty":2}]}`,
		ResponseBody:   `{"code":"0","message":"ok","data":{"status":"accepted"}}`,
		HTTPStatus:     httpStatus,
		StartedAt:      at,
		DurationMs:     12.5,
		StepResults: []StepRecord{
			{ID: "lookup", Type: "http", Request: map[string]any{"url": "http://svc/lookup"}, Response: map[string]any{"status": 200.0}, Status: 200, ElapsedMs: 4.2, Attempts: 1},
			{ID: "shape", Type: "jq", ElapsedMs: 0.3},
		},
		Extra: map[string]any{"route": "primary"},
	}
}

// count is the number of records as Page reports it.
func count(t testing.TB, l *AccessLog) int {
	t.Helper()
	_, total, err := l.Page(Filter{}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// checkConsistent verifies the invariants between the record bucket, the
// two indexes and the kept count.
func checkConsistent(t testing.TB, db *DB) {
	t.Helper()
	err := db.Bolt().View(func(tx *bbolt.Tx) error {
		tb := tablesOf(tx)
		want := map[string]bool{} // bucket name + index key
		n := 0
		if err := tb.log.ForEach(func(k, v []byte) error {
			n++
			var p probe
			v, err := plain(v)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if indexable(p.TraceID) {
				want["t"+string(indexKey(p.TraceID, k))] = true
			}
			if indexable(p.APICode) {
				want["a"+string(indexKey(p.APICode, k))] = true
			}
			return nil
		}); err != nil {
			return err
		}
		if c := tb.count(); c != n {
			return fmt.Errorf("kept count %d, records %d", c, n)
		}
		got := 0
		for prefix, b := range map[string]*bbolt.Bucket{"t": tb.trace, "a": tb.api} {
			if err := b.ForEach(func(k, _ []byte) error {
				got++
				if !want[prefix+string(k)] {
					return fmt.Errorf("stale index entry %s %q", prefix, k)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if got != len(want) {
			return fmt.Errorf("%d index entries, want %d", got, len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// noLeak fails if any access log goroutine is still running shortly after.
func noLeak(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(s, "store.(*AccessLog).writer") && !strings.Contains(s, "store.(*AccessLog).pruner") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log goroutines still running:\n%s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counter is an Observer that counts.
type counter struct {
	dropped, wrote, txs atomic.Int64
	maxDepth, failed    atomic.Int64
}

func (c *counter) QueueDepth(n int) {
	for {
		m := c.maxDepth.Load()
		if int64(n) <= m || c.maxDepth.CompareAndSwap(m, int64(n)) {
			return
		}
	}
}
func (c *counter) Dropped(n int)   { c.dropped.Add(int64(n)) }
func (c *counter) WriteFailed(int) { c.failed.Add(1) }
func (c *counter) Wrote(n int, _ time.Duration) {
	c.wrote.Add(int64(n))
	c.txs.Add(1)
}

var _ Observer = (*counter)(nil)

// logBuffer is a slog text sink safe for the writer goroutine and the test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (lb *logBuffer) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.Write(p)
}

func (lb *logBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.b.String()
}

func (lb *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(lb, nil)) }
