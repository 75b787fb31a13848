// Package clients holds the example third-party clients of the Databus portal
// (java/DatabusClient.java, shell/databus-call.sh). Its test runs them against
// a real gateway serving the sample repository at the project root, and
// against the known-answer vectors of engine/security/testdata/wire.json.
// A test whose tools are missing (java, bash, curl, openssl) is skipped.
package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/engine/security"
)

const (
	repoDir     = "../.."
	vectorsPath = "../../engine/security/testdata/wire.json"
	demoKeyFile = "../secrets/demo-app.key"
	demoKey     = "databus-demo-key"
	javaClient  = "java/DatabusClient.java"
	shellClient = "shell/databus-call.sh"
	// Source-file mode compiles the client on every run: give it time on a
	// loaded machine.
	javaTimeout  = 4 * time.Minute
	shellTimeout = time.Minute
)

// startGateway serves the sample repository on loopback and returns the
// portal's base URL (scheme, host and base path).
func startGateway(t *testing.T) string {
	t.Helper()
	srv, err := gateway.New(gateway.Options{Dir: repoDir, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", NoWatch: true,
		StoragePath: filepath.Join(t.TempDir(), "databus.db")})
	if err != nil {
		t.Fatalf("gateway.New(%s): %v", repoDir, err)
	}
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		portalLn.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("gateway did not stop")
		}
		srv.Close()
	})
	return "http://" + portalLn.Addr().String() + srv.Current().Settings.APIPortal.BasePath
}

// needTools skips the test when one of tools is not on PATH.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found on PATH", tool)
		}
	}
}

var javaVersionRE = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

// needJava skips the test without a java launcher of version 11 or newer
// (source-file mode).
func needJava(t *testing.T) {
	t.Helper()
	needTools(t, "java")
	out, err := exec.Command("java", "-version").CombinedOutput()
	if err != nil {
		t.Skipf("java -version failed: %v: %s", err, out)
	}
	m := javaVersionRE.FindSubmatch(out)
	if m == nil {
		return // unknown format: try anyway
	}
	major, _ := strconv.Atoi(string(m[1]))
	if major == 1 && m[2] != nil {
		major, _ = strconv.Atoi(string(m[2])) // 1.8 → 8
	}
	if major < 11 {
		t.Skipf("java %d found; the Java client needs 11 or newer (source-file mode)", major)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs a client from this directory with env added to a copy of the
// environment cleared of DATABUS_* variables.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABUS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{code: 0, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: timed out after %s\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), timeout, res.stdout, res.stderr)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("%s %s: exit %d in %s", name, strings.Join(args, " "), res.code, time.Since(start).Round(time.Millisecond))
	return res
}

// envelope is the portal's answer.
type envelope struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Response json.RawMessage `json:"response"`
	TraceID  string          `json:"traceId"`
}

func parseEnvelope(t *testing.T, r result) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatalf("stdout is not an envelope: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return env
}

// wantGreeting checks a successful call of demo.hello.
func wantGreeting(t *testing.T, r result, name string) {
	t.Helper()
	env := parseEnvelope(t, r)
	var resp struct {
		Greeting string `json:"greeting"`
	}
	json.Unmarshal(env.Response, &resp)
	want := "Hello, " + name + "!"
	if r.code != 0 || env.Code != 200 || env.Message != "OK" || resp.Greeting != want || env.TraceID == "" {
		t.Fatalf("exit %d, envelope %d %q %s (trace %q); want exit 0, 200 OK with greeting %q\nstderr: %s",
			r.code, env.Code, env.Message, env.Response, env.TraceID, want, r.stderr)
	}
}

// vector is one known answer of wire.json.
type vector struct {
	Name              string  `json:"name"`
	AppID             string  `json:"appId"`
	Timestamp         string  `json:"timestamp"`
	Nonce             string  `json:"nonce"`
	EncryptionType    string  `json:"encryptionType"`
	SignatureType     string  `json:"signatureType"`
	EncryptionKey     string  `json:"encryptionKey"`
	SignatureKey      string  `json:"signatureKey"`
	GCMNonceHex       *string `json:"gcmNonceHex"`
	Query             string  `json:"query"`
	PlainBody         string  `json:"plainBody"`
	SignString        string  `json:"signString"`
	Signature         string  `json:"signature"`
	WireBody          string  `json:"wireBody"`
	Envelope          string  `json:"envelope"`
	EncryptedEnvelope string  `json:"encryptedEnvelope"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

// captured is one request as a fake portal received it.
type captured struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// fakePortal answers every request with answer(request) and records it.
func fakePortal(t *testing.T, answer func(c captured) (status int, contentType string, body []byte)) (string, <-chan captured) {
	t.Helper()
	got := make(chan captured, 16)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := captured{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body}
		status, ct, out := answer(c)
		got <- c // after answer: what it recorded is visible once c is received
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		w.Write(out)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/portal", got
}

// received returns the request the fake portal got from the client run r.
func received(t *testing.T, got <-chan captured, r result) captured {
	t.Helper()
	select {
	case c := <-got:
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("no request reached the fake portal (exit %d)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return captured{}
}

// ---------------------------------------------------------------- Java

func TestJavaVectors(t *testing.T) {
	needJava(t)
	t.Parallel()
	n := len(loadVectors(t))
	r := run(t, javaTimeout, nil, "java", javaClient, "vectors", vectorsPath)
	want := strconv.Itoa(n) + " vectors, " + strconv.Itoa(n) + " passed, 0 failed"
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("vectors: exit %d; want 0 and %q\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
}

// TestJavaVectorsDetectMismatch makes sure the vectors mode can fail: a
// copy of wire.json with one signature and one wire body altered.
func TestJavaVectorsDetectMismatch(t *testing.T) {
	needJava(t)
	t.Parallel()
	vs := loadVectors(t)
	vs[0].Signature = strings.Repeat("0", len(vs[0].Signature))
	vs[len(vs)-1].WireBody = "x" + vs[len(vs)-1].WireBody
	b, _ := json.Marshal(vs)
	path := filepath.Join(t.TempDir(), "wire.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, javaTimeout, nil, "java", javaClient, "vectors", path)
	if r.code == 0 || !strings.Contains(r.stdout, "FAIL  "+vs[0].Name) || !strings.Contains(r.stdout, "FAIL  "+vs[len(vs)-1].Name) ||
		!strings.Contains(r.stdout, "2 failed") {
		t.Fatalf("altered vectors: exit %d; want non-zero with 2 failures\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestJavaCall calls demo.hello on a real gateway, with query parameters
// (repeated key, space, non-ASCII, an encoded '&') that the signature covers.
func TestJavaCall(t *testing.T) {
	needJava(t)
	t.Parallel()
	base := startGateway(t)
	r := run(t, javaTimeout, nil, "java", javaClient, "call",
		"--url", base, "--app", "demo-app", "--key-file", demoKeyFile,
		"--api", "demo.hello:v1", "--body", `{"name":"Ada"}`,
		"--query", "tag=a b", "--query", "tag=c", "--query", "note=ü&x", "-v")
	wantGreeting(t, r, "Ada")
	if !strings.Contains(r.stderr, "encrypted envelope") {
		t.Errorf("the answer was not encrypted:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, `sign string: appId=demo-app&body={"name":"Ada"}&nonce=`) ||
		!strings.Contains(r.stderr, "&note=ü&x&") || !strings.Contains(r.stderr, "&tag=a b,c&timestamp=") {
		t.Errorf("unexpected sign string:\n%s", r.stderr)
	}
}

// TestJavaCallOtherAlgorithms runs DES and AES-GCM calls, which the sample
// credential does not use, against a fake portal that checks them with the
// gateway's own wire code and answers an envelope encrypted the same way
// (AES-GCM: with a fresh random nonce).
func TestJavaCallOtherAlgorithms(t *testing.T) {
	needJava(t)
	t.Parallel()
	for _, tc := range []struct{ enc, sig, key, signKey string }{
		{security.EncDES, security.SignMD5, "des-key8-extra", ""},
		{security.EncAESGCM, security.SignHMACSHA256, "0123456789abcdef0123456789abcdef", "another-sign-key"},
	} {
		t.Run(tc.enc, func(t *testing.T) {
			t.Parallel()
			cph, err := security.NewCipher(tc.enc, []byte(tc.key))
			if err != nil {
				t.Fatal(err)
			}
			signKey := tc.signKey
			if signKey == "" {
				signKey = tc.key
			}
			const plain = `{"name":"Grace"}`
			var problems []string
			base, got := fakePortal(t, func(c captured) (int, string, []byte) {
				q, _ := url.ParseQuery(c.rawQuery)
				body, err := security.DecryptBody(cph, c.body)
				if err != nil || string(body) != plain {
					problems = append(problems, "body does not decrypt to the plaintext: "+string(c.body))
				}
				s, err := security.SignString(c.header.Get("ZT-App-Id"), c.header.Get("ZT-Timestamp"), c.header.Get("ZT-Nonce"), body, q)
				if err != nil || !security.VerifySignature(tc.sig, []byte(signKey), s, c.header.Get("ZT-Signature")) {
					problems = append(problems, "signature does not verify over "+s)
				}
				env := []byte(`{"code":200,"message":"OK","response":{"greeting":"Hello, Grace!"},"traceId":"t-1"}`)
				sealed, _ := security.EncryptBody(cph, env)
				return 200, "text/plain; charset=utf-8", sealed
			})
			args := []string{javaClient, "call", "--url", base, "--app", "demo-app", "--key", tc.key,
				"--sign-type", tc.sig, "--enc-type", tc.enc, "--api", "demo.hello", "--body", plain, "--query", "page=2"}
			if tc.signKey != "" {
				args = append(args, "--sign-key", tc.signKey)
			}
			r := run(t, javaTimeout, nil, "java", args...)
			c := received(t, got, r)
			if c.path != "/portal/demo.hello/v1" || c.rawQuery != "page=2" || c.method != http.MethodPost ||
				!strings.HasPrefix(c.header.Get("Content-Type"), "text/plain") {
				t.Errorf("request %s %s?%s Content-Type %q", c.method, c.path, c.rawQuery, c.header.Get("Content-Type"))
			}
			if len(problems) > 0 {
				t.Errorf("%s", strings.Join(problems, "\n"))
			}
			wantGreeting(t, r, "Grace")
		})
	}
}

// ---------------------------------------------------------------- shell

var shellTools = []string{"bash", "curl", "openssl"}

func TestShellCall(t *testing.T) {
	needTools(t, shellTools...)
	t.Parallel()
	base := startGateway(t)
	// Flags, with the key from the key file.
	r := run(t, shellTimeout, nil, "bash", shellClient, "--url", base, "--app", "demo-app",
		"--key-file", demoKeyFile, "--api", "demo.hello:v1", "--body", `{"name":"Ada"}`)
	wantGreeting(t, r, "Ada")
	// Environment variables, with a query string that the signature covers.
	r = run(t, shellTimeout, []string{"DATABUS_URL=" + base, "DATABUS_APP=demo-app", "DATABUS_KEY=" + demoKey,
		"DATABUS_API=demo.hello", `DATABUS_BODY={"name":"Zoë"}`, "DATABUS_QUERY=tag=a+b&tag=c&note=%C3%BC%26x"},
		"bash", shellClient)
	wantGreeting(t, r, "Zoë")
	// A wrong key: the body does not decrypt, and the refusal, encrypted with
	// the credential's real key, does not decrypt either.
	r = run(t, shellTimeout, nil, "bash", shellClient, "--url", base, "--app", "demo-app",
		"--key", "databus-demo-kez", "--api", "demo.hello", "--body", `{"name":"Ada"}`)
	if r.code != 3 || !strings.Contains(r.stderr, "HTTP 400") {
		t.Errorf("wrong key: exit %d, stderr %s; want 3 and HTTP 400", r.code, r.stderr)
	}
	// An unknown app: refused before the gateway knows a key, in plaintext.
	r = run(t, shellTimeout, nil, "bash", shellClient, "--url", base, "--app", "nobody",
		"--key", demoKey, "--api", "demo.hello", "--body", `{"name":"Ada"}`)
	if env := parseEnvelope(t, r); r.code != 1 || env.Code != 401 || env.Message != "应用凭证无效" {
		t.Errorf("unknown app: exit %d, envelope %+v; want 1 and 401 应用凭证无效", r.code, env)
	}
}

// TestShellUnsupported checks the clear refusals of what openssl cannot do.
func TestShellUnsupported(t *testing.T) {
	needTools(t, shellTools...)
	t.Parallel()
	for _, enc := range []string{"AES-GCM", "DES"} {
		r := run(t, shellTimeout, nil, "bash", shellClient, "--url", "http://127.0.0.1:1", "--app", "a",
			"--key", demoKey, "--api", "x", "--enc-type", enc)
		if r.code != 2 || !strings.Contains(r.stderr, "not supported by the shell client") {
			t.Errorf("%s: exit %d, stderr %s; want 2 and not supported", enc, r.code, r.stderr)
		}
	}
}

// TestShellVectors reproduces every vector of wire.json that the shell
// client supports (AES and NONE) against a fake portal: the signature, the
// query and the wire body must be the vector's, and the vector's encrypted
// envelope must decrypt to its envelope.
func TestShellVectors(t *testing.T) {
	needTools(t, shellTools...)
	t.Parallel()
	n := 0
	for _, v := range loadVectors(t) {
		if v.EncryptionType != security.EncAES && v.EncryptionType != security.EncNone {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			base, got := fakePortal(t, func(c captured) (int, string, []byte) {
				if v.EncryptionType == security.EncNone {
					return 200, "application/json; charset=utf-8", []byte(v.EncryptedEnvelope)
				}
				return 200, "text/plain; charset=utf-8", []byte(v.EncryptedEnvelope)
			})
			method := http.MethodPost
			if v.PlainBody == "" {
				method = http.MethodGet
			}
			args := []string{shellClient, "--url", base, "--app", v.AppID, "--api", "vector.api:v2",
				"--method", method, "--sign-type", v.SignatureType, "--enc-type", v.EncryptionType,
				"--nonce", v.Nonce, "--timestamp", v.Timestamp, "--query", v.Query, "--body", v.PlainBody, "-v"}
			if v.EncryptionKey != "" {
				args = append(args, "--key", v.EncryptionKey)
			}
			if v.SignatureKey != "" {
				args = append(args, "--sign-key", v.SignatureKey)
			}
			r := run(t, shellTimeout, nil, "bash", args...)
			c := received(t, got, r)
			if !strings.Contains(r.stderr, "> sign string: "+v.SignString+"\n") {
				t.Errorf("sign string: want %s\nstderr: %s", v.SignString, r.stderr)
			}
			h := c.header
			if h.Get("ZT-App-Id") != v.AppID || h.Get("ZT-Timestamp") != v.Timestamp || h.Get("ZT-Nonce") != v.Nonce {
				t.Errorf("headers %v", h)
			}
			if sig := h.Get("ZT-Signature"); sig != v.Signature {
				t.Errorf("signature %s, want %s", sig, v.Signature)
			}
			if string(c.body) != v.WireBody {
				t.Errorf("wire body %q, want %q", c.body, v.WireBody)
			}
			if c.method != method || c.path != "/portal/vector.api/v2" || c.rawQuery != v.Query {
				t.Errorf("request %s %s?%s; want %s /portal/vector.api/v2?%s", c.method, c.path, c.rawQuery, method, v.Query)
			}
			wantCT := "text/plain"
			if v.EncryptionType == security.EncNone {
				wantCT = "application/json"
			}
			if v.PlainBody != "" && !strings.HasPrefix(h.Get("Content-Type"), wantCT) {
				t.Errorf("Content-Type %q, want %s", h.Get("Content-Type"), wantCT)
			}
			if r.code != 0 || r.stdout != v.Envelope+"\n" {
				t.Errorf("exit %d, stdout %q; want 0 and the envelope %s\nstderr: %s", r.code, r.stdout, v.Envelope, r.stderr)
			}
		})
	}
	if n == 0 {
		t.Fatal("no AES or NONE vectors")
	}
}

// ---------------------------------------------------------------- replay

// TestReplayRefused sends the same signed request twice (fixed nonce and
// timestamp): the gateway answers the first and refuses the second as a
// replay — in an envelope encrypted for the caller, as the credential is
// known by then.
func TestReplayRefused(t *testing.T) {
	needTools(t, shellTools...)
	t.Parallel()
	base := startGateway(t)
	env := []string{"DATABUS_URL=" + base, "DATABUS_APP=demo-app", "DATABUS_KEY_FILE=" + demoKeyFile,
		"DATABUS_API=demo.hello:v1", `DATABUS_BODY={"name":"Ada"}`,
		"DATABUS_NONCE=replay-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"DATABUS_TIMESTAMP=" + strconv.FormatInt(time.Now().UnixMilli(), 10)}
	first := run(t, shellTimeout, env, "bash", shellClient, "-v")
	wantGreeting(t, first, "Ada")
	second := run(t, shellTimeout, env, "bash", shellClient, "-v")
	e := parseEnvelope(t, second)
	if second.code != 1 || e.Code != 401 || e.Message != "重复请求" {
		t.Fatalf("replay: exit %d, envelope %+v; want exit 1, 401 重复请求\nstderr: %s", second.code, e, second.stderr)
	}
	if !strings.Contains(second.stderr, "< HTTP 401, Content-Type: text/plain") {
		t.Errorf("the refusal was not encrypted:\n%s", second.stderr)
	}
	// The signed parts of both requests were the same.
	sig := regexp.MustCompile(`> ZT-Signature: \S+`)
	if a, b := sig.FindString(first.stderr), sig.FindString(second.stderr); a == "" || a != b {
		t.Errorf("the two requests differ: %q vs %q", a, b)
	}
}
