package gateway

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/client"
)

// No secret appears anywhere the gateway speaks: logs (at debug level),
// /metrics, every admin REST answer, the pages, access-log records and
// envelopes — after valid calls, forged ones, and calls with a credential
// whose key does not resolve.
func TestNoSecretAnywhere(t *testing.T) {
	secrets := map[string]string{
		"DATABUS_T_ENC_KEY":   "S3cretKeyABCDEF!",
		"DATABUS_T_SIGN_KEY":  "SignSecret-XYZ-42",
		"DATABUS_T_ADMIN_TOK": "AdminTok-Secret-9999",
		"DATABUS_T_JWT_KEY":   "JwtSecret-77777777-long-enough",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	writeRepo(t, dir, map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  basePath: " + basePath + "\n  security:\n    jwt: {key: {secretRef: 'env:DATABUS_T_JWT_KEY'}}\n" +
			"admin:\n  tokens:\n    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_T_ADMIN_TOK'}}\n",
		"credentials/s.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-s\nencryptionKey: {secretRef: 'env:DATABUS_T_ENC_KEY'}\nsignatureKey: {secretRef: 'env:DATABUS_T_SIGN_KEY'}\n" +
			"allowAnonymous: true\nanonymousUser: {id: '7', name: bot}\n",
		"credentials/broken.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-broken\nencryptionKey: {secretRef: 'env:DATABUS_T_UNSET_KEY'}\n",
		"apis/s.yaml": "apiVersion: databus/v1\nkind: Api\ncode: t.secret\nversion: v1\nstatus: online\nmethods: [POST]\nsteps:\n  - {id: start, type: start}\n" +
			"  - id: s\n    type: script\n    script: {timeout: 10s, source: 'function main(c) { return {hi: c.request.body.name} }'}\n  - {id: end, type: end}\n",
	})
	logs := &syncBuffer{}
	ts := startServer(t, Options{Dir: dir, NoWatch: true, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	var seen strings.Builder
	good := &client.Client{BaseURL: ts.portalURL + basePath, HTTP: &http.Client{Timeout: clientTimeout},
		Credential: client.Credential{AppID: "app-s", EncryptionKey: []byte(secrets["DATABUS_T_ENC_KEY"]), SignatureKey: []byte(secrets["DATABUS_T_SIGN_KEY"])}}
	forged := &client.Client{BaseURL: good.BaseURL, HTTP: good.HTTP,
		Credential: client.Credential{AppID: "app-s", EncryptionKey: []byte(secrets["DATABUS_T_ENC_KEY"]), SignatureKey: []byte("not-the-key")}}
	broken := &client.Client{BaseURL: good.BaseURL, HTTP: good.HTTP,
		Credential: client.Credential{AppID: "app-broken", EncryptionKey: []byte("0123456789abcdef")}}
	for c, want := range map[*client.Client]int{good: 200, forged: 401, broken: 500} {
		resp, err := c.Call(context.Background(), "t.secret", []byte(`{"name":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Envelope.Code != want {
			t.Errorf("%s: %d %s, want %d", c.Credential.AppID, resp.Envelope.Code, resp.Envelope.Message, want)
		}
		env, _ := json.Marshal(resp.Envelope)
		seen.Write(env)
	}
	get := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, ts.adminURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+secrets["DATABUS_T_ADMIN_TOK"])
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		seen.Write(body)
	}
	for _, p := range []string{"/metrics", "/readyz", "/databus/gateway/overview", "/databus/gateway/definitions",
		"/databus/gateway/definition/page", "/databus/gateway/definition/t.secret:v1",
		"/databus/gateway/credential/page", "/databus/gateway/credential/get?id=app-s", "/databus/gateway/credential/get?id=app-broken",
		"/databus/gateway/credential/list-simple", "/databus/gateway/policy/rate-limit/page", "/databus/gateway/reload/last",
		"/databus/gateway/access-log/page?pageSize=100", "/ui/", "/ui/apis", "/ui/apis/t.secret:v1", "/ui/credentials", "/ui/access-log"} {
		get(p)
	}
	seen.WriteString(logs.String())
	all := seen.String()
	if !strings.Contains(all, "app-broken") || !strings.Contains(all, "DATABUS_T_ENC_KEY") {
		t.Fatal("the views and records were not read: no credential or reference in what was seen")
	}
	for name, v := range secrets {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))} {
			if strings.Contains(all, form) {
				t.Errorf("the secret of %s appears in what the gateway showed", name)
			}
		}
	}
}
