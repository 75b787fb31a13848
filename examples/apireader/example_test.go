package apireader_test

// The walk-through of README.md, end to end: the feature service and a
// Databus gateway on loopback, register.sh registering the service in the
// gateway's own registry with the FATE calls, and reader.features called
// through the portal: a 20 MB streamed download with bounded memory, a
// failed job, and a poll that times out.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/examples/apireader/featureservice"
)

const basePath = "/admin-api/databus/api/portal"

// copyConfig copies config/ into a temp dir, applying edits (old → new) to
// apis/reader.yaml.
func copyConfig(t *testing.T, edits ...string) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.Walk("config", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("config", p)
		if rel == filepath.Join("apis", "reader.yaml") {
			for i := 0; i+1 < len(edits); i += 2 {
				if !strings.Contains(string(b), edits[i]) {
					t.Fatalf("reader.yaml has no %q", edits[i])
				}
				b = []byte(strings.Replace(string(b), edits[i], edits[i+1], 1))
			}
		}
		out := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(out), 0o755)
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// site is a gateway serving a copy of config/ with the feature service
// registered by register.sh.
type site struct {
	portal string
	wire   *wire
}

// wire records the requests the feature service receives, as they came
// over the connection.
type wire struct {
	mu   sync.Mutex
	reqs []received
}

type received struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

func (wr *wire) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		wr.mu.Lock()
		wr.reqs = append(wr.reqs, received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		wr.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

func (wr *wire) requests() []received {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return append([]received(nil), wr.reqs...)
}

func startSite(t *testing.T, jobTime time.Duration, edits ...string) site {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is needed by register.sh (.ci/run installs it)")
		}
		t.Skip("curl is not installed: register.sh needs it")
	}
	wr := &wire{}
	svc := httptest.NewServer(wr.wrap(featureservice.New(featureservice.Options{JobTime: jobTime}).Handler()))
	t.Cleanup(svc.Close)

	srv, err := gateway.New(gateway.Options{Dir: copyConfig(t, edits...), NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "databus.db")})
	if err != nil {
		t.Fatal(err)
	}
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	al, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pl, al) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })

	u, _ := url.Parse(svc.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	cmd := exec.Command("bash", "register.sh")
	cmd.Env = append(os.Environ(), "ADMIN=http://"+al.Addr().String(), "APIREADER_ADDR="+net.JoinHostPort(host, port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("register.sh: %v\n%s", err, out)
	}
	if strings.Count(string(out), `"retcode":0`) != 4 {
		t.Fatalf("register.sh did not register the server and its three services:\n%s", out)
	}
	return site{portal: "http://" + pl.Addr().String() + basePath, wire: wr}
}

func (s site) call(t *testing.T, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(s.portal+"/reader.features/v1", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestWalkthroughStreams20MB: upload, poll, then a download of more than
// 20 MB streamed through the gateway, whose heap grows by a small fraction
// of that while it passes.
func TestWalkthroughStreams20MB(t *testing.T) {
	s := startSite(t, 300*time.Millisecond)
	// 2,000 ids × 130 rows × ~86 bytes ≈ 22 MB of CSV.
	ids := make([]string, 2000)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"user-%05d"`, i)
	}
	body := `{"ids":[` + strings.Join(ids, ",") + `],"params":{"rowsPerId":130}}`

	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	resp := s.call(t, body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP %d %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	head := make([]byte, 32)
	io.ReadFull(resp.Body, head)
	n, err := io.Copy(io.Discard, resp.Body)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	total := n + int64(len(head))
	if !strings.HasPrefix(string(head), "id,row,f1,") || total < 20<<20 {
		t.Fatalf("downloaded %d bytes starting %q, want over 20 MiB of CSV", total, head)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("streamed %.1f MiB; heap in use grew by at most %.1f MiB", float64(total)/(1<<20), float64(grew)/(1<<20))
	if grew > 8<<20 {
		t.Errorf("heap grew by %.1f MiB while streaming %.1f MiB: the download was buffered", float64(grew)/(1<<20), float64(total)/(1<<20))
	}
}

// TestWalkthroughFailedJob: a job the service fails ends the flow at the
// query step with 502.
func TestWalkthroughFailedJob(t *testing.T) {
	s := startSite(t, 100*time.Millisecond)
	resp := s.call(t, `{"ids":["u1","will-fail"]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(b), `step \"query\" failed: poll.failWhen matched`) {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
}

// TestWalkthroughPollTimeout: a job that runs longer than poll.timeout
// answers 504 naming the query step.
func TestWalkthroughPollTimeout(t *testing.T) {
	s := startSite(t, time.Hour, "timeout: 120s", "timeout: 1s")
	resp := s.call(t, `{"ids":["u1"]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 504 || !strings.Contains(string(b), `step \"query\" timed out: poll.until not reached within 1s`) {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
}

// TestInputIsChecked: no ids is the input schema's 400, before any upload.
func TestInputIsChecked(t *testing.T) {
	s := startSite(t, time.Hour)
	resp := s.call(t, `{"ids":[]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "ids") {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
}

// TestWireShapeIsFateApiReaders: the flow calls the feature service as
// FATE Flow's ApiReader does (the registry document, section 3.1):
// upload a multipart body whose part "file" (application/octet-stream)
// holds the ids, the job's parameters in the query parameter requestBody;
// query the JSON body {"jobId"}; download no body, requestBody={"jobId"}
// in the query.
func TestWireShapeIsFateApiReaders(t *testing.T) {
	s := startSite(t, 100*time.Millisecond)
	resp := s.call(t, `{"ids":["u1","u2"],"params":{"rowsPerId":2,"stat_month":"202201"}}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Count(string(b), "\n") != 1+2*2 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, b)
	}
	reqs := s.wire.requests()
	if len(reqs) < 3 || reqs[0].path != "/v1/upload" || reqs[len(reqs)-1].path != "/v1/download" {
		t.Fatalf("the service received %d requests: %+v", len(reqs), reqs)
	}

	up := reqs[0]
	q, _ := url.ParseQuery(up.rawQuery)
	if up.method != "POST" || len(q) != 1 || !jsonEqual(q.Get("requestBody"), `{"rowsPerId":2,"stat_month":"202201"}`) {
		t.Errorf("upload: %s ?%s; want POST with requestBody the job's parameters alone", up.method, up.rawQuery)
	}
	mt, mp, err := mime.ParseMediaType(up.header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || mp["boundary"] == "" {
		t.Fatalf("upload Content-Type %q", up.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(up.body), mp["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(part)
	if part.FormName() != "file" || part.FileName() != "id" || part.Header.Get("Content-Type") != "application/octet-stream" || string(content) != "u1\nu2\n" {
		t.Errorf("upload part: %q %q %q %q", part.FormName(), part.FileName(), part.Header.Get("Content-Type"), content)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("upload: more than the one part file (%v)", err)
	}
	var jobID string
	for _, r := range reqs[1 : len(reqs)-1] {
		var in map[string]string
		if r.path != "/v1/query" || r.method != "POST" || r.rawQuery != "" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(r.body, &in) != nil || len(in) != 1 || in["jobId"] == "" {
			t.Errorf("query: %s %s?%s %q %s", r.method, r.path, r.rawQuery, r.header.Get("Content-Type"), r.body)
		}
		jobID = in["jobId"]
	}

	dl := reqs[len(reqs)-1]
	q, _ = url.ParseQuery(dl.rawQuery)
	if dl.method != "POST" || len(q) != 1 || !jsonEqual(q.Get("requestBody"), `{"jobId":"`+jobID+`"}`) {
		t.Errorf("download: %s ?%s; want requestBody={\"jobId\":%q}", dl.method, dl.rawQuery, jobID)
	}
	if len(dl.body) != 0 || dl.header.Get("Content-Type") != "" {
		t.Errorf("download carries a body: %q %q", dl.header.Get("Content-Type"), dl.body)
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
