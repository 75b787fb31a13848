// Command hooks is an example hook service for Databus (DESIGN.md section 6):
// it answers the four callouts the gateway makes — client_authentication,
// site_authentication, signature and permission — with simple rules, in the
// shapes FATE Flow's registry documents.
//
//	go run ./examples/hooks -addr 127.0.0.1:9300 -key-file site.key \
//	    -apps demo-app -parties 9999,10000 -permit 'demo-app=demo.hello:v1' -permit '10000=*'
//
// Rules:
//   - client_authentication: the request's ZT-App-Id header is in -apps
//     (empty: any app).
//   - signature: signs for a party in -parties (empty: any) with
//     HMAC-SHA256(key, canonical body), hex; the answer's site_signature.
//   - site_authentication: src_party_id is in -parties (empty: any) and
//     site_signature is that HMAC of the body: two sites sharing the key
//     accept each other's signed calls.
//   - permission: src_party_id may call the component (code:version) when a
//     -permit entry says so ("*": every API); no -permit at all: anything.
//
// The canonical body is the body's JSON re-encoded with sorted keys and
// numbers as written, or the text itself when the body is a string, so both
// sides compute the same bytes whatever the key order on the wire.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

// rules are what the service allows.
type rules struct {
	apps    map[string]bool            // appIds for client_authentication; empty: any
	parties map[string]bool            // party ids for signature and site_authentication; empty: any
	permits map[string]map[string]bool // party → components ("*": all); nil: anything
	key     []byte                     // the HMAC key the sites share
}

// answer is a hook's answer, FATE Flow's shape.
type answer struct {
	Code          int    `json:"code"`
	Message       string `json:"message"`
	SiteSignature string `json:"site_signature,omitempty"`
}

func ok() answer { return answer{Code: 0, Message: "success"} }
func no(code int, f string, a ...any) answer {
	return answer{Code: code, Message: fmt.Sprintf(f, a...)}
}

// handler serves /hooks/<name> for the four hooks.
func handler(r *rules, logger *log.Logger) http.Handler {
	mux := http.NewServeMux()
	hook := func(name string, fn func(body []byte) answer) {
		mux.HandleFunc("POST /hooks/"+name, func(w http.ResponseWriter, req *http.Request) {
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, 16<<20)); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			a := fn(buf.Bytes())
			logger.Printf("%s trace=%s code=%d %s", name, req.Header.Get("X-Trace-Id"), a.Code, a.Message)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(a)
		})
	}
	hook("client_authentication", r.clientAuthentication)
	hook("site_authentication", r.siteAuthentication)
	hook("signature", r.signature)
	hook("permission", r.permission)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

func (r *rules) clientAuthentication(body []byte) answer {
	var b struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return no(100, "bad request: %v", err)
	}
	app := ""
	for k, v := range b.Headers {
		if strings.EqualFold(k, "ZT-App-Id") {
			app = v
		}
	}
	if len(r.apps) > 0 && !r.apps[app] {
		return no(401, "app %q is not allowed", app)
	}
	return ok()
}

func (r *rules) signature(body []byte) answer {
	var b struct {
		PartyID string          `json:"party_id"`
		Body    json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return no(100, "bad request: %v", err)
	}
	if len(r.parties) > 0 && !r.parties[b.PartyID] {
		return no(403, "no signing for party %q", b.PartyID)
	}
	sig, err := r.sign(b.Body)
	if err != nil {
		return no(100, "bad body: %v", err)
	}
	a := ok()
	a.SiteSignature = sig
	return a
}

func (r *rules) siteAuthentication(body []byte) answer {
	var b struct {
		SrcPartyID    string          `json:"src_party_id"`
		SiteSignature string          `json:"site_signature"`
		Body          json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return no(100, "bad request: %v", err)
	}
	if len(r.parties) > 0 && !r.parties[b.SrcPartyID] {
		return no(401, "party %q is not known", b.SrcPartyID)
	}
	want, err := r.sign(b.Body)
	if err != nil {
		return no(100, "bad body: %v", err)
	}
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(b.SiteSignature))) {
		return no(401, "site signature of party %q does not verify", b.SrcPartyID)
	}
	return ok()
}

func (r *rules) permission(body []byte) answer {
	var b struct {
		SrcPartyID    string   `json:"src_party_id"`
		ComponentList []string `json:"component_list"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return no(100, "bad request: %v", err)
	}
	if r.permits == nil {
		return ok()
	}
	allowed := r.permits[b.SrcPartyID]
	for _, c := range b.ComponentList {
		if !allowed["*"] && !allowed[c] {
			return no(403, "party %q may not call %s", b.SrcPartyID, c)
		}
	}
	return ok()
}

// sign is HMAC-SHA256 of the canonical body, lower-case hex.
func (r *rules) sign(body json.RawMessage) (string, error) {
	c, err := canonical(body)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, r.key)
	m.Write(c)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// canonical is body re-encoded with sorted keys and numbers as written; a
// JSON string (a body that was not JSON) is its text.
func canonical(body json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	return json.Marshal(v)
}

// list is a comma-separated flag.
func list(s string) map[string]bool {
	m := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			m[v] = true
		}
	}
	return m
}

// permitFlag collects -permit party=code:version[,code:version...].
type permitFlag map[string]map[string]bool

func (p permitFlag) String() string { return "" }

func (p permitFlag) Set(s string) error {
	party, comps, found := strings.Cut(s, "=")
	if !found || party == "" || comps == "" {
		return errors.New("want party=code:version[,code:version...] or party=*")
	}
	if p[party] == nil {
		p[party] = map[string]bool{}
	}
	for c := range list(comps) {
		p[party][c] = true
	}
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9300", "listen address")
	keyFile := flag.String("key-file", "", "file holding the HMAC key the sites share (default: env HOOKS_SITE_KEY)")
	apps := flag.String("apps", "", "appIds client_authentication accepts, comma-separated (empty: any)")
	parties := flag.String("parties", "", "party ids site_authentication accepts and signature signs for (empty: any)")
	permits := permitFlag{}
	flag.Var(permits, "permit", "permission: party=code:version[,...] or party=* (repeatable; none: allow everything)")
	flag.Parse()

	key := []byte(os.Getenv("HOOKS_SITE_KEY"))
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			log.Fatalf("hooks: -key-file: %v", err)
		}
		key = bytes.TrimSpace(b)
	}
	if len(key) == 0 {
		log.Fatal("hooks: no key: give -key-file FILE or set HOOKS_SITE_KEY")
	}
	r := &rules{apps: list(*apps), parties: list(*parties), key: key}
	if len(permits) > 0 {
		r.permits = permits
	}
	logger := log.New(os.Stderr, "hooks: ", log.LstdFlags)
	srv := &http.Server{Addr: *addr, Handler: handler(r, logger), ReadHeaderTimeout: 10 * time.Second}
	logger.Printf("serving client_authentication, site_authentication, signature, permission on http://%s/hooks/", *addr)
	log.Fatal(srv.ListenAndServe())
}
