package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/internal/testredis"
)

// nonceRepo writes a repository with the security chain on, one credential
// (app-a, as signedClient uses) and one script API; its nonces live in the
// Redis at redisAddr, or in the embedded store when it is "".
func nonceRepo(t *testing.T, redisAddr string) (dir, code string) {
	t.Helper()
	dir = t.TempDir()
	code = fmt.Sprintf("nonce.p%d.n%d", os.Getpid(), apiSeq.Add(1))
	settings := "apiPortal:\n  basePath: " + basePath + "\n  security: {enabled: true}\n"
	if redisAddr != "" {
		settings += "redis:\n  addr: " + redisAddr + "\n  timeout: 200ms\n"
	}
	writeRepo(t, dir, map[string]string{
		"databus.yaml":       settings,
		"keys/a.key":         "0123456789abcdef",
		"credentials/a.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-a\nencryptionKey: {secretRef: 'file:keys/a.key'}\n",
		"apis/a.yaml": "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: v1\nstatus: online\nmethods: [POST]\nsteps:\n" +
			"  - {id: start, type: start}\n  - id: s\n    type: script\n    script: {timeout: 10s, source: 'function main(c) { return \"hi\" }'}\n  - {id: end, type: end}\n",
	})
	return dir, code
}

// TestForgedRequestDoesNotSpendNonce: a request with a garbage signature is
// refused and leaves its nonce unspent, so the real caller's request with
// that nonce passes; the nonce is spent by that request, and a replay of it
// is refused — with the embedded store and with Redis.
func TestForgedRequestDoesNotSpendNonce(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			addr := ""
			if backend == "redis" {
				addr = testredis.Addr(t)
			}
			dir, code := nonceRepo(t, addr)
			ts := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "a.db")})
			if got := ts.Current().StoreBackend; got != backend {
				t.Fatalf("store backend %q, want %q", got, backend)
			}
			c := signedClient(ts)
			valid, err := c.Prepare("POST", code, nil, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			forged := &client.Request{Method: valid.Method, URL: valid.URL, Header: valid.Header.Clone(), Body: valid.Body}
			forged.Header.Set("ZT-Signature", "0000000000000000000000000000000000000000000000000000000000000000")
			send := func(what string, r *client.Request, status int, msg string) {
				t.Helper()
				resp, err := c.Send(context.Background(), r)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if resp.Envelope.Code != status || (msg != "" && resp.Envelope.Message != msg) {
					t.Fatalf("%s: %d %q, want %d %q", what, resp.Envelope.Code, resp.Envelope.Message, status, msg)
				}
			}
			send("forged, nonce N", forged, 401, "签名校验失败")
			send("forged again, nonce N", forged, 401, "签名校验失败")
			send("valid, nonce N", valid, 200, "")
			send("replay of the valid request", valid, 401, "重复请求")
			send("forged after the nonce was spent", forged, 401, "签名校验失败")
		})
	}
}
