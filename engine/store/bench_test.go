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
