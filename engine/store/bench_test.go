package store

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchRecord is a portal request with bodies near the 4000-char default cap.
func benchRecord(i int64) *Record {
	r := sample("trace-"+strconv.FormatInt(i, 36), "api-"+strconv.FormatInt(i%20, 10), 200, time.Time{})
	r.RequestBody = benchBody
	r.ResponseBody = benchBody
	return r
}

var benchBody = Truncate(strings.Repeat(`{"orderId":"A-1001","sku":"X-42","qty":2},`, 60), 2000)

// BenchmarkAppendAsync is the sustained rate of the async path: b.N
// appends from parallel goroutines and the flush that stores them all.
// The queue is as long as b.N so that nothing is dropped and the figure is
// what the writer stores, not what Append accepts.
func BenchmarkAppendAsync(b *testing.B) {
	db := openDB(b)
	l, err := db.AccessLog(LogOptions{QueueSize: b.N, PruneEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Append(benchRecord(n.Add(1)))
		}
	})
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if d := l.Dropped(); d != 0 {
		b.Fatalf("%d dropped", d)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendSync is accessLog.mode: sync with many concurrent
// requests; each Append waits for its commit, and concurrent ones share one.
func BenchmarkAppendSync(b *testing.B) {
	db := openDB(b)
	l, err := db.AccessLog(LogOptions{Sync: true, PruneEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	var n atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS requests in flight
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Append(benchRecord(n.Add(1)))
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPage is one admin page with an index filter over 20000 records.
func BenchmarkPage(b *testing.B) {
	db := openDB(b)
	l, err := db.AccessLog(LogOptions{PruneEvery: -1, QueueSize: 20000})
	if err != nil {
		b.Fatal(err)
	}
	for i := range int64(20000) {
		l.Append(benchRecord(i))
	}
	l.Close()
	l, err = db.AccessLog(LogOptions{PruneEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	b.ResetTimer()
	for b.Loop() {
		if _, total, err := l.Page(Filter{APICode: "api-7"}, 3, 20); err != nil || total != 1000 {
			b.Fatal(total, err)
		}
	}
}

// BenchmarkPageThrough reads a log of 20000 records whole, in pages of
// 100, newest first, as diff --traffic and replay read the admin API, three
// ways: pageNo 1 under an upper time bound moved down to the oldest record
// of each page; pageNo 1, 2, 3... under a fixed upper bound; and by cursor
// (Before). Both page-number ways count every older match on each page, so
// their cost grows with the square of the log; with captured=true (what
// replay asks) each match counted is a record decoded, and those two take
// minutes (-benchtime 1x).
func BenchmarkPageThrough(b *testing.B) {
	const records, size = 20000, 100
	db := openDB(b)
	l, err := db.AccessLog(LogOptions{PruneEvery: -1, QueueSize: records})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	for i := range int64(records) {
		r := benchRecord(i)
		r.StartedAt = t0.Add(time.Duration(i) * time.Millisecond)
		r.Capture = &Capture{Bytes: 4000}
		l.Append(r)
	}
	l.Close()
	l, err = db.AccessLog(LogOptions{PruneEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	end := time.Now()
	check := func(b *testing.B, n int) {
		if n != records {
			b.Fatalf("read %d records, want %d", n, records)
		}
	}
	for _, f := range []struct {
		name   string
		filter Filter
	}{{"all", Filter{}}, {"captured", Filter{Captured: true}}} {
		b.Run(f.name+"/moving-to", func(b *testing.B) {
			for b.Loop() {
				n, flt := 0, f.filter
				flt.To = end
				for {
					list, _, err := l.Page(flt, 1, size)
					if err != nil {
						b.Fatal(err)
					}
					n += len(list)
					if len(list) < size {
						break
					}
					flt.To = list[len(list)-1].StartedAt // distinct times here
				}
				check(b, n)
			}
		})
		b.Run(f.name+"/page-number", func(b *testing.B) {
			for b.Loop() {
				n, flt := 0, f.filter
				flt.To = end
				for page := 1; ; page++ {
					list, _, err := l.Page(flt, page, size)
					if err != nil {
						b.Fatal(err)
					}
					n += len(list)
					if len(list) < size {
						break
					}
				}
				check(b, n)
			}
		})
		b.Run(f.name+"/cursor", func(b *testing.B) {
			for b.Loop() {
				n, cursor := 0, ""
				for {
					list, next, err := l.Before(f.filter, cursor, size)
					if err != nil {
						b.Fatal(err)
					}
					n += len(list)
					if next == "" {
						break
					}
					cursor = next
				}
				check(b, n)
			}
		})
	}
}
