package gate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
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
	if len(r.Repo.APIs) != 25 || len(r.Repo.Policies) != 25 || len(r.Repo.Credentials) != 1 {
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
	dir := writeScaleRepo(b, scaleN())
	b.ReportAllocs()
	for b.Loop() {
		if r := Build(context.Background(), dir, Options{Mode: Dry}); !r.OK() {
			b.Fatal(r.Diagnostics)
		}
	}
}

// BenchmarkScaleReload is a reload of the scale repository after one API
// file changed (edit), after a file was rewritten with the same bytes
// (same bytes), and the cold build beside them (cold), in the same run.
// DATABUS_SCALE_N sets the number of APIs (default 1,000).
func BenchmarkScaleReload(b *testing.B) {
	dir := writeScaleRepo(b, scaleN())
	// Files written within the last two seconds are read again on every
	// reload (their metadata cannot stand for their bytes yet); a
	// checkout's files are older.
	time.Sleep(2100 * time.Millisecond)
	first := Build(context.Background(), dir, Options{Mode: Dry})
	if !first.OK() {
		b.Fatal(first.Diagnostics)
	}
	prev := first.Snapshot
	rel := filepath.Join(dir, filepath.FromSlash(configtest.ScaleAPIFile(0)))
	orig, _ := os.ReadFile(rel)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if r := Build(context.Background(), dir, Options{Mode: Dry}); !r.OK() {
				b.Fatal(r.Diagnostics)
			}
		}
	})
	b.Run("edit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			os.WriteFile(rel, fmt.Appendf(append([]byte(nil), orig...), "# edit %d\n", i), 0o644)
			r := Build(context.Background(), dir, Options{Mode: Dry, Prev: prev})
			if !r.OK() || r.Snapshot == nil || r.Repo.Loaded.Parsed > 2 {
				b.Fatal(r.Diagnostics, r.Repo.Loaded)
			}
			prev = r.Snapshot
		}
	})
	// The gateway's way: one Cache, told by the file watcher which file
	// changed.
	var cache config.Cache
	cache.Load(dir)
	relName := configtest.ScaleAPIFile(0)
	b.Run("edit (watched)", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			os.WriteFile(rel, fmt.Appendf(append([]byte(nil), orig...), "# watched edit %d\n", i), 0o644)
			r := Build(context.Background(), dir, Options{Mode: Dry, Prev: prev, Cache: &cache, Changed: []string{relName}})
			if !r.OK() || r.Snapshot == nil || r.Repo.Loaded.Parsed > 2 || r.Repo.Loaded.Read > 2 {
				b.Fatal(r.Diagnostics, r.Repo.Loaded)
			}
			prev = r.Snapshot
		}
	})
	b.Run("same bytes (watched)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := Build(context.Background(), dir, Options{Mode: Dry, Prev: prev, Cache: &cache, Changed: []string{relName}}); !r.Unchanged {
				b.Fatal("not found unchanged")
			}
		}
	})
	b.Run("same bytes", func(b *testing.B) {
		for b.Loop() {
			if r := Build(context.Background(), dir, Options{Mode: Dry, Prev: prev}); !r.Unchanged {
				b.Fatal("not found unchanged")
			}
		}
	})
}

// scaleN is the number of APIs of the scale benchmarks: DATABUS_SCALE_N,
// default 1,000.
func scaleN() int {
	if v, err := strconv.Atoi(os.Getenv("DATABUS_SCALE_N")); err == nil && v > 0 {
		return v
	}
	return 1000
}
