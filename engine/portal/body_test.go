package portal

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// bodyFixture is a gateway with the security chain on and the body
// settings of portal (YAML lines under apiPortal), served over loopback.
type bodyFixture struct {
	h   *Handler
	m   *metrics.Metrics
	srv *httptest.Server
	app *client.Client // app-none: HMAC-SHA256, no encryption
}

func newBodyFixture(t testing.TB, portal string) *bodyFixture {
	t.Helper()
	t.Setenv("DATABUS_TEST_KEY_APP_NONE", testKeys["APP_NONE"])
	settings := "apiPortal:\n  basePath: /api\n" + portal + "  security: {enabled: true, requireBodyEncryption: false, encryptResponse: false}\n"
	dir := testRepo(t, map[string]string{
		"databus.yaml":          settings,
		"policies/p.yaml":       policy,
		"credentials/none.yaml": cred("app-none", "HMAC-SHA256", "NONE", ""),
		// The script reads the body, so the flow decodes it.
		"apis/count.yaml": api("body.count", "online", "[POST]", scriptStep(`function main(c) { return {n: c.request.body === null ? 0 : Object.keys(c.request.body).length} }`)),
	})
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("fixture repository: %v\n%s", err, diags.Error())
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: &flow.Env{Client: &http.Client{}, DefaultTimeout: 5 * time.Second, MaxResponseBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	f := &bodyFixture{m: metrics.New()}
	f.h = New(func() *snapshot.Snapshot { return snap }, Options{Metrics: f.m})
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	f.app = &client.Client{BaseURL: f.srv.URL + "/api", Credential: client.Credential{AppID: "app-none", EncryptionType: "NONE", EncryptionKey: []byte(testKeys["APP_NONE"])}}
	return f
}

// slowBody opens a connection and sends the headers of a request whose
// Content-Length announces length bytes, then sent bytes of it: the rest
// never comes while the test looks.
func slowBody(t testing.TB, addr, path string, header http.Header, length, sent int) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, length)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.WriteString(strings.Repeat("x", sent))
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// readAnswer reads the answer on a connection whose body is still unsent;
// the deadline only stops a broken gateway from hanging the test.
func readAnswer(t testing.TB, conn net.Conn, br *bufio.Reader) *http.Response {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body is unsent: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestRefusedBeforeBody: what the request line and headers decide is
// answered before the body is read, so callers who would be refused anyway
// cannot make the gateway hold bodies (issue 16, item 3).
func TestRefusedBeforeBody(t *testing.T) {
	f := newBodyFixture(t, "  maxBodyBytes: 16777216\n")
	addr := f.srv.Listener.Addr().String()
	signed := func(api string) http.Header {
		req, err := f.app.Prepare("POST", api, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req.Header
	}
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"unknown app, unknown API", "/api/no.such/v1", http.Header{"Zt-App-Id": {"nobody"}}, 401},
		{"unknown app, known API", "/api/body.count/v1", http.Header{"Zt-App-Id": {"nobody"}}, 401},
		{"known app, stale timestamp", "/api/body.count/v1", func() http.Header {
			h := signed("body.count")
			h.Set("ZT-Timestamp", "1")
			return h
		}(), 401},
		{"known app, unknown API", "/api/no.such/v1", signed("no.such"), 404},
		{"not a route", "/elsewhere", nil, 404},
	}
	// Forty connections each, as in the flood that held 496 MB.
	const conns = 40
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for range conns {
				conn, br := slowBody(t, addr, tt.path, tt.header, 10380902, 4096)
				wg.Add(1)
				go func() {
					defer wg.Done()
					conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						errs <- fmt.Errorf("no answer while the body is unsent: %w", err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != tt.status {
						errs <- fmt.Errorf("HTTP %d, want %d", resp.StatusCode, tt.status)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
	if got := counterSum(t, f.m.BodyBytesInFlight); got != 0 {
		t.Errorf("body bytes in flight = %v, want 0: no refused request holds a body", got)
	}
}

// TestBodyBudget: the bytes of bodies held at once are bounded by
// apiPortal.maxBodyBytesInFlight; a body that does not fit is refused with
// the 503 envelope, counted, and the budget comes back when the holders
// finish (issue 16, item 3).
func TestBodyBudget(t *testing.T) {
	const maxBody = 1 << 20
	f := newBodyFixture(t, fmt.Sprintf("  maxBodyBytes: %d\n  maxBodyBytesInFlight: %d\n", maxBody, 2*maxBody))
	addr := f.srv.Listener.Addr().String()
	// Two valid callers whose bodies trickle in hold the whole budget.
	var slow []net.Conn
	var readers []*bufio.Reader
	for range 2 {
		req, err := f.app.Prepare("POST", "body.count", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, br := slowBody(t, addr, "/api/body.count/v1", req.Header, maxBody, 10)
		slow, readers = append(slow, conn), append(readers, br)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.h.bodyBytes.Load() != 2*maxBody {
		if time.Now().After(deadline) {
			t.Fatalf("the slow bodies hold %d bytes, want %d", f.h.bodyBytes.Load(), 2*maxBody)
		}
		runtime.Gosched()
	}
	if got := counterSum(t, f.m.BodyBytesInFlight); got != 2*maxBody {
		t.Errorf("databus_portal_body_bytes_in_flight = %v, want %d", got, 2*maxBody)
	}
	resp, err := f.app.Call(context.Background(), "body.count", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Envelope.Code != 503 || resp.Envelope.Message != MsgBusy || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the budget: HTTP %d %+v, want 503 %q with Retry-After", resp.StatusCode, resp.Envelope, MsgBusy)
	}
	if got := counterSum(t, f.m.Refusals.WithLabelValues(ReasonBudget)); got != 1 {
		t.Errorf("refusals{reason=%q} = %v, want 1", ReasonBudget, got)
	}
	// A chunked body (no length) is held as it arrives: refused too.
	req, err := f.app.Prepare("POST", "body.count", nil, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest("POST", req.URL, strings.NewReader(string(req.Body)))
	hr.Header = req.Header
	hr.ContentLength = -1
	hresp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != 503 {
		t.Errorf("chunked body over the budget: HTTP %d, want 503", hresp.StatusCode)
	}
	// The slow callers finish (their signature covers no body: 401); the
	// budget comes back and valid calls pass again.
	for i, conn := range slow {
		if _, err := conn.Write([]byte(strings.Repeat("y", maxBody-10))); err != nil {
			t.Fatal(err)
		}
		if r := readAnswer(t, conn, readers[i]); r.StatusCode != 401 {
			t.Errorf("slow caller %d: HTTP %d, want 401", i, r.StatusCode)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for f.h.bodyBytes.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d body bytes still held after the slow callers finished", f.h.bodyBytes.Load())
		}
		runtime.Gosched()
	}
	resp, err = f.app.Call(context.Background(), "body.count", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("after the budget came back: HTTP %d %+v", resp.StatusCode, resp.Envelope)
	}
	resp2, err := f.app.Call(context.Background(), "body.count", []byte(strings.Repeat(" ", maxBody-2)+"{}"))
	if err != nil {
		t.Fatal(err)
	}
	if resp2.StatusCode != 200 {
		t.Fatalf("a body of maxBodyBytes: HTTP %d %+v", resp2.StatusCode, resp2.Envelope)
	}
}

// TestJSONAmplification: bodies whose decoded form would be many times
// their size are refused before anything decodes them, and the memory a
// burst of them allocates stays within a small multiple of what was sent
// (issue 16, item 4).
func TestJSONAmplification(t *testing.T) {
	f := newBodyFixture(t, "  maxBodyBytes: 6291456\n")
	const concurrent = 3
	body := []byte("[" + strings.Repeat(`{"a":[]},`, 250000) + `{"a":[]}]`)
	reqs := make([]*client.Request, concurrent)
	for i := range reqs {
		req, err := f.app.Prepare("POST", "body.count", nil, body)
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = req
	}
	sent := uint64(concurrent * len(body))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	resps := make([]*client.Response, concurrent)
	errs := make([]error, concurrent)
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resps[i], errs[i] = f.app.Send(context.Background(), reqs[i])
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	// Everything allocated meanwhile (client and server) bounds the peak.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*sent {
		t.Errorf("%d requests of %d bytes allocated %d bytes (%.1f× what was sent), want under 8×", concurrent, len(body), alloc, float64(alloc)/float64(sent))
	} else {
		t.Logf("%d requests of %d bytes allocated %.1f× what was sent", concurrent, len(body), float64(alloc)/float64(sent))
	}
	for i, resp := range resps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if resp.StatusCode != 413 || resp.Envelope.Code != 413 || !strings.HasPrefix(resp.Envelope.Message, MsgJSONTooMany) {
			t.Fatalf("HTTP %d %+v, want 413 %q", resp.StatusCode, resp.Envelope, MsgJSONTooMany)
		}
	}
	if got := counterSum(t, f.m.Refusals.WithLabelValues(ReasonJSON)); got != concurrent {
		t.Errorf("refusals{reason=%q} = %v, want %d", ReasonJSON, got, concurrent)
	}

	deep := strings.Repeat("[", 65) + strings.Repeat("]", 65)
	resp, err := f.app.Call(context.Background(), "body.count", []byte(deep))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Envelope.Message, MsgJSONTooDeep) {
		t.Errorf("65 levels deep: HTTP %d %+v, want 400 %q", resp.StatusCode, resp.Envelope, MsgJSONTooDeep)
	}
	ok := `{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `,"b":"x"}`
	if resp, err = f.app.Call(context.Background(), "body.count", []byte(ok)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(resp.Envelope.Response) != `{"n":2}` {
		t.Errorf("64 levels deep: HTTP %d %+v, want 200 {\"n\":2}", resp.StatusCode, resp.Envelope)
	}
}

// TestJSONBounds checks the pre-scan's count and depth against
// encoding/json's own tokens.
func TestJSONBounds(t *testing.T) {
	for _, doc := range []string{
		`1`, `"s"`, `null`, `[]`, `{}`, `[1,2,3]`, `{"a":1,"b":[true,false,null]}`,
		`{"k\"ey":"v\\","x":{"y":{"z":[-1.5e3,"\u00e9",{}]}}}`,
		` [ { "a" : [ ] } , { "a" : [ ] } ] `, `[[[[[]]]]]`, `{"a":{"a":{"a":"]}"}}}`,
	} {
		values, depth := referenceBounds(t, doc)
		if err := jsonBounds([]byte(doc), depth, values); err != nil {
			t.Errorf("%s: %v within depth %d and %d values", doc, err, depth, values)
		}
		if err := jsonBounds([]byte(doc), depth, values-1); err != errJSONValues {
			t.Errorf("%s: %v with %d values allowed, want %v", doc, err, values-1, errJSONValues)
		}
		if depth > 0 {
			if err := jsonBounds([]byte(doc), depth-1, values); err != errJSONDepth {
				t.Errorf("%s: %v with depth %d allowed, want %v", doc, err, depth-1, errJSONDepth)
			}
		}
	}
}

// referenceBounds counts values (keys excluded) and the deepest nesting
// with encoding/json's tokenizer.
func referenceBounds(t *testing.T, doc string) (values, maxDepth int) {
	dec := json.NewDecoder(strings.NewReader(doc))
	depth := 0
	var inObject []bool
	key := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return values, maxDepth
		}
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if key {
				t.Fatal("unreachable")
			}
			values++
			depth++
			maxDepth = max(maxDepth, depth)
			inObject = append(inObject, tok == json.Delim('{'))
			key = tok == json.Delim('{')
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			inObject = inObject[:depth]
		default:
			if !key {
				values++
			}
		}
		// After a key comes its value; after a value in an object, a key.
		if depth > 0 && inObject[depth-1] {
			key = !key
			if tok == json.Delim('}') || tok == json.Delim(']') {
				key = true
			}
		} else {
			key = false
		}
	}
}

func BenchmarkJSONBounds(b *testing.B) {
	body := []byte("[" + strings.Repeat(`{"orderNo":"SO1","qty":12,"tags":["a","b"],"price":1.5},`, 20000) + `{}]`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := jsonBounds(body, 64, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONValid(b *testing.B) {
	body := []byte("[" + strings.Repeat(`{"orderNo":"SO1","qty":12,"tags":["a","b"],"price":1.5},`, 20000) + `{}]`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("invalid")
		}
	}
}

// TestConnectionCap: past the cap, a connection is answered 503 with the
// envelope and counted; a slot frees when a connection closes (issue 16,
// item 3).
func TestConnectionCap(t *testing.T) {
	f := newBodyFixture(t, "")
	m := f.m
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(LimitListener(ln, 2, m))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	waitGauge := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for counterSum(t, m.Connections) != want {
			if time.Now().After(deadline) {
				t.Fatalf("databus_portal_connections = %v, want %v", counterSum(t, m.Connections), want)
			}
			runtime.Gosched()
		}
	}
	// Two connections that send nothing hold both slots.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	waitGauge(2)
	get := func() *http.Response {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("GET /api/body.count/v1 HTTP/1.1\r\nHost: gateway\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil || env.Code != resp.StatusCode || env.TraceID == "" {
			t.Fatalf("answer is not an envelope (%v): %s", err, body)
		}
		return resp
	}
	if r := get(); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: HTTP %d, want 503 with Retry-After", r.StatusCode)
	}
	if got := counterSum(t, m.ConnectionsRefused.WithLabelValues("answered")); got != 1 {
		t.Errorf(`databus_portal_connections_refused_total{how="answered"} = %v, want 1`, got)
	}
	held[0].Close()
	waitGauge(1)
	// Under the cap again: the portal itself answers (unsigned: 401).
	if r := get(); r.StatusCode != 401 {
		t.Fatalf("under the cap: HTTP %d, want 401 from the portal", r.StatusCode)
	}
}
