package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/store"
)

// buildDatabus builds the databus binary into a temp dir and returns its path.
func buildDatabus(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the binary: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		t.Fatalf("go env GOMOD: %q %v", out, err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "databus")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/databus")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
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

// serveProc is a running `databus serve`.
type serveProc struct {
	cmd           *exec.Cmd
	exited        chan error // receives Wait's result
	logs          *lockedBuffer
	portal, admin string
}

// startServe runs `databus serve` on free loopback ports and waits until
// /readyz answers 200. A port taken between choosing it and the bind is
// retried with new ones.
func startServe(t *testing.T, bin, dir string, client *http.Client) *serveProc {
	t.Helper()
attempts:
	for attempt := 1; ; attempt++ {
		p := &serveProc{exited: make(chan error, 1), logs: &lockedBuffer{}, portal: freePort(t), admin: freePort(t)}
		p.cmd = exec.Command(bin, "serve", "--dir", dir, "--listen", p.portal, "--admin-listen", p.admin, "--no-watch", "--drain-timeout", "30s")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.exited <- p.cmd.Wait() }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get("http://" + p.admin + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
			select {
			case err := <-p.exited:
				if attempt < 3 && strings.Contains(p.logs.String(), "address already in use") {
					continue attempts
				}
				t.Fatalf("databus serve exited before it was ready: %v\n%s", err, p.logs.String())
			default:
			}
			if time.Now().After(deadline) {
				p.cmd.Process.Kill()
				<-p.exited
				t.Fatalf("databus serve not ready\n%s", p.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestSIGTERMUnderLoadKeepsEveryRecord runs `databus serve` as a process,
// loads it from 8 workers, sends SIGTERM in the middle, and then checks in
// the bbolt file that every request that got a complete answer has its
// access-log record, and that the file is intact.
func TestSIGTERMUnderLoadKeepsEveryRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildDatabus(t)

	// An upstream that takes a little while, so that requests are in
	// flight when the signal comes.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"trace":%q}`, r.Header.Get("X-Trace-Id"))
	}))
	defer up.Close()

	dir := writeRepo(t, map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\n",
		"apis/slow.yaml": "apiVersion: databus/v1\nkind: Api\ncode: t.slow\nversion: v1\nstatus: online\nmethods: [GET]\nsteps:\n" +
			"  - {id: start, type: start}\n  - id: up\n    type: http\n    http: {method: GET, url: '" + up.URL + "/x', timeout: 20s}\n  - {id: end, type: end}\n",
		"apis/fast.yaml": "apiVersion: databus/v1\nkind: Api\ncode: t.fast\nversion: v1\nstatus: online\nmethods: [GET]\nsteps:\n" +
			"  - {id: start, type: start}\n  - id: s\n    type: script\n    script: {timeout: 10s, source: 'function main(c) { return {trace: c.traceId} }'}\n  - {id: end, type: end}\n",
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	p := startServe(t, bin, dir, client)
	portal, cmd, exited, logs := p.portal, p.cmd, p.exited, p.logs
	var waited atomic.Bool // exited was received from
	defer func() {
		if !waited.Load() {
			cmd.Process.Kill()
			<-exited
		}
	}()

	var (
		mu         sync.Mutex
		answered   []string // trace ids with a complete 200 envelope
		beforeErrs []string // failures before the signal: there must be none
		signaled   atomic.Bool
		wg         sync.WaitGroup
		stop       = make(chan struct{})
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code := []string{"t.slow", "t.fast"}[i%2]
				trace := fmt.Sprintf("sigterm-%d-%d", w, i)
				req, _ := http.NewRequest("GET", "http://"+portal+"/admin-api/databus/api/portal/"+code+"/v1", nil)
				req.Header.Set("X-Trace-Id", trace)
				resp, err := client.Do(req)
				// A failure that happens before the signal is sent is a
				// failure; after it, it may be the shutdown's doing.
				wasSignaled := signaled.Load()
				if err != nil {
					if !wasSignaled {
						mu.Lock()
						beforeErrs = append(beforeErrs, err.Error())
						mu.Unlock()
					}
					time.Sleep(time.Millisecond) // the listener is gone: do not spin
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var env struct {
					Code     int             `json:"code"`
					TraceID  string          `json:"traceId"`
					Response json.RawMessage `json:"response"`
				}
				if err != nil || json.Unmarshal(body, &env) != nil || resp.StatusCode != 200 || env.Code != 200 ||
					env.TraceID != trace || !strings.Contains(string(env.Response), trace) {
					if !wasSignaled {
						mu.Lock()
						beforeErrs = append(beforeErrs, fmt.Sprintf("HTTP %d %q %v", resp.StatusCode, body, err))
						mu.Unlock()
					}
					continue
				}
				mu.Lock()
				answered = append(answered, trace)
				mu.Unlock()
			}
		}(w)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(answered)
	}
	// Load for about half a second (and at least until 100 answers), then
	// SIGTERM while the workers keep going for another half second.
	loadStart := time.Now()
	for count() < 100 || time.Since(loadStart) < 500*time.Millisecond {
		if time.Since(loadStart) > 30*time.Second {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d answers in 30s; errors: %v\n%s", count(), beforeErrs, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	atSignal := count()
	signaled.Store(true)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	var exitErr error
	select {
	case exitErr = <-exited:
		waited.Store(true)
	case <-time.After(60 * time.Second):
		t.Fatalf("databus serve did not exit after SIGTERM\n%s", logs.String())
	}
	if exitErr != nil {
		t.Errorf("databus serve after SIGTERM: %v\n%s", exitErr, logs.String())
	}
	if len(beforeErrs) > 0 {
		t.Errorf("%d calls failed before the signal; first: %s", len(beforeErrs), beforeErrs[0])
	}
	if !strings.Contains(logs.String(), "shutting down") || !strings.Contains(logs.String(), "stopped") {
		t.Errorf("no graceful shutdown in the log:\n%s", logs.String())
	}
	t.Logf("%d answered calls (%d before SIGTERM)", len(answered), atSignal)

	// The bbolt file (at the default path, outside the repository): every
	// answered trace has its record, and every record reads back.
	db, err := store.Open(config.DefaultStoragePath(dir), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var checkErrs []error
	if err := db.Bolt().View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			checkErrs = append(checkErrs, err)
		}
		return nil
	}); err != nil || len(checkErrs) > 0 {
		t.Fatalf("the bbolt file is not consistent: %v %v", err, checkErrs)
	}
	acc, err := db.AccessLog(store.LogOptions{PruneEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	missing := 0
	for _, trace := range answered {
		list, total, err := acc.Page(store.Filter{TraceID: trace}, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || len(list) != 1 || list[0].HTTPStatus != 200 || list[0].TraceID != trace {
			missing++
			if missing <= 5 {
				t.Errorf("answered trace %s: %d records %+v", trace, total, list)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered calls have no record", missing, len(answered))
	}
	all := 0
	for page := 1; ; page++ {
		list, total, err := acc.Page(store.Filter{}, page, store.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			got, err := acc.Get(r.ID)
			if err != nil || got.TraceID != r.TraceID || got.ID != r.ID || strings.HasPrefix(got.ErrorMessage, "stored record unreadable") {
				t.Errorf("record %s does not read back: %v %+v", r.ID, err, got)
			}
			all++
		}
		if all >= total || len(list) == 0 {
			if all != total {
				t.Errorf("paged through %d records of %d", all, total)
			}
			break
		}
	}
	if all < len(answered) {
		t.Errorf("%d records for %d answered calls", all, len(answered))
	}
}
