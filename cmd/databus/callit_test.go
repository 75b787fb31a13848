package main

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/ui"
)

// The admin page's "Call it" card is what `databus sign` prints for the
// API: the command runs as shown, its curl line is the page's once the
// timestamp, nonce, signature and encrypted body are filled in, and the
// example body passes the API's input schema.
func TestCallItIsWhatSignPrints(t *testing.T) {
	const root = "../.."
	repo, diags, err := config.Load(root)
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags.Errors())
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ui.New(ui.Source{Current: func() *snapshot.Snapshot { return snap }}).Register(mux)
	signRe := regexp.MustCompile(`<span class="cmd" id="sign">([^<]*)</span>\s*# the request it builds:\n([^<]*)</pre>`)
	seen := map[string]bool{}
	for _, rt := range snap.Routes() {
		id := rt.API.ID()
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/ui/apis/"+id, nil))
		page, _ := io.ReadAll(w.Result().Body)
		m := signRe.FindStringSubmatch(string(page))
		if w.Code != 200 || m == nil {
			t.Fatalf("%s: %d, no sign command and curl line:\n%s", id, w.Code, page)
		}
		cmd, curl := html.UnescapeString(m[1]), strings.TrimSpace(html.UnescapeString(m[2]))
		args := shellWords(t, cmd)
		if len(args) < 3 || args[0] != "databus" || args[1] != "sign" {
			t.Fatalf("%s: %q is not a databus sign command", id, cmd)
		}
		out, errOut, code := runCLI(append(args[1:], "--dir", root)...)
		if code != exitOK {
			t.Fatalf("%s: %s: exit %d: %s", id, cmd, code, errOut)
		}
		blocks := strings.Split(strings.TrimSpace(out), "\n\n")
		signed := blocks[len(blocks)-1]
		for _, h := range []struct{ name, placeholder string }{
			{"ZT-Timestamp", client.PlaceholderTimestamp}, {"ZT-Nonce", client.PlaceholderNonce}, {"ZT-Signature", client.PlaceholderSignature},
		} {
			signed = regexp.MustCompile(`'`+h.name+`: [^']*'`).ReplaceAllString(signed, client.ShellQuote(h.name+": "+h.placeholder))
		}
		var body string
		for i, a := range args {
			if a == "--body" && i+1 < len(args) {
				body = args[i+1]
			}
		}
		if len(blocks) == 3 { // an encrypted body: the placeholder stands for it
			signed = strings.Replace(signed, client.ShellQuote(blocks[1]), client.ShellQuote(client.PlaceholderBody), 1)
		}
		if signed != curl {
			t.Errorf("%s: the page shows\n%s\nbut %s prints\n%s", id, curl, cmd, signed)
		}
		if rt.API.Input != nil {
			if e := rt.Flow.CheckInput([]byte(body)); e != nil {
				t.Errorf("%s: the example body %s does not pass the input schema: %s", id, body, e.Message)
			}
			if !strings.Contains(string(page), `id="body-note"`) {
				t.Errorf("%s: no note that the body comes from the input schema", id)
			}
		}
		seen[id] = true
	}
	for _, id := range []string{"order.quote:v1", "demo.hello:v1", "demo.health:v1"} {
		if !seen[id] {
			t.Errorf("%s not checked", id)
		}
	}
}

// shellWords splits a command line of plain words and single-quoted ones
// (a quote inside one written as quote, backslash, quote, quote), as
// client.ShellQuote writes them.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, has := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\'':
			in = false
		case in:
			cur.WriteByte(c)
		case c == '\'':
			in, has = true, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			has = true
		case c == ' ':
			if has {
				words = append(words, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteByte(c)
			has = true
		}
	}
	if in {
		t.Fatalf("unclosed quote in %q", s)
	}
	if has {
		words = append(words, cur.String())
	}
	return words
}
