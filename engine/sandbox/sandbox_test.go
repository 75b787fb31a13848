package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/rpc/rpctest"
)

const base = "/admin-api/databus/api/portal"

// repo writes a config repository: one credential with an in-repo test
// key, a policy of 2 a minute, and the APIs given.
func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\n",
		"keys/app.key": "0123456789abcdef",
		"credentials/app.yaml": `apiVersion: databus/v1
kind: Credential
appId: app
enabled: true
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'file:keys/app.key'}
`,
		"policies/two.yaml": `apiVersion: databus/v1
kind: RateLimitPolicy
name: two
limit: 2
windowSeconds: 60
keyTemplate: '${apiCode}:${appId}'
`,
	}
	for k, v := range files {
		all[k] = v
	}
	for name, body := range all {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const httpAPI = `apiVersion: databus/v1
kind: Api
code: t.order
version: v1
status: online
methods: [POST]
policies: {rateLimit: two}
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http:
      method: POST
      url: 'https://orders.example.com/orders/${.request.body.no}'
      headers: {X-Trace-Id: '${.traceId}'}
      timeout: 300ms
    transforms:
      request: '{no: .request.body.no, qty: 2}'
      response: '{id: .body.id, status: .status}'
  - id: notify
    type: http
    when: '.steps.create.id == "big"'
    http: {method: POST, service: {server: alerts, name: notify}, timeout: 300ms}
  - {id: end, type: end}
`

func open(t *testing.T, dir string) *Sandbox {
	t.Helper()
	sb, res, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sb == nil {
		t.Fatalf("refused: %v", res.Diagnostics)
	}
	t.Cleanup(sb.Close)
	return sb
}

// signed builds a request of api as a third party signs and encrypts it.
func signed(t *testing.T, ss *Session, api, body string) *http.Request {
	t.Helper()
	cred := ss.Credential("app")
	c := client.Client{BaseURL: base, Credential: client.Credential{AppID: "app", SignatureType: cred.SignatureType,
		EncryptionType: cred.EncryptionType, EncryptionKey: []byte("0123456789abcdef")}}
	req, err := c.Prepare(http.MethodPost, api, nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
	r.Header = req.Header
	return r
}

func decode(t *testing.T, ss *Session, x *Exchange) client.Envelope {
	t.Helper()
	c := client.Client{Credential: client.Credential{AppID: "app", EncryptionType: ss.Credential("app").EncryptionType, EncryptionKey: []byte("0123456789abcdef")}}
	resp, err := c.Decode(x.Status, x.Header, x.Body)
	if err != nil {
		t.Fatalf("decode %d %s: %v", x.Status, x.Body, err)
	}
	return resp.Envelope
}

// TestSessionStubsHTTPAndServices runs a signed, encrypted request whose
// flow calls an https URL and a registry service: both reach the stub
// server on loopback, which records what it received and answers what the
// Responder says; the envelope carries the stubbed answers.
func TestSessionStubsHTTPAndServices(t *testing.T) {
	sb := open(t, repo(t, map[string]string{"apis/order.yaml": httpAPI}))
	ss := sb.Session(SessionOptions{
		Services: []registry.Service{{ServerName: "alerts", ServiceName: "notify", URI: "/hooks/notify"}},
		Responder: ResponderFunc(func(_ context.Context, c *Call) Answer {
			switch c.Step {
			case "create":
				return Answer{Status: 201, Body: []byte(`{"id":"big"}`)}
			case "notify":
				return Answer{Body: []byte(`{"sent":true}`)}
			}
			return Answer{Status: 500}
		}),
	})
	x := ss.Do(signed(t, ss, "t.order:v1", `{"no":"A-1"}`))
	env := decode(t, ss, x)
	if env.Code != 200 {
		t.Fatalf("envelope %+v", env)
	}
	if string(env.Response) != `{"sent":true}` {
		t.Errorf("response %s, want the notify stub's body", env.Response)
	}
	if len(x.Calls) != 2 {
		t.Fatalf("calls %+v, want create and notify", x.Calls)
	}
	c := x.Calls[0]
	if c.Kind != KindHTTP || c.Method != "POST" || c.URL != "https://orders.example.com/orders/A-1" {
		t.Errorf("create call %+v", c)
	}
	var sent map[string]any
	if err := json.Unmarshal(c.Body, &sent); err != nil || sent["qty"] != 2.0 {
		t.Errorf("create received %s (%v), want the request transform's body", c.Body, err)
	}
	if c.Header.Get("X-Trace-Id") == "" || c.Header.Get(tokenHeader) != "" {
		t.Errorf("create headers %v: want X-Trace-Id, not the sandbox's token", c.Header)
	}
	n := x.Calls[1]
	if n.Kind != KindService || n.Server != "ALERTS" || n.Service != "notify" || !strings.HasSuffix(n.URL, "/hooks/notify") {
		t.Errorf("notify call %+v", n)
	}
	if x.Record == nil || x.Record.AppID != "app" || len(x.Record.StepResults) != 4 {
		t.Fatalf("record %+v", x.Record)
	}
}

// TestSessionFaults: a stub that hangs makes the step time out, a reset
// makes it fail, a delay within the timeout answers; a service the
// session's registry lacks is not found; a call with no Responder is
// answered StatusNoStub and still recorded.
func TestSessionFaults(t *testing.T) {
	sb := open(t, repo(t, map[string]string{"apis/order.yaml": httpAPI}))
	cases := []struct {
		name string
		a    Answer
		code int
		msg  string
	}{
		{"hang", Answer{Hang: true}, 504, `step "create" timed out after 300ms`},
		{"reset", Answer{Reset: true}, 502, `step "create" failed`},
		{"delay", Answer{Delay: 20 * time.Millisecond, Body: []byte(`{"id":"small"}`)}, 200, "OK"},
		{"status", Answer{Status: 503}, 502, "upstream answered HTTP 503"},
		{"unknown service", Answer{Body: []byte(`{"id":"big"}`)}, 502, `service "notify" of server "ALERTS"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ss := sb.Session(SessionOptions{Responder: ResponderFunc(func(context.Context, *Call) Answer { return tc.a })})
			env := decode(t, ss, ss.Do(signed(t, ss, "t.order", `{"no":"A-1"}`)))
			if env.Code != tc.code || !strings.Contains(env.Message, tc.msg) {
				t.Errorf("envelope %d %q, want %d containing %q", env.Code, env.Message, tc.code, tc.msg)
			}
		})
	}
	ss := sb.Session(SessionOptions{})
	x := ss.Do(signed(t, ss, "t.order", `{"no":"A-1"}`))
	if env := decode(t, ss, x); env.Code != 502 || !strings.Contains(env.Message, "599") || len(x.Calls) != 1 {
		t.Errorf("no responder: %+v, calls %d", env, len(x.Calls))
	}
}

// TestSessionsHaveTheirOwnStores: the real chain refuses a replayed nonce
// and the third call within the policy's limit of 2, and a second session
// starts afresh.
func TestSessionsHaveTheirOwnStores(t *testing.T) {
	sb := open(t, repo(t, map[string]string{"apis/order.yaml": httpAPI}))
	ok := ResponderFunc(func(context.Context, *Call) Answer { return Answer{Body: []byte(`{"id":"x"}`)} })
	a := sb.Session(SessionOptions{Responder: ok})
	r := signed(t, a, "t.order", `{"no":"A-1"}`)
	body, _ := io.ReadAll(r.Body)
	again := r.Clone(context.Background())
	r.Body, again.Body = io.NopCloser(bytes.NewReader(body)), io.NopCloser(bytes.NewReader(body))
	if env := decode(t, a, a.Do(r)); env.Code != 200 {
		t.Fatalf("first call %+v", env)
	}
	if x := a.Do(again); x.Status != 401 || x.Record.ErrorCode != "replay" {
		t.Fatalf("same nonce again: %d %s", x.Status, x.Body)
	}
	a.Do(signed(t, a, "t.order", `{"no":"A-2"}`))
	if x := a.Do(signed(t, a, "t.order", `{"no":"A-3"}`)); x.Status != 429 {
		t.Fatalf("third call: %d %s, want 429", x.Status, x.Body)
	}
	b := sb.Session(SessionOptions{Responder: ok})
	if env := decode(t, b, b.Do(signed(t, b, "t.order", `{"no":"A-4"}`))); env.Code != 200 {
		t.Fatalf("a new session: %+v", env)
	}
}

// TestTrustedSession: recorded traffic replays by appId alone, in plain
// text, while the credential's own rules (enabled, allowed) still apply;
// an untrusted session refuses the same request.
func TestTrustedSession(t *testing.T) {
	sb := open(t, repo(t, map[string]string{"apis/order.yaml": httpAPI}))
	plain := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, base+"/t.order/v1", strings.NewReader(`{"no":"A-1"}`))
		r.Header.Set("ZT-App-Id", "app")
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	ok := ResponderFunc(func(context.Context, *Call) Answer { return Answer{Body: []byte(`{"id":"x"}`)} })
	tr := sb.Session(SessionOptions{Responder: ok, Trusted: true})
	x := tr.Do(plain())
	var env client.Envelope
	if err := json.Unmarshal(x.Body, &env); err != nil || env.Code != 200 || string(env.Response) != `{"id":"x","status":200}` {
		t.Fatalf("trusted: %d %s", x.Status, x.Body)
	}
	r := plain()
	r.Header.Set("ZT-App-Id", "nobody")
	if x := tr.Do(r); x.Status != 401 {
		t.Errorf("trusted, unknown appId: %d", x.Status)
	}
	if x := sb.Session(SessionOptions{Responder: ok}).Do(plain()); x.Status != 401 {
		t.Errorf("untrusted, unsigned: %d %s", x.Status, x.Body)
	}
}

// TestRPCStub: an rpc step with a descriptor set calls the gRPC stub
// server, which decodes the message to JSON for the Responder and encodes
// its JSON answer; a gRPC status code answers as the real upstream's.
func TestRPCStub(t *testing.T) {
	dir := repo(t, map[string]string{
		"protos/stock.pb": string(rpctest.DescriptorSet(t, rpctest.SchemaV1)),
		"apis/stock.yaml": `apiVersion: databus/v1
kind: Api
code: t.stock
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: stock
    type: rpc
    rpc: {target: 'stock.internal:9090', method: test.v1.Stock/Get, descriptorSet: protos/stock.pb, timeout: 500ms}
    transforms: {request: '{sku: .request.body.sku, qty: 3}'}
  - {id: end, type: end}
`})
	sb := open(t, dir)
	var code int
	ss := sb.Session(SessionOptions{Responder: ResponderFunc(func(_ context.Context, c *Call) Answer {
		return Answer{Code: code, Body: []byte(`{"sku":"A1","available":21}`)}
	})})
	x := ss.Do(signed(t, ss, "t.stock", `{"sku":"A1"}`))
	env := decode(t, ss, x)
	if env.Code != 200 || !strings.Contains(string(env.Response), `"available":21`) {
		t.Fatalf("envelope %+v", env)
	}
	c := x.Calls[0]
	if c.Kind != KindRPC || c.Step != "stock" || c.Method != "/test.v1.Stock/Get" || c.URL != "stock.internal:9090" {
		t.Errorf("call %+v", c)
	}
	if !strings.Contains(string(c.Body), `"qty":3`) {
		t.Errorf("the stub received %s, want the transformed message", c.Body)
	}
	code = 5 // NotFound
	if env := decode(t, ss, ss.Do(signed(t, ss, "t.stock", `{"sku":"A1"}`))); env.Code == 200 || !strings.Contains(env.Message, "NotFound") {
		t.Errorf("NotFound: %+v", env)
	}
}

// TestOpenRefused: a repository the gate refuses gives its findings and
// no Sandbox.
func TestOpenRefused(t *testing.T) {
	dir := repo(t, map[string]string{"apis/order.yaml": strings.Replace(httpAPI, "rateLimit: two", "rateLimit: missing", 1)})
	sb, res, err := Open(context.Background(), dir, Options{})
	if err != nil || sb != nil {
		t.Fatalf("sandbox %v err %v", sb, err)
	}
	if !res.Diagnostics.HasErrors() || !strings.Contains(res.Diagnostics.Error(), "apis/order.yaml:7") {
		t.Fatalf("findings %v", res.Diagnostics)
	}
}

// TestSandboxReadsNoSecretOutsideTheRepository: a change under review
// cannot make the machine that checks it read its secrets. A credential
// whose key is an environment variable is known but keyless in a sandbox
// (500, the key was not read), and works with keys the session gives; the
// internal JWT of an anonymous caller is signed with a key of the sandbox's
// own, not the repository's.
func TestSandboxReadsNoSecretOutsideTheRepository(t *testing.T) {
	const envKey, jwtKey = "fedcba9876543210", "the-jwt-key-of-the-ci-machine-0123456789"
	t.Setenv("DATABUS_SANDBOX_TEST_KEY", envKey)
	t.Setenv("DATABUS_SANDBOX_TEST_JWT", jwtKey)
	dir := repo(t, map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security:\n    jwt: {key: {secretRef: 'env:DATABUS_SANDBOX_TEST_JWT'}}\n",
		"credentials/prod.yaml": `apiVersion: databus/v1
kind: Credential
appId: prod
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:DATABUS_SANDBOX_TEST_KEY'}
allowAnonymous: true
anonymousUser: {id: "7", name: bot}
`,
		"apis/order.yaml": httpAPI,
	})
	sb := open(t, dir)
	var auth string
	ok := ResponderFunc(func(_ context.Context, c *Call) Answer {
		auth = c.Header.Get("Authorization")
		return Answer{Body: []byte(`{"id":"x"}`)}
	})
	sign := func(ss *Session, key string) *http.Request {
		c := client.Client{BaseURL: base, Credential: client.Credential{AppID: "prod", EncryptionKey: []byte(key)}}
		req, err := c.Prepare(http.MethodPost, "t.order", nil, []byte(`{"no":"A-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
		r.Header = req.Header
		return r
	}
	ss := sb.Session(SessionOptions{Responder: ok})
	if x := ss.Do(sign(ss, envKey)); x.Status != 500 || x.Record.ErrorCode != "no_key" {
		t.Fatalf("signed with the environment's key: %d %s, want 500 no_key (the key is not read)", x.Status, x.Body)
	}
	const testKey = "test-key-0000000"
	ss = sb.Session(SessionOptions{Responder: ok, Keys: map[string]Keys{"prod": {Encryption: []byte(testKey)}}})
	c := client.Client{Credential: client.Credential{AppID: "prod", EncryptionKey: []byte(testKey)}}
	x := ss.Do(sign(ss, testKey))
	resp, err := c.Decode(x.Status, x.Header, x.Body)
	if err != nil || resp.Envelope.Code != 200 {
		t.Fatalf("signed with the session's key: %d %s (%v)", x.Status, x.Body, err)
	}
	tok, ok2 := strings.CutPrefix(auth, "Bearer ")
	if !ok2 {
		t.Fatalf("the upstream got Authorization %q, want the anonymous user's JWT", auth)
	}
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(jwtKey), nil }); err == nil {
		t.Fatal("the JWT a sandboxed upstream received verifies with the machine's key")
	}
}

// TestSiteSignatureIsAHookCall: the signature hook a site: step asks is
// a hook call of the registry service, not the step's own call.
func TestSiteSignatureIsAHookCall(t *testing.T) {
	dir := repo(t, map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\nhooks: {server: fateflow, partyId: \"9999\"}\n",
		"apis/site.yaml": `apiVersion: databus/v1
kind: Api
code: t.site
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: up
    type: http
    http: {method: POST, url: 'http://other-site.example/x', site: "10000", timeout: 300ms}
  - {id: end, type: end}
`})
	sb := open(t, dir)
	ss := sb.Session(SessionOptions{
		Services: []registry.Service{{ServerName: "fateflow", ServiceName: "signature"}},
		Responder: ResponderFunc(func(_ context.Context, c *Call) Answer {
			if c.Kind == KindHook {
				return Answer{Body: []byte(`{"code":0,"site_signature":"sig-1"}`)}
			}
			return Answer{Body: []byte(`{"signed":"` + c.Header.Get("Site-Signature") + `"}`)}
		}),
	})
	x := ss.Do(signed(t, ss, "t.site", `{"a":1}`))
	if env := decode(t, ss, x); env.Code != 200 || string(env.Response) != `{"signed":"sig-1"}` {
		t.Fatalf("envelope %+v", env)
	}
	if len(x.Calls) != 2 || x.Calls[0].Kind != KindHook || x.Calls[0].Step != "" || x.Calls[1].Step != "up" {
		t.Fatalf("calls %+v, want the hook's, then the step's", x.Calls)
	}
}
