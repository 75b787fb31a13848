package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gateway"
)

// startGateway serves the repository dir on loopback and returns the portal
// base URL.
func startGateway(t *testing.T, dir string) string {
	t.Helper()
	srv, err := gateway.New(gateway.Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "databus.db")})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pl, al) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return "http://" + pl.Addr().String() + srv.Current().Settings.APIPortal.BasePath
}

func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if _, ok := files["databus.yaml"]; !ok {
		files["databus.yaml"] = "apiVersion: databus/v1\nkind: Settings\n"
	}
	for rel, body := range files {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCallAndSign(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		"policies/p.yaml":    "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\n",
		"credentials/a.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: shop\nencryptionType: AES-GCM\nencryptionKey: {secretRef: 'file:keys/shop.key'}\nsignatureKey: {secretRef: 'file:keys/shop.sign'}\n",
		"keys/shop.key":      "0123456789abcdef0123456789abcdef\n",
		"keys/shop.sign":     "a-separate-hmac-key\n",
		"apis/hello.yaml": "apiVersion: databus/v1\nkind: Api\ncode: hello\nversion: v2\nstatus: online\nmethods: [POST]\npolicies: {rateLimit: p}\nsteps:\n" +
			"  - {id: start, type: start}\n  - id: s\n    type: script\n    script: {source: 'function main(c) { return {hi: c.request.body.name, page: c.request.query.page} }'}\n  - {id: end, type: end}\n",
	})
	base := startGateway(t, dir)

	// call reads the credential's algorithms and keys from the repository.
	out, errOut, code := runCLI("call", "hello:v2", "--dir", dir, "--url", base, "--app", "shop", "--body", `{"name":"Ada"}`, "--query", "page=3")
	if code != exitOK {
		t.Fatalf("call: exit %d\n%s%s", code, out, errOut)
	}
	var env struct {
		Code     int
		Response map[string]string
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || env.Code != 200 || env.Response["hi"] != "Ada" || env.Response["page"] != "3" {
		t.Fatalf("call printed %s (%v)", out, err)
	}
	// A wrong key: the gateway refuses; call exits 1 and prints the envelope.
	out, _, code = runCLI("call", "hello:v2", "--dir", dir, "--url", base, "--app", "shop", "--sign-key", "wrong", "--body", `{"name":"Ada"}`)
	if code != exitInvalid || !strings.Contains(out, "签名校验失败") {
		t.Fatalf("call with a wrong key: exit %d\n%s", code, out)
	}
	// sign prints headers and a body that the gateway accepts as they are.
	out, errOut, code = runCLI("sign", "hello:v2", "--dir", dir, "--url", base, "--app", "shop", "--body", `{"name":"Bo"}`)
	if code != exitOK || !strings.Contains(out, "curl -sS -X POST '"+base+"/hello/v2'") {
		t.Fatalf("sign: exit %d\n%s%s", code, out, errOut)
	}
	// Output: "# sign string", header lines, a blank line, the body, a blank
	// line, the curl line.
	blocks := strings.Split(out, "\n\n")
	if len(blocks) < 3 {
		t.Fatalf("sign output has %d blocks:\n%s", len(blocks), out)
	}
	req, _ := http.NewRequest("POST", base+"/hello/v2", strings.NewReader(strings.TrimSpace(blocks[1])))
	for _, line := range strings.Split(blocks[0], "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(k, "#") {
			req.Header.Set(k, v)
		}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the signed request from databus sign was refused: %d", resp.StatusCode)
	}
	// Usage errors.
	if _, errOut, code := runCLI("call", "hello", "--dir", dir); code != exitUsage || !strings.Contains(errOut, "--app is required") {
		t.Errorf("call without --app: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI("call", "--app", "x", "--dir", dir); code != exitUsage || !strings.Contains(errOut, "name one API") {
		t.Errorf("call without API: %d %s", code, errOut)
	}
}
