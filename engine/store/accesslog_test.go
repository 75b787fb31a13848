package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenCreatesDirsAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "databus.db")
	db := openPath(t, path)
	if db.Path() != path || db.Bolt() == nil {
		t.Fatalf("Path() = %q, Bolt() = %v", db.Path(), db.Bolt())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&^0o755 != 0 {
		t.Errorf("dir mode %v, want at most 0755", di.Mode().Perm())
	}
}

func TestOpenLocked(t *testing.T) {
	db := openDB(t)
	// A second open in the same process takes its own flock, so it
	// conflicts exactly as another process would.
	start := time.Now()
	db2, err := Open(db.Path(), 300*time.Millisecond)
	elapsed := time.Since(start)
	if err == nil {
		db2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	for _, want := range []string{db.Path(), "another databus process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if elapsed > 2*time.Second {
		t.Errorf("gave up after %s, timeout was 300ms", elapsed)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db3, err := Open(db.Path(), 300*time.Millisecond)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	db3.Close()
}

// TestWriteUnderLoadReopen: concurrent appenders, then a restart; every
// record is intact, Get-able by id and findable by trace id.
func TestWriteUnderLoadReopen(t *testing.T) {
	const goroutines, each = 8, 150 // 1200 records in batches from 8 writers: enough to interleave; more only lengthens the run
	db := openDB(t)
	obs := &counter{}
	l := openLog(t, db, LogOptions{Observer: obs})
	base := time.Now().Add(-time.Hour)
	recs := make([][]*Record, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := sample(fmt.Sprintf("trace-%d-%d", g, i), fmt.Sprintf("api-%d", i%5), 200+100*(i%4), base.Add(time.Duration(i)*time.Millisecond))
				l.Append(r)
				recs[g] = append(recs[g], r)
			}
		})
	}
	wg.Wait()
	l, db = reopen(t, l, db, LogOptions{})
	if d := obs.dropped.Load(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
	if got := obs.wrote.Load(); got != goroutines*each {
		t.Fatalf("observer saw %d written, want %d", got, goroutines*each)
	}
	if got := count(t, l); got != goroutines*each {
		t.Fatalf("%d records after reopen, want %d", got, goroutines*each)
	}
	ids := map[string]bool{}
	for _, rs := range recs {
		for _, want := range rs {
			if ids[want.ID] {
				t.Fatalf("id %s given twice", want.ID)
			}
			ids[want.ID] = true
			got, err := l.Get(want.ID)
			if err != nil {
				t.Fatal(err)
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if !bytes.Equal(wj, gj) {
				t.Fatalf("record changed:\nwant %s\n got %s", wj, gj)
			}
			list, total, err := l.Page(Filter{TraceID: want.TraceID}, 1, 10)
			if err != nil || total != 1 || len(list) != 1 || list[0].ID != want.ID {
				t.Fatalf("Page(trace %s) = %v, %d, %v", want.TraceID, list, total, err)
			}
		}
	}
	checkConsistent(t, db)
}

func TestAppendSetsIDStatusStartedAt(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true})
	old := time.Now().Add(-30 * 24 * time.Hour)
	r := sample("t1", "api", 503, old)
	r.Status = StatusSuccess // wrong on purpose: Append derives it
	l.Append(r)
	if r.Status != StatusServerError {
		t.Errorf("Status = %d, want %d", r.Status, StatusServerError)
	}
	if want := makeKey(old, 0).String()[:16]; r.ID[:16] != want {
		t.Errorf("id %s does not start with StartedAt's nanos %s", r.ID, want)
	}
	z := &Record{TraceID: "z", HTTPStatus: 200}
	before := time.Now()
	l.Append(z)
	if z.StartedAt.Before(before) || z.ID <= r.ID {
		t.Errorf("zero StartedAt not set to now: %v, id %s", z.StartedAt, z.ID)
	}

	// A given id is kept; appending it again replaces the record and its
	// index entries.
	again := sample("t2", "api2", 200, old)
	again.ID = r.ID
	l.Append(again)
	got, err := l.Get(r.ID)
	if err != nil || got.TraceID != "t2" {
		t.Fatalf("Get after replace = %+v, %v", got, err)
	}
	if _, total, _ := l.Page(Filter{TraceID: "t1"}, 1, 10); total != 0 {
		t.Errorf("replaced record still indexed under its old trace id")
	}
	if n := count(t, l); n != 2 {
		t.Errorf("%d records, want 2", n)
	}

	// An id this store did not make is replaced.
	bad := sample("t3", "api", 200, time.Time{})
	bad.ID = "not-an-id"
	l.Append(bad)
	if _, ok := parseKey(bad.ID); !ok {
		t.Errorf("invalid id kept: %q", bad.ID)
	}
	if _, err := l.Get("not-an-id"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(bad id) err = %v, want ErrNotFound", err)
	}
	if _, err := l.Get(makeKey(time.Now(), 7).String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown id) err = %v, want ErrNotFound", err)
	}
	checkConsistent(t, db)
}

func TestRetention(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true, RetentionDays: 7})
	now := time.Now()
	var old, fresh []*Record
	// More than one prune chunk of old records.
	for i := range pruneChunk + 500 {
		r := sample(fmt.Sprintf("old-%d", i), "api-old", 200, now.Add(-10*24*time.Hour).Add(time.Duration(i)*time.Second))
		old = append(old, r)
	}
	for i := range 3 {
		fresh = append(fresh, sample(fmt.Sprintf("new-%d", i), "api-new", 200, now.Add(-24*time.Hour).Add(time.Duration(i)*time.Minute)))
	}
	var wg sync.WaitGroup
	for _, r := range append(slices.Clone(old), fresh...) {
		wg.Go(func() { l.Append(r) })
	}
	wg.Wait()

	removed, err := l.Prune(now)
	if err != nil || removed != len(old) {
		t.Fatalf("Prune = %d, %v; want %d", removed, err, len(old))
	}
	if _, err := l.Get(old[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("old record still there: %v", err)
	}
	if _, total, _ := l.Page(Filter{APICode: "api-old"}, 1, 10); total != 0 {
		t.Errorf("%d api index entries left for removed records", total)
	}
	if _, total, _ := l.Page(Filter{TraceID: old[5].TraceID}, 1, 10); total != 0 {
		t.Errorf("trace index entry left for a removed record")
	}
	if n := count(t, l); n != len(fresh) {
		t.Fatalf("%d records left, want %d", n, len(fresh))
	}
	checkConsistent(t, db)

	// An absurd retention keeps everything rather than overflowing the cutoff.
	l.SetRetention(1<<40, 0)
	if removed, err := l.Prune(now); err != nil || removed != 0 {
		t.Fatalf("Prune with a huge retention = %d, %v; want 0", removed, err)
	}

	// Settings reload: a shorter retention and a cap, no reopen.
	l.SetRetention(0, 1)
	if removed, err := l.Prune(now); err != nil || removed != 2 {
		t.Fatalf("Prune with MaxRecords 1 = %d, %v; want 2", removed, err)
	}
	if _, err := l.Get(fresh[2].ID); err != nil {
		t.Errorf("the newest record was removed: %v", err)
	}
	checkConsistent(t, db)
}

func TestMaxRecords(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{BatchSize: 64, MaxRecords: 100})
	t0 := time.Now().Add(-time.Hour)
	var recs []*Record
	for i := range pruneChunk + 1000 {
		r := sample(fmt.Sprintf("tr-%d", i), "api", 200, t0.Add(time.Duration(i)*time.Millisecond))
		l.Append(r)
		recs = append(recs, r)
	}
	l, db = reopen(t, l, db, LogOptions{MaxRecords: 100})
	removed, err := l.Prune(time.Now())
	if err != nil || removed != len(recs)-100 {
		t.Fatalf("Prune = %d, %v; want %d", removed, err, len(recs)-100)
	}
	list, total, err := l.Page(Filter{}, 1, 1000)
	if err != nil || total != 100 || len(list) != 100 {
		t.Fatalf("Page = %d records, total %d, %v", len(list), total, err)
	}
	for i, r := range list {
		if want := recs[len(recs)-1-i].ID; r.ID != want {
			t.Fatalf("record %d is %s, want %s (the newest kept)", i, r.ID, want)
		}
	}
	checkConsistent(t, db)
}

func TestBackgroundRetention(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true})
	old := sample("old", "api", 200, time.Now().Add(-48*time.Hour))
	l.Append(old)
	l.Append(sample("new", "api", 200, time.Now()))
	l.Close()
	l = openLog(t, db, LogOptions{RetentionDays: 1, PruneEvery: 10 * time.Millisecond})
	deadline := time.Now().Add(5 * time.Second)
	for count(t, l) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("background retention did not remove the old record")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := l.Get(old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old record: %v", err)
	}
	l.Close()
	noLeak(t)
}

// TestPage checks every filter and some combinations against a brute-force
// filter of the same records, page by page.
func TestPage(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	longTrace := strings.Repeat("L", maxIndexed+1)
	var all []*Record
	for i := range 90 {
		r := sample(fmt.Sprintf("tr-%d", i%7), fmt.Sprintf("api-%d", i%3), []int{200, 200, 404, 500, 0}[i%5], t0.Add(time.Duration(i)*time.Minute))
		r.AppID = fmt.Sprintf("app-%d", i%4)
		switch i % 6 {
		case 1:
			r.Capture = &Capture{Query: "a=1", Bytes: 10}
		case 2:
			r.Capture = &Capture{Skipped: "over budget"}
		}
		if i%30 == 0 {
			r.StartedAt = t0.Add(time.Duration(i) * time.Minute) // several records at one instant
		}
		switch i {
		case 10:
			r.TraceID = "tr-1\x00x" // shares the index prefix of tr-1
		case 11:
			r.TraceID = longTrace // too long to index: found by scanning
		case 12:
			r.TraceID, r.APICode = "", ""
		}
		all = append(all, r)
	}
	// Same instant for a run of records: ordering still total.
	for i := 40; i < 45; i++ {
		all[i].StartedAt = t0.Add(40 * time.Minute)
	}
	var wg sync.WaitGroup
	for _, r := range all {
		wg.Go(func() { l.Append(r) })
	}
	wg.Wait()

	st := func(s int) *int { return &s }
	filters := map[string]Filter{
		"none":               {},
		"trace":              {TraceID: "tr-1"},
		"trace with 0x00":    {TraceID: "tr-1\x00x"},
		"long trace":         {TraceID: longTrace},
		"unknown trace":      {TraceID: "nope"},
		"api":                {APICode: "api-2"},
		"app":                {AppID: "app-3"},
		"status success":     {Status: st(StatusSuccess)},
		"status client":      {Status: st(StatusClientError)},
		"status unknown":     {Status: st(StatusUnknown)},
		"from":               {From: t0.Add(50 * time.Minute)},
		"to":                 {To: t0.Add(40 * time.Minute)},
		"from to":            {From: t0.Add(20 * time.Minute), To: t0.Add(41 * time.Minute)},
		"trace api":          {TraceID: "tr-3", APICode: "api-0"},
		"trace from to":      {TraceID: "tr-2", From: t0.Add(10 * time.Minute), To: t0.Add(80 * time.Minute)},
		"api status from":    {APICode: "api-1", Status: st(StatusServerError), From: t0.Add(5 * time.Minute)},
		"api to":             {APICode: "api-0", To: t0.Add(45 * time.Minute)},
		"app to":             {AppID: "app-1", To: t0.Add(60 * time.Minute)},
		"long trace and api": {TraceID: longTrace, APICode: "api-2"},
		"everything":         {TraceID: "tr-4", APICode: "api-1", AppID: "app-2", Status: st(StatusSuccess), From: t0, To: t0.Add(time.Hour * 2)},
		"empty window":       {From: t0.Add(time.Hour), To: t0.Add(time.Hour)},
		"captured":           {Captured: true},
		"captured api":       {Captured: true, APICode: "api-1"},
	}
	for name, f := range filters {
		t.Run(name, func(t *testing.T) {
			var want []string
			for _, r := range all {
				if f.matches(&probe{TraceID: r.TraceID, APICode: r.APICode, AppID: r.AppID, Status: r.Status, Capture: r.Capture}) &&
					(f.From.IsZero() || !r.StartedAt.Before(f.From)) && (f.To.IsZero() || r.StartedAt.Before(f.To)) {
					want = append(want, r.ID)
				}
			}
			slices.Sort(want)
			slices.Reverse(want) // newest first
			for _, size := range []int{1, 7, 100} {
				var got []string
				for page := 1; ; page++ {
					list, total, err := l.Page(f, page, size)
					if err != nil {
						t.Fatal(err)
					}
					if total != len(want) {
						t.Fatalf("size %d page %d: total %d, want %d", size, page, total, len(want))
					}
					if len(list) == 0 {
						break
					}
					if len(list) > size {
						t.Fatalf("page of %d records, size %d", len(list), size)
					}
					for _, r := range list {
						got = append(got, r.ID)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("size %d: pages hold\n%v\nwant\n%v", size, got, want)
				}
				// By cursor: the same records, each page ending where the
				// next begins, the last one saying there is no more.
				got, cursor, pages := nil, "", 0
				for {
					list, next, err := l.Before(f, cursor, size)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if len(list) > size || (next != "" && (len(list) != size || next != list[len(list)-1].ID)) {
						t.Fatalf("cursor page of %d records, size %d, next %q", len(list), size, next)
					}
					for _, r := range list {
						got = append(got, r.ID)
					}
					if next == "" {
						break
					}
					cursor = next
				}
				if !slices.Equal(got, want) || pages != max(1, (len(want)+size-1)/size) {
					t.Fatalf("size %d: %d cursor pages hold\n%v\nwant\n%v", size, pages, got, want)
				}
			}
		})
	}

	t.Run("paging bounds", func(t *testing.T) {
		list, total, err := l.Page(Filter{}, 0, 0) // page 1, default size
		if err != nil || total != len(all) || len(list) != DefaultPageSize {
			t.Fatalf("Page(0, 0) = %d records, total %d, %v", len(list), total, err)
		}
		list, total, err = l.Page(Filter{}, 1<<62, 50)
		if err != nil || total != len(all) || len(list) != 0 || list == nil {
			t.Fatalf("far page = %v, total %d, %v", list, total, err)
		}
	})

	t.Run("cursor bounds", func(t *testing.T) {
		list, next, err := l.Before(Filter{}, "", 0) // default size
		if err != nil || len(list) != DefaultPageSize || next != list[DefaultPageSize-1].ID {
			t.Fatalf("Before(\"\", 0) = %d records, next %q, %v", len(list), next, err)
		}
		want, _, _ := l.Page(Filter{}, 2, DefaultPageSize)
		// A record written meanwhile is newer than the cursor: the next
		// page does not shift.
		l.Append(sample("late", "api-0", 200, t0.Add(24*time.Hour)))
		got, _, err := l.Before(Filter{}, next, DefaultPageSize)
		if err != nil || len(got) != len(want) || got[0].ID != want[0].ID || got[len(got)-1].ID != want[len(want)-1].ID {
			t.Fatalf("the page after %s: %d records from %s, want %d from %s (%v)", next, len(got), got[0].ID, len(want), want[0].ID, err)
		}
		for _, bad := range []string{"x", strings.Repeat("g", 24), strings.Repeat("0", 23)} {
			if _, _, err := l.Before(Filter{}, bad, 10); !errors.Is(err, ErrBadCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
	})
}

// TestPageCaptured: the captured filter keeps exactly the records that hold
// a whole capture, and a stored capture reads back as it was written.
func TestPageCaptured(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	kept := sample("k", "a", 200, t0)
	kept.Capture = &Capture{Query: "x=1&y=%20", Bytes: 1234}
	skipped := sample("s", "a", 200, t0.Add(time.Second))
	skipped.Capture = &Capture{Skipped: "over budget"}
	plainRec := sample("p", "a", 200, t0.Add(2*time.Second))
	for _, r := range []*Record{kept, skipped, plainRec} {
		l.Append(r)
	}
	list, total, err := l.Page(Filter{Captured: true}, 1, 10)
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != kept.ID {
		t.Fatalf("captured page = %d of %d, %v", len(list), total, err)
	}
	if c := list[0].Capture; !c.Kept() || c.Query != "x=1&y=%20" || c.Bytes != 1234 {
		t.Fatalf("capture read back as %+v", c)
	}
	got, err := l.Get(skipped.ID)
	if err != nil || got.Capture == nil || got.Capture.Skipped != "over budget" || got.Capture.Kept() {
		t.Fatalf("skipped capture read back as %+v, %v", got.Capture, err)
	}
	if got, _ := l.Get(plainRec.ID); got.Capture != nil {
		t.Fatalf("a record without capture reads back with %+v", got.Capture)
	}
}

// TestConcurrentReadersDuringWrites is for -race: readers page and get
// while writers append.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{BatchSize: 32})
	var writers, readers sync.WaitGroup
	done := make(chan struct{})
	t0 := time.Now()
	// Enough records for every reader to page, get and filter while the
	// writer commits batches (-race sees the interleavings); more only
	// lengthens the run.
	const perWriter = 250
	for w := range 4 {
		writers.Go(func() {
			for i := range perWriter {
				l.Append(sample(fmt.Sprintf("w%d-%d", w, i%50), fmt.Sprintf("api-%d", w), 200, t0.Add(time.Duration(i)*time.Microsecond)))
			}
		})
	}
	errs := make(chan error, 8)
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				list, total, err := l.Page(Filter{APICode: "api-1"}, 1, 20)
				if err == nil && len(list) > total {
					err = fmt.Errorf("page of %d, total %d", len(list), total)
				}
				if err == nil && len(list) > 0 {
					_, err = l.Get(list[len(list)-1].ID)
				}
				if err == nil {
					_, _, err = l.Page(Filter{TraceID: "w2-7", From: t0}, 2, 3)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writers.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := count(t, l); n != 4*perWriter {
		t.Errorf("%d records, want %d", n, 4*perWriter)
	}
	checkConsistent(t, db)
}

// TestQueueFullDrops: with the writer stuck behind another write
// transaction, Append keeps returning at once and counts what it drops.
func TestQueueFullDrops(t *testing.T) {
	db := openDB(t)
	obs := &counter{}
	logs := &logBuffer{}
	l := openLog(t, db, LogOptions{QueueSize: 4, BatchSize: 2, Observer: obs, Logger: logs.logger()})
	tx, err := db.Bolt().Begin(true) // holds the write lock: the writer blocks
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	start := time.Now()
	for i := range n {
		l.Append(sample(fmt.Sprintf("t%d", i), "api", 200, time.Time{}))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Append blocked: %d appends took %s", n, d)
	}
	dropped := l.Dropped()
	if dropped == 0 || dropped > n-4 {
		t.Fatalf("dropped %d of %d with a queue of 4", dropped, n)
	}
	if int64(dropped) != obs.dropped.Load() {
		t.Errorf("observer saw %d drops, Dropped() = %d", obs.dropped.Load(), dropped)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, l); uint64(got)+dropped != n {
		t.Fatalf("%d stored + %d dropped != %d appended", got, dropped, n)
	}
	if s := logs.String(); !strings.Contains(s, "records dropped") || !strings.Contains(s, "dropped=") {
		t.Errorf("drops not logged with a count:\n%s", s)
	}
	// Logged once per interval, not once per drop (plus once at Close).
	if c := strings.Count(logs.String(), "records dropped"); c > 2 {
		t.Errorf("drops logged %d times", c)
	}
	l.Append(sample("late", "api", 200, time.Time{})) // after Close: dropped, no panic
	if l.Dropped() != dropped+1 {
		t.Errorf("append after Close not counted as dropped")
	}
}

func TestSyncWritesBeforeReturn(t *testing.T) {
	db := openDB(t)
	obs := &counter{}
	l := openLog(t, db, LogOptions{Sync: true, QueueSize: 2, Observer: obs})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				r := sample(fmt.Sprintf("s%d-%d", g, i), "api", 200, time.Time{})
				l.Append(r)
				if _, err := l.Get(r.ID); err != nil {
					errs <- fmt.Errorf("record not stored when Append returned: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.Dropped() != 0 {
		t.Errorf("sync mode dropped %d", l.Dropped())
	}
	if obs.wrote.Load() != 800 {
		t.Errorf("observer saw %d written", obs.wrote.Load())
	}
	t.Logf("800 sync appends from 16 goroutines in %d transactions", obs.txs.Load())
}

func TestExport(t *testing.T) {
	db := openDB(t)
	var out bytes.Buffer // written by the writer goroutine only; read after Close
	l := openLog(t, db, LogOptions{Export: &out, BatchSize: 16})
	var ids []string
	for i := range 300 {
		r := sample(fmt.Sprintf("e%d", i), "api", 200, time.Time{})
		r.ResponseBody = "<b>multi\nline</b>"
		l.Append(r)
		ids = append(ids, r.ID)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d is not a record: %v: %s", len(got)+1, err, sc.Bytes())
		}
		if r.ResponseBody != "<b>multi\nline</b>" {
			t.Fatalf("body came back as %q", r.ResponseBody)
		}
		got = append(got, r.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("exported %d lines, want %d in append order", len(got), len(ids))
	}
	if bytes.Contains(out.Bytes(), []byte(`\u003c`)) {
		t.Errorf("export escapes HTML: %.200s", out.Bytes())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("pipe closed") }

func TestExportErrorIsNotFatal(t *testing.T) {
	db := openDB(t)
	logs := &logBuffer{}
	l := openLog(t, db, LogOptions{Sync: true, Export: failingWriter{}, Logger: logs.logger()})
	r := sample("x", "api", 200, time.Time{})
	l.Append(r)
	l.Append(sample("y", "api", 200, time.Time{}))
	if _, err := l.Get(r.ID); err != nil {
		t.Fatalf("record not stored after an export error: %v", err)
	}
	if s := logs.String(); strings.Count(s, "export failed") != 1 || !strings.Contains(s, "pipe closed") {
		t.Errorf("export error not logged once:\n%s", s)
	}
}

func TestUnencodableValues(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{Sync: true})
	r := sample("u", "api", 200, time.Time{})
	r.Extra = map[string]any{"ch": make(chan int)}
	r.StepResults[0].Response = map[string]any{"f": func() {}}
	l.Append(r)
	got, err := l.Get(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TraceID != "u" || got.Extra["encodeError"] == nil || got.StepResults[0].ID != "lookup" {
		t.Fatalf("record with unencodable values stored as %+v", got)
	}
}

// TestCloseFlushes: everything queued at Close is stored.
func TestCloseFlushes(t *testing.T) {
	db := openDB(t)
	l := openLog(t, db, LogOptions{})
	for i := range 5000 {
		l.Append(sample(fmt.Sprintf("c%d", i), "api", 200, time.Time{}))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if l.Dropped() != 0 {
		t.Fatalf("dropped %d", l.Dropped())
	}
	l, db = reopen(t, l, db, LogOptions{})
	if n := count(t, l); n != 5000 {
		t.Fatalf("%d records after reopen, want 5000", n)
	}
	checkConsistent(t, db)
}

func TestNoGoroutineLeak(t *testing.T) {
	for _, o := range []LogOptions{{}, {Sync: true}, {PruneEvery: time.Millisecond, RetentionDays: 1, MaxRecords: 10}} {
		db := openDB(t)
		l, err := db.AccessLog(o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			l.Append(sample(fmt.Sprintf("g%d", i), "api", 200, time.Time{}))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	noLeak(t)
}

// Records must survive a JSON round trip unchanged so that Get returns
// what Append was given.
func TestRecordJSONRoundTrip(t *testing.T) {
	r := sample("t", "a", 200, time.Date(2026, 1, 1, 0, 0, 0, 123, time.UTC))
	r.ErrorCode, r.ErrorMessage = "E1", "boom"
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, back) {
		t.Fatalf("round trip changed the record:\n%+v\n%+v", *r, back)
	}
}
