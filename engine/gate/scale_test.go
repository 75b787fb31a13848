package gate

import (
	"context"
	"runtime"
	"testing"

	"github.com/databus-gateway/databus/engine/config/configtest"
)

func writeScaleRepo(tb testing.TB, n int) string {
	dir := tb.TempDir()
	if err := configtest.WriteFiles(dir, configtest.ScaleFiles(n, "127.0.0.1:9")); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// The scale repository is valid: the benchmarks measure a repository a
// gateway serves.
func TestScaleRepoIsValid(t *testing.T) {
	r := Build(context.Background(), writeScaleRepo(t, 25), Options{Mode: Dry})
	if !r.OK() || len(r.Diagnostics) != 0 {
		t.Fatalf("%v %v", r.Err, r.Diagnostics)
	}
	if len(r.Repo.APIs) != 25 || len(r.Repo.Policies) != 25 {
		t.Fatal(r.Repo)
	}
}

// BenchmarkSnapshotMemory reports the heap a built Snapshot holds per API
// (bytes/API), after a collection.
func BenchmarkSnapshotMemory(b *testing.B) {
	const n = 1000
	dir := writeScaleRepo(b, n)
	var keep *Result
	for b.Loop() {
		keep = nil
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := Build(context.Background(), dir, Options{Mode: Dry})
		if !r.OK() {
			b.Fatal(r.Diagnostics)
		}
		keep = &r
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/API")
	}
	runtime.KeepAlive(keep)
}

// BenchmarkScaleBuild is a cold dry build of the scale repository.
func BenchmarkScaleBuild(b *testing.B) {
	dir := writeScaleRepo(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if r := Build(context.Background(), dir, Options{Mode: Dry}); !r.OK() {
			b.Fatal(r.Diagnostics)
		}
	}
}
