package portal

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// lockedBuffer collects log output from concurrent requests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUnusableKeyLogIsRateLimited: a credential whose key does not resolve
// answers 500 to every caller naming its appId — no signature needed — so
// its ERROR line is written once per interval, not once per request.
func TestUnusableKeyLogIsRateLimited(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml":           "apiPortal:\n  basePath: /api\n  security: {enabled: true}\n",
		"policies/p.yaml":        policy,
		"credentials/nokey.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-nokey\nencryptionKey: {secretRef: 'env:DATABUS_TEST_UNSET_KEY'}\n",
		"apis/a.yaml":            api("k.a", "online", "[POST]", scriptStep(`function main(c) { return 1 }`)),
	})
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("repository: %v %s", err, diags.Error())
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: &flow.Env{Client: &http.Client{}, DefaultTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	h := New(func() *snapshot.Snapshot { return snap }, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), FaultLogInterval: time.Hour})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	c := &client.Client{BaseURL: srv.URL + "/api", Credential: client.Credential{AppID: "app-nokey", EncryptionKey: []byte("0123456789abcdef")}}
	const flood = 200
	var wrong atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < flood/8; i++ {
				req, err := c.Prepare("POST", "k.a", nil, []byte(`{}`))
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := c.Send(t.Context(), req)
				if err != nil || resp.StatusCode != http.StatusInternalServerError || resp.Envelope.Message != MsgNoKey {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d of %d calls were not 500 %q", n, flood, MsgNoKey)
	}
	if n := strings.Count(logs.String(), "credential has no usable key"); n != 1 {
		t.Errorf("%d log lines for %d calls, want 1 per interval:\n%s", n, flood, logs.String())
	}
}
