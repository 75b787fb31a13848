package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// secureFixture is a gateway with the security chain on, served over real
// loopback HTTP, and an upstream that records what it received.
type secureFixture struct {
	srv      *httptest.Server
	base     string
	upstream *httptest.Server
	lastAuth atomic.Value // Authorization header the upstream saw
	now      atomic.Int64 // gateway clock, unix ms
}

const secureSettings = `apiPortal:
  basePath: /api
  allowedIps: [127.0.0.0/8, "::1"]
  deniedIps: [127.0.0.2]
  security:
    enabled: true
    allowedClockSkewSeconds: 300
    nonceTtlSeconds: 600
    jwt: {key: {secretRef: 'env:DATABUS_TEST_JWT_KEY'}, ttl: 1m}
`

func cred(appID, sig, enc, extra string) string {
	s := "apiVersion: databus/v1\nkind: Credential\nappId: " + appID + "\nsignatureType: " + sig + "\nencryptionType: " + enc + "\n"
	if enc != "NONE" || sig == "HMAC-SHA256" {
		s += "encryptionKey: {secretRef: 'env:DATABUS_TEST_KEY_" + strings.ToUpper(strings.ReplaceAll(appID, "-", "_")) + "'}\n"
	}
	return s + extra
}

var testKeys = map[string]string{
	"APP_AES":    "0123456789abcdef",
	"APP_DES":    "des-key8-extra",
	"APP_GCM":    "0123456789abcdef0123456789abcdef",
	"APP_MD5":    "fedcba9876543210",
	"APP_NONE":   "hmac-key-for-none",
	"APP_TENANT": "tenant-key-16byt",
	"APP_ANON":   "anon-key-16-byte",
	"APP_OFF":    "disabled-key-16b",
	"APP_IP":     "ip-limited-key16",
	"APP_OPEN":   "open-key-16-byte",
}

func newSecureFixture(t testing.TB) *secureFixture {
	t.Helper()
	return newSecureFixtureWith(t, Options{})
}

// newSecureFixtureWith is newSecureFixture with the handler's options
// (its clock is the fixture's).
func newSecureFixtureWith(t testing.TB, o Options) *secureFixture {
	t.Helper()
	for k, v := range testKeys {
		t.Setenv("DATABUS_TEST_KEY_"+k, v)
	}
	t.Setenv("DATABUS_TEST_JWT_KEY", "jwt-signing-key")
	f := &secureFixture{}
	f.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.lastAuth.Store(r.Header.Get("Authorization"))
		if r.URL.Path == "/big" { // more than the fixture's maxResponseBytes
			w.Header().Set("Content-Type", "text/csv")
			w.Write(bytes.Repeat([]byte("a,b\n"), 600<<10))
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"echo":%s,"q":%q}`, orNull(body), r.URL.RawQuery)
	}))
	t.Cleanup(f.upstream.Close)
	echo := "  - id: up\n    type: http\n    http: {method: POST, url: '" + f.upstream.URL + "/echo'}\n"
	dir := testRepo(t, map[string]string{
		"databus.yaml":            secureSettings,
		"policies/p.yaml":         policy,
		"credentials/aes.yaml":    cred("app-aes", "HMAC-SHA256", "AES", ""),
		"credentials/des.yaml":    cred("app-des", "MD5", "DES", ""),
		"credentials/gcm.yaml":    cred("app-gcm", "HMAC-SHA256", "AES-GCM", ""),
		"credentials/md5.yaml":    cred("app-md5", "SHA256", "AES", ""),
		"credentials/none.yaml":   cred("app-none", "HMAC-SHA256", "NONE", ""),
		"credentials/tenant.yaml": cred("app-tenant", "HMAC-SHA256", "AES", "tenantId: \"7\"\n"),
		"credentials/anon.yaml":   cred("app-anon", "HMAC-SHA256", "AES", "allowAnonymous: true\nanonymousUser: {id: \"42\", name: bot}\n"),
		"credentials/off.yaml":    cred("app-off", "HMAC-SHA256", "AES", "enabled: false\n"),
		"credentials/ip.yaml":     cred("app-ip", "HMAC-SHA256", "AES", "allowedIps: [10.0.0.0/8]\n"),
		"credentials/nokey.yaml":  "apiVersion: databus/v1\nkind: Credential\nappId: app-nokey\nencryptionKey: {secretRef: 'env:DATABUS_TEST_UNSET_KEY'}\n",
		"credentials/badlen.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-badlen\nencryptionKey: {secretRef: 'env:DATABUS_TEST_KEY_APP_DES'}\n",
		"credentials/open.yaml":   cred("app-open", "HMAC-SHA256", "AES", ""),
		"apis/echo.yaml":          api("sec.echo", "online", "[POST, GET]", echo),
		"apis/restricted.yaml":    strings.Replace(api("sec.only", "online", "[POST]", echo), "policies:", "auth: {credentials: [app-aes]}\npolicies:", 1),
		"apis/plain.yaml":         api("sec.plain", "online", "[POST]", ""),
		"apis/big.yaml":           api("sec.big", "online", "[GET]", "  - id: dl\n    type: http\n    http: {url: '"+f.upstream.URL+"/big', stream: true}\n"),
		"apis/typed.yaml":         strings.Replace(api("sec.typed", "online", "[POST]", scriptStep(`function main(c) { return {n: Object.keys(c.request.body).length} }`)), "steps:", "input: {type: object}\nsteps:", 1),
		"apis/script.yaml":        api("sec.who", "online", "[POST]", scriptStep(`function main(c) { return {app: c.request.appId, tenant: c.request.tenantId, user: c.request.user} }`)),
	})
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("fixture repository: %v\n%s", err, diags.Error())
	}
	env := &flow.Env{Client: &http.Client{}, DefaultTimeout: 5 * time.Second, MaxResponseBytes: 1 << 20}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	f.now.Store(time.Now().UnixMilli())
	o.Now = func() time.Time { return time.UnixMilli(f.now.Load()) }
	h := New(func() *snapshot.Snapshot { return snap }, o)
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	f.base = f.srv.URL + "/api"
	return f
}

func orNull(b []byte) string {
	if len(b) == 0 {
		return "null"
	}
	if json.Valid(b) {
		return string(b)
	}
	q, _ := json.Marshal(string(b))
	return string(q)
}

func (f *secureFixture) client(appID string) *client.Client {
	key := []byte(testKeys[strings.ToUpper(strings.ReplaceAll(appID, "-", "_"))])
	c := client.Credential{AppID: appID, EncryptionKey: key}
	switch appID {
	case "app-des":
		c.SignatureType, c.EncryptionType = "MD5", "DES"
	case "app-gcm":
		c.EncryptionType = "AES-GCM"
	case "app-md5":
		c.SignatureType = "SHA256"
	case "app-none":
		c.EncryptionType = "NONE"
	}
	return &client.Client{BaseURL: f.base, Credential: c, Now: func() time.Time { return time.UnixMilli(f.now.Load()) }}
}

// send prepares a request with c, lets mutate change it, and sends it.
func (f *secureFixture) send(t *testing.T, c *client.Client, method, api string, q url.Values, body string, mutate func(*client.Request)) *client.Response {
	t.Helper()
	req, err := c.Prepare(method, api, q, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := c.Send(context.Background(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, api, err)
	}
	return resp
}

func expect(t *testing.T, name string, resp *client.Response, status int, message string, encrypted bool) {
	t.Helper()
	if resp.StatusCode != status || resp.Envelope.Code != status || !strings.HasPrefix(resp.Envelope.Message, message) {
		t.Errorf("%s: got %d %q (envelope code %d), want %d %q", name, resp.StatusCode, resp.Envelope.Message, resp.Envelope.Code, status, message)
	}
	if resp.Encrypted != encrypted {
		t.Errorf("%s: encrypted answer = %v, want %v", name, resp.Encrypted, encrypted)
	}
	if resp.Envelope.TraceID == "" {
		t.Errorf("%s: no trace id", name)
	}
}

// TestEncryptedStreamTooLarge: a stream larger than maxResponseBytes passes
// through for a credential that does not encrypt answers; for one that does,
// the refusal names response encryption as the cause (no transform is
// involved).
func TestEncryptedStreamTooLarge(t *testing.T) {
	f := newSecureFixture(t)
	resp := f.send(t, f.client("app-aes"), "GET", "sec.big", nil, "", nil)
	expect(t, "encrypting credential", resp, http.StatusBadGateway, "flow output could not be encoded: the streamed answer is larger than 1048576 bytes (gateway.webClient.maxResponseBytes) and credential app-aes encrypts answers", true)
	if strings.Contains(resp.Envelope.Message, "transform") {
		t.Errorf("the message blames a transform: %q", resp.Envelope.Message)
	}
	req, err := f.client("app-none").Prepare("GET", "sec.big", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(req.Method, req.URL, nil)
	hr.Header = req.Header
	hresp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK || n != 4*600<<10 {
		t.Errorf("non-encrypting credential: %d, %d bytes streamed", hresp.StatusCode, n)
	}
}

func TestSecurityAlgorithmsEndToEnd(t *testing.T) {
	f := newSecureFixture(t)
	for _, app := range []string{"app-aes", "app-des", "app-gcm", "app-md5", "app-none"} {
		t.Run(app, func(t *testing.T) {
			resp := f.send(t, f.client(app), "POST", "sec.echo", url.Values{"page": {"1"}, "tag": {"a", "b c"}}, `{"orderNo":"SO1","name":"张三"}`, nil)
			expect(t, app, resp, 200, MsgOK, app != "app-none")
			var out struct {
				Echo map[string]string `json:"echo"`
				Q    string            `json:"q"`
			}
			if err := json.Unmarshal(resp.Envelope.Response, &out); err != nil {
				t.Fatal(err)
			}
			// The upstream receives the decrypted plaintext.
			if out.Echo["orderNo"] != "SO1" || out.Echo["name"] != "张三" {
				t.Errorf("upstream got %v", out.Echo)
			}
		})
	}
}

// TestErrorTable shows every refusal of DESIGN.md section 4's table.
func TestErrorTable(t *testing.T) {
	f := newSecureFixture(t)
	aes := f.client("app-aes")
	body := `{"orderNo":"SO1"}`
	setHeader := func(k, v string) func(*client.Request) {
		return func(r *client.Request) { r.Header.Set(k, v) }
	}
	tests := []struct {
		name      string
		c         *client.Client
		method    string
		api       string
		mutate    func(*client.Request)
		status    int
		message   string
		encrypted bool
	}{
		{"ok", aes, "POST", "sec.echo", nil, 200, MsgOK, true},
		{"unknown app", aes, "POST", "sec.echo", setHeader("ZT-App-Id", "nobody"), 401, MsgBadCredential, false},
		{"missing app", aes, "POST", "sec.echo", func(r *client.Request) { r.Header.Del("ZT-App-Id") }, 401, MsgBadCredential, false},
		{"disabled app", f.client("app-off"), "POST", "sec.echo", nil, 401, MsgBadCredential, false},
		{"credential IP allow list", f.client("app-ip"), "POST", "sec.echo", nil, 403, MsgIPDenied, false},
		{"no key", &client.Client{BaseURL: f.base, Credential: client.Credential{AppID: "app-nokey", EncryptionKey: []byte("0123456789abcdef")}}, "POST", "sec.echo", nil, 500, MsgNoKey, false},
		{"key of the wrong length", &client.Client{BaseURL: f.base, Credential: client.Credential{AppID: "app-badlen", EncryptionKey: []byte("0123456789abcdef")}}, "POST", "sec.echo", nil, 500, MsgNoKey, false},
		{"timestamp too old", aes, "POST", "sec.echo", setHeader("ZT-Timestamp", fmt.Sprint(f.now.Load()-301_000)), 401, "请求到达时间超出 300s", true},
		{"timestamp in the future", aes, "POST", "sec.echo", setHeader("ZT-Timestamp", fmt.Sprint(f.now.Load()+301_000)), 401, "请求到达时间超出 300s", true},
		{"timestamp in seconds", aes, "POST", "sec.echo", setHeader("ZT-Timestamp", fmt.Sprint(f.now.Load()/1000)), 401, "请求到达时间超出 300s", true},
		{"timestamp not a number", aes, "POST", "sec.echo", setHeader("ZT-Timestamp", "yesterday"), 401, "请求到达时间超出 300s", true},
		{"nonce too short", aes, "POST", "sec.echo", setHeader("ZT-Nonce", "1234567"), 401, MsgReplay, true},
		{"nonce missing", aes, "POST", "sec.echo", func(r *client.Request) { r.Header.Del("ZT-Nonce") }, 401, MsgReplay, true},
		{"body not base64", aes, "POST", "sec.echo", func(r *client.Request) { r.Body = []byte("%%%") }, 400, MsgBadCiphertext, true},
		{"body plaintext", aes, "POST", "sec.echo", func(r *client.Request) { r.Body = []byte(body) }, 400, MsgBadCiphertext, true},
		{"bad padding", aes, "POST", "sec.echo", func(r *client.Request) { r.Body = []byte("AAAAAAAAAAAAAAAAAAAAAA==") }, 400, MsgBadCiphertext, true},
		{"wrong signature", aes, "POST", "sec.echo", setHeader("ZT-Signature", strings.Repeat("0", 64)), 401, MsgBadSignature, true},
		{"signature wrong length", aes, "POST", "sec.echo", setHeader("ZT-Signature", "abc"), 401, MsgBadSignature, true},
		{"signature missing", aes, "POST", "sec.echo", func(r *client.Request) { r.Header.Del("ZT-Signature") }, 401, MsgBadSignature, true},
		{"repeated signature header", aes, "POST", "sec.echo", func(r *client.Request) { r.Header.Add("ZT-Signature", r.Header.Get("ZT-Signature")) }, 401, MsgBadSignature, true},
		{"API not callable by this app", f.client("app-open"), "POST", "sec.only", nil, 403, MsgForbiddenAPI, true},
		{"API missing", aes, "POST", "sec.nothing", nil, 404, MsgNotFound, true},
		{"method not allowed", aes, "PUT", "sec.echo", nil, 405, MsgMethod, true},
		{"tenant conflicts with the pinned one", f.client("app-tenant"), "POST", "sec.echo", setHeader("ZT-Tenant-Id", "8"), 403, MsgTenantMismatch, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.send(t, tt.c, tt.method, tt.api, nil, body, tt.mutate)
			expect(t, tt.name, resp, tt.status, tt.message, tt.encrypted)
		})
	}
}

func TestIPRefusedBeforeAnything(t *testing.T) {
	f := newSecureFixture(t)
	req, _ := f.client("app-aes").Prepare("POST", "sec.echo", nil, []byte(`{}`))
	hr := httptest.NewRequest("POST", "/api/sec.echo/v1", bytes.NewReader(req.Body))
	hr.Header = req.Header
	hr.RemoteAddr = "127.0.0.2:1234"
	w := httptest.NewRecorder()
	f.srv.Config.Handler.ServeHTTP(w, hr)
	if w.Code != 403 || !strings.Contains(w.Body.String(), MsgIPDenied) || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("denied IP: %d %s %q", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
	hr.RemoteAddr = "198.51.100.1:1234"
	w = httptest.NewRecorder()
	f.srv.Config.Handler.ServeHTTP(w, hr)
	if w.Code != 403 {
		t.Fatalf("IP outside allowedIps: %d", w.Code)
	}
}

func TestReplayIsRefused(t *testing.T) {
	f := newSecureFixture(t)
	c := f.client("app-aes")
	req, err := c.Prepare("POST", "sec.echo", nil, []byte(`{"orderNo":"SO1"}`))
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "first", first, 200, MsgOK, true)
	again, err := c.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "replay", again, 401, MsgReplay, true)
	// The same nonce from another app is that app's own nonce.
	other := f.client("app-gcm")
	other.Nonce = func() string { return req.Header.Get("ZT-Nonce") }
	expect(t, "other app", f.send(t, other, "POST", "sec.echo", nil, `{}`, nil), 200, MsgOK, true)
}

// TestForgeryFloodCannotFillNonceStore: forged requests with fresh nonces
// (anyone who knows an appId can send them) never reach the nonce store, so
// even a store with room for one nonce a shard keeps serving real callers.
func TestForgeryFloodCannotFillNonceStore(t *testing.T) {
	store := security.NewMemoryNonces(1)
	f := newSecureFixtureWith(t, Options{Nonces: store})
	c := f.client("app-aes")
	for i := 0; i < 500; i++ {
		resp := f.send(t, c, "POST", "sec.echo", nil, "", func(r *client.Request) {
			r.Header.Set("ZT-Signature", strings.Repeat("0", 64))
		})
		expect(t, "forged", resp, 401, MsgBadSignature, true)
	}
	if n := store.Len(); n != 0 {
		t.Fatalf("forged requests left %d nonces in the store", n)
	}
	expect(t, "real caller after the flood", f.send(t, c, "POST", "sec.echo", nil, `{}`, nil), 200, MsgOK, true)
	if n := store.Len(); n != 1 {
		t.Fatalf("the verified request left %d nonces, want 1", n)
	}
}

func TestChangedQueryIsRefusedUnderHMAC(t *testing.T) {
	f := newSecureFixture(t)
	c := f.client("app-aes")
	resp := f.send(t, c, "GET", "sec.echo", url.Values{"page": {"1"}}, "", func(r *client.Request) {
		r.URL = strings.Replace(r.URL, "page=1", "page=2", 1)
	})
	expect(t, "changed query", resp, 401, MsgBadSignature, true)
	resp = f.send(t, c, "GET", "sec.echo", url.Values{"page": {"1"}}, "", func(r *client.Request) { r.URL += "&extra=1" })
	expect(t, "added query", resp, 401, MsgBadSignature, true)
	resp = f.send(t, c, "GET", "sec.echo", url.Values{"page": {"1"}}, "", func(r *client.Request) { r.URL += "&signature=anything" })
	expect(t, "signature parameter is not signed", resp, 200, MsgOK, true)
	resp = f.send(t, c, "GET", "sec.echo", url.Values{"page": {"1"}}, "", func(r *client.Request) { r.URL += "&appId=x" })
	expect(t, "reserved parameter", resp, 401, MsgBadSignature, true)
}

func TestTenantAndAnonymousUser(t *testing.T) {
	f := newSecureFixture(t)
	var who struct {
		App    string         `json:"app"`
		Tenant string         `json:"tenant"`
		User   map[string]any `json:"user"`
	}
	tenant := f.client("app-tenant")
	resp := f.send(t, tenant, "POST", "sec.who", nil, `{}`, nil)
	expect(t, "pinned tenant", resp, 200, MsgOK, true)
	json.Unmarshal(resp.Envelope.Response, &who)
	if who.Tenant != "7" || who.App != "app-tenant" {
		t.Errorf("pinned tenant: %+v", who)
	}
	tenant.TenantID = "7"
	expect(t, "same tenant header", f.send(t, tenant, "POST", "sec.who", nil, `{}`, nil), 200, MsgOK, true)
	open := f.client("app-open")
	open.TenantID = "99"
	resp = f.send(t, open, "POST", "sec.who", nil, `{}`, nil)
	json.Unmarshal(resp.Envelope.Response, &who)
	if who.Tenant != "99" {
		t.Errorf("tenant header: %+v", who)
	}

	anon := f.client("app-anon")
	resp = f.send(t, anon, "POST", "sec.who", nil, `{}`, nil)
	json.Unmarshal(resp.Envelope.Response, &who)
	if who.User["id"] != "42" || who.User["name"] != "bot" {
		t.Errorf("anonymous user: %+v", who)
	}
	expect(t, "anonymous upstream", f.send(t, anon, "POST", "sec.echo", nil, `{}`, nil), 200, MsgOK, true)
	auth, _ := f.lastAuth.Load().(string)
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		t.Fatalf("upstream Authorization = %q, want a Bearer JWT", auth)
	}
	claims, err := security.ParseJWT([]byte("jwt-signing-key"), tok)
	if err != nil {
		t.Fatalf("internal JWT does not verify: %v", err)
	}
	if claims.Subject != "42" || claims.Name != "bot" || claims.AppID != "app-anon" {
		t.Errorf("claims %+v", claims)
	}
	// A caller's own Authorization passes through instead.
	resp = f.send(t, anon, "POST", "sec.echo", nil, `{}`, func(r *client.Request) { r.Header.Set("Authorization", "Bearer mine") })
	expect(t, "own authorization", resp, 200, MsgOK, true)
	if got, _ := f.lastAuth.Load().(string); got != "Bearer mine" {
		t.Errorf("upstream Authorization = %q, want the caller's", got)
	}
	// Not anonymous: no JWT is made up.
	f.send(t, f.client("app-aes"), "POST", "sec.echo", nil, `{}`, nil)
	if got, _ := f.lastAuth.Load().(string); got != "" {
		t.Errorf("a non-anonymous caller got Authorization %q", got)
	}
}

func TestClockSkewFollowsTheClock(t *testing.T) {
	f := newSecureFixture(t)
	c := f.client("app-aes")
	req, _ := c.Prepare("POST", "sec.echo", nil, []byte(`{}`))
	f.now.Add(299_000)
	resp, _ := c.Send(context.Background(), req)
	expect(t, "within skew", resp, 200, MsgOK, true)
	req, _ = c.Prepare("POST", "sec.echo", nil, []byte(`{}`))
	f.now.Add(301_000)
	resp, _ = c.Send(context.Background(), req)
	expect(t, "beyond skew", resp, 401, "请求到达时间超出 300s", true)
}

func TestNoSecretInAnswers(t *testing.T) {
	f := newSecureFixture(t)
	c := &client.Client{BaseURL: f.base, Credential: client.Credential{AppID: "app-nokey", EncryptionKey: []byte("0123456789abcdef")}}
	resp := f.send(t, c, "POST", "sec.echo", nil, `{}`, nil)
	for _, secret := range append(mapValues(testKeys), "jwt-signing-key", "DATABUS_TEST_UNSET_KEY") {
		if bytes.Contains(resp.Raw, []byte(secret)) {
			t.Errorf("answer leaks %q: %s", secret, resp.Raw)
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestConcurrentSignedCalls(t *testing.T) {
	f := newSecureFixture(t)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := f.client("app-gcm")
			for i := 0; i < 25; i++ {
				resp, err := c.Call(context.Background(), "sec.who", []byte(`{}`))
				if err != nil || resp.Envelope.Code != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 200 concurrent signed calls failed", n)
	}
}

// FuzzPortal sends random headers and bodies through the whole handler: it
// must always answer an envelope with a documented status, never panic.
func FuzzPortal(f *testing.F) {
	f.Add("app-aes", "1732070400000", "0c5e2df9a1", "abc", "EPIU6HvWYXTFdBYzUEttDcQ5lrS3ruJl68/jmMA+2/s=", "page=1", "/api/sec.echo/v1", "POST")
	f.Add("", "", "", "", "", "", "/api/../x", "GET")
	f.Add("app-none", "-1", "short", strings.Repeat("f", 64), "{}", "%zz", "/api/sec.echo/v1", "PUT")
	fx := newSecureFixture(f).srv.Config.Handler
	f.Fuzz(func(t *testing.T, app, ts, nonce, sig, body, query, path, method string) {
		target := path
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		r, err := http.NewRequest(method, "http://x"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		r.URL.RawQuery = query
		r.RemoteAddr = "127.0.0.1:1"
		for k, v := range map[string]string{"ZT-App-Id": app, "ZT-Timestamp": ts, "ZT-Nonce": nonce, "ZT-Signature": sig} {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		fx.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 401, 403, 404, 405, 413, 431, 500, 502, 503, 504:
		default:
			t.Fatalf("undocumented status %d", w.Code)
		}
		if w.Header().Get("Content-Type") == "application/json; charset=utf-8" {
			var env envelope
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Code != w.Code {
				t.Fatalf("not an envelope: %s", w.Body)
			}
		} else if w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("unexpected content type %q", w.Header().Get("Content-Type"))
		}
	})
}
