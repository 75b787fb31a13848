package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadStorm changes the repository 100 times, valid and invalid
// versions mixed, some through the file watcher and some through explicit
// reloads, while 8 workers call the APIs: not one call may fail, an invalid
// version is never served, and the last valid version is what stays.
func TestReloadStorm(t *testing.T) {
	dir := newRepo(t, map[string]string{
		"stable.yaml": scriptAPI("t.stable", "online", "stable"),
		"edit.yaml":   scriptAPI("t.edit", "online", "v0"),
	})
	edit := filepath.Join(dir, "apis", "edit.yaml")
	ts := startServer(t, Options{Dir: dir})
	ts.expectValue(t, "t.edit", "v0")

	valid := []string{"v0"}
	for i := 1; i <= 100; i++ {
		if i%3 != 0 {
			valid = append(valid, fmt.Sprintf("v%d", i))
		}
	}
	l := startLoad(ts, 8, map[string][]string{"t.stable": {"stable"}, "t.edit": valid})
	defer l.stop(t)
	l.progress(t, 20)

	var okReloads, failedReloads int
	last := "v0"
	for i := 1; i <= 100; i++ {
		content := scriptAPI("t.edit", "online", fmt.Sprintf("v%d", i))
		bad := i%3 == 0
		if bad {
			// Alternate a YAML error and a semantic error.
			if i%2 == 0 {
				content = "apiVersion: databus/v1\nkind: Api\ncode: t.edit\n  version: [broken\n"
			} else {
				content = strings.Replace(content, "type: script", "type: nosuchstep", 1)
			}
		} else {
			last = fmt.Sprintf("v%d", i)
		}
		if i%2 == 0 {
			replaceFile(t, edit, content)
		} else {
			writeFile(t, edit, content)
		}
		if i%4 == 0 {
			res := ts.Reload(context.Background(), "storm")
			if res.OK == bad {
				t.Fatalf("change %d (invalid: %v): reload OK = %v, errors %v %s", i, bad, res.OK, res.Errors, res.Error)
			}
			if res.OK {
				okReloads++
			} else {
				failedReloads++
				if len(res.Errors) == 0 || !strings.Contains(res.Errors[0].File, "edit.yaml") {
					t.Errorf("change %d: the failed reload does not name edit.yaml: %+v", i, res.Errors)
				}
			}
		}
	}
	// Change 100 is valid (100 % 3 != 0): it must be what is served.
	if last != "v100" {
		t.Fatalf("the storm should end on a valid change, ended on %s", last)
	}
	ts.expectValue(t, "t.edit", last)
	ts.expectValue(t, "t.stable", "stable")
	l.progress(t, 20)
	if okReloads == 0 || failedReloads == 0 {
		t.Errorf("explicit reloads: %d ok, %d failed; want both kinds", okReloads, failedReloads)
	}
	t.Logf("%d successful calls during the storm", l.ok.Load())
}

// faultyUpstream misbehaves in every way an upstream can.
type faultyUpstream struct {
	url     string
	release chan struct{}
	hugeOut atomic.Int64 // bytes the huge handler managed to send
}

func newFaultyUpstream(t *testing.T) *faultyUpstream {
	t.Helper()
	u := &faultyUpstream{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		case <-u.release:
		}
		io.WriteString(w, `{"late":true}`)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		// Sends the headers and half a body, then nothing.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, `{"partial":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-u.release:
		}
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		conn.Close()
	})
	mux.HandleFunc("/5xx", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		io.WriteString(w, `{"data":"`)
		for i := 0; i < 200<<20/len(chunk); i++ { // 200 MiB unless the gateway hangs up
			n, err := w.Write(chunk)
			u.hugeOut.Add(int64(n))
			if err != nil {
				return
			}
		}
		io.WriteString(w, `"}`)
	})
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		select {
		case <-u.release:
		default:
			close(u.release)
		}
		srv.Close()
	})
	u.url = "http://" + ln.Addr().String()
	return u
}

func faultAPI(code, url string, timeout string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: online
methods: [GET]
steps:
  - {id: start, type: start}
  - id: up
    type: http
    http: {method: GET, url: '%s', timeout: %s}
  - {id: end, type: end}
`, code, url, timeout)
}

// TestUpstreamFaults calls APIs whose upstream is slow, hangs mid-body,
// resets the connection, answers 500 or sends 200 MiB, from several
// workers at once: each gets the documented envelope naming the step, the
// heap stays bounded (the huge answer is cut at maxResponseBytes), and no
// goroutine outlives the gateway.
func TestUpstreamFaults(t *testing.T) {
	up := newFaultyUpstream(t)
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	writeRepo(t, dir, map[string]string{
		"databus.yaml":    testSettings + "gateway:\n  webClient: {maxResponseBytes: 1048576}\n",
		"apis/ok.yaml":    faultAPI("f.ok", up.url+"/ok", "5s"),
		"apis/slow.yaml":  faultAPI("f.slow", up.url+"/slow", "300ms"),
		"apis/hang.yaml":  faultAPI("f.hang", up.url+"/hang", "300ms"),
		"apis/reset.yaml": faultAPI("f.reset", up.url+"/reset", "5s"),
		"apis/5xx.yaml":   faultAPI("f.5xx", up.url+"/5xx", "5s"),
		"apis/huge.yaml":  faultAPI("f.huge", up.url+"/huge", "30s"),
	})
	ts := startServer(t, Options{Dir: dir})

	want := map[string]struct {
		status int
		msg    string
	}{
		"f.ok":    {200, ""},
		"f.slow":  {504, `step "up" timed out`},
		"f.hang":  {504, `step "up" timed out`},
		"f.reset": {502, `step "up" failed`},
		"f.5xx":   {502, `upstream answered HTTP 500`},
		"f.huge":  {502, `upstream response larger than 1048576 bytes`},
	}
	var runtimeMem runtime.MemStats
	runtime.ReadMemStats(&runtimeMem)
	baseHeap := runtimeMem.HeapInuse

	// Sample the heap while the faults run.
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				for code, exp := range want {
					env, err := ts.call(code)
					switch {
					case err != nil:
						errs <- fmt.Sprintf("%s: %v", code, err)
					case env.Code != exp.status || !strings.Contains(env.Message, exp.msg):
						errs <- fmt.Sprintf("%s: %d %q, want %d %q", code, env.Code, env.Message, exp.status, exp.msg)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(stopSampling)
	sampler.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// 6 workers × 3 rounds of a 200 MiB answer: buffering any of them
	// whole would show here; each is cut at 1 MiB.
	if grew := int64(peak.Load()) - int64(baseHeap); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB during the faults (peak %d MiB)", grew>>20, peak.Load()>>20)
	}
	if sent := up.hugeOut.Load(); sent >= 18*200<<20 {
		t.Errorf("the huge upstream sent %d MiB: the gateway read it all", sent>>20)
	}

	close(up.release)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	waitGoroutines(t, before)
}

// TestSlowClients holds connections open the slowloris way, with headers
// and then with a body: the server's read timeouts close them, and the
// gateway keeps answering everybody else.
func TestSlowClients(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts := startServer(t, Options{Dir: dir, ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond})
	addr := strings.TrimPrefix(ts.portalURL, "http://")

	// closedBy reads until the server closes conn; it fails the test when
	// the server keeps it open for 15s (far beyond the timeouts above).
	closedBy := func(t *testing.T, conn net.Conn, trickle func() error) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for trickle() == nil {
				time.Sleep(50 * time.Millisecond)
			}
		}()
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept a slow connection open for 15s")
		}
		conn.Close()
		<-done
	}

	t.Run("headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s/t.one/v1 HTTP/1.1\r\nHost: x\r\n", basePath)
		i := 0
		closedBy(t, conn, func() error {
			i++
			_, err := fmt.Fprintf(conn, "X-Slow-%d: y\r\n", i)
			return err
		})
	})
	t.Run("body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s/t.one/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", basePath)
		closedBy(t, conn, func() error {
			_, err := conn.Write([]byte(" "))
			return err
		})
	})
	// Meanwhile and afterwards, normal calls are answered.
	ts.expectValue(t, "t.one", "one")
}

// TestOversizedHeaders sends header blocks at and above the limits: the
// portal answers 431 in the envelope up to the server's own limit, the
// server answers 431 above it, and the gateway stays up.
func TestOversizedHeaders(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts := startServer(t, Options{Dir: dir})
	for _, size := range []int{900 << 10, 4 << 20} {
		req, _ := http.NewRequest(http.MethodGet, ts.portalURL+basePath+"/t.one/v1", nil)
		req.Header.Set("X-Big", strings.Repeat("a", size))
		resp, err := ts.client.Do(req)
		if err != nil {
			// The server may close the connection while the client is
			// still writing the 4 MiB header block.
			if size > 1<<20 {
				continue
			}
			t.Fatalf("%d KiB header: %v", size>>10, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%d KiB header: HTTP %d %s", size>>10, resp.StatusCode, body)
		}
		if size < 1<<20 && !bytes.HasPrefix(body, []byte(`{"code":431`)) {
			t.Errorf("%d KiB header: not the envelope: %.200s", size>>10, body)
		}
	}
	ts.expectValue(t, "t.one", "one")
}

// rawRequest sends one request as written and returns the status line.
func rawRequest(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, raw)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to %.80q: %v", raw, err)
	}
	return strings.TrimSpace(line)
}

// TestHostilePaths sends path traversal and malformed request lines.
func TestHostilePaths(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts := startServer(t, Options{Dir: dir})
	addr := strings.TrimPrefix(ts.portalURL, "http://")
	for _, path := range []string{
		basePath + "/../../etc/passwd/v1",
		basePath + "/%2e%2e/%2e%2e/etc/v1",
		basePath + "/..%2f..%2fdatabus.yaml/v1",
		basePath + "/t.one/../t.one/v1",
		basePath + "/t.one%00/v1",
		basePath + "/" + strings.Repeat("a", 10000) + "/v1",
		basePath + "/t.one/v1/../../../admin",
		"/../../../../etc/passwd",
	} {
		status := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(status, "HTTP/1.1 404") && !strings.HasPrefix(status, "HTTP/1.1 400") {
			t.Errorf("GET %.80s: %s, want 404 or 400", path, status)
		}
	}
	for _, raw := range []string{
		"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
		"GARBAGE\r\n\r\n",
		"GET " + basePath + "/t.one/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		"POST " + basePath + "/t.one/v1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\n",
	} {
		status := rawRequest(t, addr, raw)
		if !strings.HasPrefix(status, "HTTP/1.1 4") {
			t.Errorf("%.60q: %s, want a 4xx", raw, status)
		}
	}
	ts.expectValue(t, "t.one", "one")
}
