package gate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/pool"
	"github.com/databus-gateway/databus/engine/snapshot"
)

func otlpKeys(p *pool.Pool) []string {
	var out []string
	for _, k := range p.Keys() {
		if strings.HasPrefix(k, "otlp:") {
			out = append(out, k)
		}
	}
	return out
}

// The tracer provider is a pooled resource: a reload with the same
// telemetry settings shares it, a change builds a new one and the old one
// goes with the last request of the Snapshot that used it; a sandbox build
// (databus test, replay) never gets one, nor does a build without an
// endpoint.
func TestTracerPooledPerSettings(t *testing.T) {
	settings := func(ratio string) string {
		return "apiVersion: databus/v1\nkind: Settings\ntelemetry:\n  otlp: {endpoint: '127.0.0.1:1', sampleRatio: " + ratio + ", headers: {X-Token: {secretRef: 'env:DATABUS_TEST_OTLP_TOKEN'}}}\n"
	}
	t.Setenv("DATABUS_TEST_OTLP_TOKEN", "t0ken")
	dir := repoWith(t, map[string]string{"databus.yaml": settings("1")})
	p := pool.New()
	var h snapshot.Holder
	first := Build(context.Background(), dir, Options{Mode: Live, Pool: p})
	if !first.OK() || first.Snapshot.Tracer == nil {
		t.Fatalf("live build with an endpoint: %v, tracer %v", first.Diagnostics, first.Snapshot)
	}
	h.Swap(first.Snapshot)
	keys := otlpKeys(p)
	if len(keys) != 1 || strings.Contains(keys[0], "t0ken") {
		t.Fatalf("pool keys %v: want one exporter, keyed without the header's value", keys)
	}
	// Another file changes, telemetry does not: the same provider.
	os.WriteFile(filepath.Join(dir, "policies", "extra.yaml"), []byte("apiVersion: databus/v1\nkind: RateLimitPolicy\nname: extra\n"), 0o644)
	same := Build(context.Background(), dir, Options{Mode: Live, Pool: p, Prev: h.Load()})
	if !same.OK() || same.Snapshot.Tracer != first.Snapshot.Tracer {
		t.Fatalf("unchanged telemetry settings built a new tracer: %v", same.Diagnostics)
	}
	h.Swap(same.Snapshot)
	// A rotated token is a new exporter (the key holds its hash).
	t.Setenv("DATABUS_TEST_OTLP_TOKEN", "rotated")
	os.WriteFile(filepath.Join(dir, "databus.yaml"), []byte(settings("0.5")), 0o644)
	next := Build(context.Background(), dir, Options{Mode: Live, Pool: p, Prev: h.Load()})
	if !next.OK() || next.Snapshot.Tracer == nil || next.Snapshot.Tracer == first.Snapshot.Tracer {
		t.Fatalf("changed telemetry settings: %v", next.Diagnostics)
	}
	inflight := h.Acquire()
	h.Swap(next.Snapshot)
	if n := len(otlpKeys(p)); n != 2 {
		t.Fatalf("%d exporters while a request holds the old Snapshot, want 2", n)
	}
	inflight.Release()
	if n := len(otlpKeys(p)); n != 1 {
		t.Fatalf("%d exporters after the old Snapshot's last request, want 1", n)
	}
	h.Close()
	if keys := p.Keys(); len(keys) != 0 {
		t.Fatalf("after Close the pool holds %v", keys)
	}

	// A sandbox build of the same repository exports nothing.
	sb := Build(context.Background(), dir, Options{Mode: Sandbox})
	if !sb.OK() || sb.Snapshot.Tracer != nil {
		t.Fatalf("sandbox build: %v, tracer %v", sb.Diagnostics, sb.Snapshot.Tracer)
	}
	sb.Snapshot.Discard()

	// A header whose secret does not resolve refuses the live build at
	// the header's key.
	os.Unsetenv("DATABUS_TEST_OTLP_TOKEN")
	bad := Build(context.Background(), dir, Options{Mode: Live, Pool: pool.New()})
	if bad.OK() || !strings.Contains(bad.Diagnostics.Errors()[0].String(), `telemetry.otlp.headers["X-Token"]: secret not resolved`) {
		t.Fatalf("unresolved header: %v", bad.Diagnostics)
	}
}
