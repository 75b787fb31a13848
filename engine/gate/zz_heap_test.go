package gate

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

func TestZZHeap(t *testing.T) {
	if os.Getenv("ZZ_HEAP") == "" {
		t.Skip()
	}
	dir := writeScaleRepo(t, 2000)
	runtime.MemProfileRate = 512
	r := Build(context.Background(), dir, Options{Mode: Dry})
	runtime.GC()
	f, _ := os.Create(os.Getenv("ZZ_HEAP"))
	pprof.WriteHeapProfile(f)
	f.Close()
	runtime.KeepAlive(r)
}
