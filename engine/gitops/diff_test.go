package gitops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// summarize writes a RepoDiff as one line per document and per change.
func summarize(d *RepoDiff) string {
	var b strings.Builder
	for _, dd := range d.Docs {
		fmt.Fprintf(&b, "%s %s %s %s", dd.Status, dd.Kind, dd.ID, dd.File)
		if dd.OldFile != "" {
			fmt.Fprintf(&b, " <- %s", dd.OldFile)
		}
		b.WriteString("\n")
		b.WriteString(changeList(dd.Changes, "  "))
	}
	return b.String()
}

// changeList writes one change a line.
func changeList(cs []Change, indent string) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s%s %s", indent, c.Kind, c.Path)
		if c.Kind != KindAdded {
			fmt.Fprintf(&b, " %s", render(c.From, 0))
		}
		if c.Kind != KindRemoved {
			fmt.Fprintf(&b, " => %s", render(c.To, 0))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestDiffCommits(t *testing.T) {
	s := gitopstest.Sample(t, "config")
	r := open(t, s.Dir)
	tests := []struct {
		name, from, to, want string
	}{
		{"C1..C2", s.C1, s.C2, `
changed Api order.create:v1 apis/order.yaml
  changed status "draft" => "online"
  added transforms => {"response":"{orderNo: .steps.create.id}"}
  changed steps[create].http.url "http://127.0.0.1:9001/orders" => "http://orders.internal:9001/orders"
  added steps[score] => {"id":"score","type":"script","script":{"lang":"javascript","timeout":"50ms","source":"function main(ctx) { return {score: 1} }"},"onError":"fail"}
added Api stock.reserve:v1 apis/stock.yaml
added RateLimitPolicy burst policies/burst.yaml
`},
		{"moved", "v0.9", "v1.0", `
renamed Api order.create:v1 apis/orders/create.yaml <- apis/order.yaml
  changed description "Create an order" => "Create an order in the order service"
`},
		{"C3..C4", s.C3, s.C4, `
removed Api stock.reserve:v1 apis/stock.yaml
changed Credential shop credentials/shop.yaml
  changed signatureType "HMAC-SHA256" => "SHA256"
  changed allowedIps ["10.0.0.0/8"] => ["10.0.0.0/8","192.168.0.0/16"]
removed RateLimitPolicy burst policies/burst.yaml
changed RateLimitPolicy standard policies/standard.yaml
  changed limit 100 => 50
`},
		{"backwards", s.C4, s.C3, `
added Api stock.reserve:v1 apis/stock.yaml
changed Credential shop credentials/shop.yaml
  changed signatureType "SHA256" => "HMAC-SHA256"
  changed allowedIps ["10.0.0.0/8","192.168.0.0/16"] => ["10.0.0.0/8"]
added RateLimitPolicy burst policies/burst.yaml
changed RateLimitPolicy standard policies/standard.yaml
  changed limit 50 => 100
`},
		{"feature", "main", "feature", `
added Api order.create:v2 apis/order-v2.yaml
`},
		{"same", "HEAD", s.C4, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := r.Diff(tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarize(d); got != strings.TrimPrefix(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", got, strings.TrimPrefix(tt.want, "\n"))
			}
			if len(d.From) != 40 || len(d.To) != 40 {
				t.Errorf("From %q To %q: want full hashes", d.From, d.To)
			}
		})
	}
	if _, err := r.Diff("nosuch", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Diff(nosuch): %v", err)
	}
}

func TestDiffUnified(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	d, err := r.Diff(s.C3, s.C4)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]DocDiff{}
	for _, dd := range d.Docs {
		byID[dd.ID] = dd
	}
	if u := byID["standard"].Unified; u != "--- a/policies/standard.yaml\n+++ b/policies/standard.yaml\n@@ -2,5 +2,5 @@\n kind: RateLimitPolicy\n name: standard\n algorithm: fixed-window\n-limit: 100\n+limit: 50\n windowSeconds: 60\n" {
		t.Errorf("standard:\n%s", u)
	}
	if u := byID["burst"].Unified; !strings.HasPrefix(u, "--- a/policies/burst.yaml\n+++ /dev/null\n@@ -1,6 +0,0 @@\n-apiVersion: databus/v1\n") {
		t.Errorf("burst (removed):\n%s", u)
	}
}

func TestDiffWorktree(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	// Steps: score removed, notify added, create changed; settings,
	// a credential added, a comment-only edit.
	s.Write("apis/orders/create.yaml", strings.NewReplacer(
		"  - id: score\n    type: script\n    script: {lang: javascript, timeout: 50ms, source: 'function main(ctx) { return {score: 1} }'}\n", "",
		"      timeout: 5s\n", "      timeout: 10s\n      retry: {attempts: 2}\n  - id: notify\n    type: http\n    onError: continue\n    http: {method: POST, url: 'http://hooks.internal/orders'}\n",
		"methods: [POST]", "methods: [POST, PUT]",
		"auth:\n  credentials: [shop]\n", "auth:\n  credentials: [shop, partner]\n",
	).Replace(strings.TrimPrefix(gitopstest.OrderV3, "\n")))
	s.Write("credentials/partner.yaml", `
apiVersion: databus/v1
kind: Credential
appId: partner
encryptionKey: {secretRef: 'env:PARTNER_KEY'}
`)
	s.Write("databus.yaml", strings.Replace(gitopstest.Settings, "basePath: /api", "basePath: /gateway", 1))
	s.Write("policies/standard.yaml", "# Tightened in March.\n"+strings.TrimPrefix(gitopstest.StandardV2, "\n"))
	d, err := r.Diff("HEAD", "")
	if err != nil {
		t.Fatal(err)
	}
	want := `changed Settings databus.yaml databus.yaml
  changed apiPortal.basePath "/api" => "/gateway"
changed Api order.create:v1 apis/orders/create.yaml
  changed methods ["POST"] => ["POST","PUT"]
  changed auth.credentials ["shop"] => ["shop","partner"]
  removed steps[score] {"id":"score","type":"script","script":{"lang":"javascript","timeout":"50ms","source":"function main(ctx) { return {score: 1} }"},"onError":"fail"}
  changed steps[create].http.timeout "5s" => "10s"
  added steps[create].http.retry => {"attempts":2}
  added steps[notify] => {"id":"notify","type":"http","http":{"method":"POST","url":"http://hooks.internal/orders"},"onError":"continue"}
added Credential partner credentials/partner.yaml
changed RateLimitPolicy standard policies/standard.yaml
`
	if got := summarize(d); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if d.To != Worktree || d.From != s.C4 {
		t.Errorf("From %s To %s", d.From, d.To)
	}
	// The comment-only edit has a unified diff and no field changes.
	last := d.Docs[len(d.Docs)-1]
	if len(last.Changes) != 0 || !strings.Contains(last.Unified, "+# Tightened in March.\n") {
		t.Errorf("comment-only edit: %+v", last)
	}
}

// An invalid side is reported, and its documents that do not load are
// missing from it.
func TestDiffInvalidSide(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	s.Write("apis/orders/create.yaml", "apiVersion: databus/v1\nkind: Api\ncode: order.create\nversion: v1\nstatus: bogus\n")
	d, err := r.Diff("HEAD", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.FromErrors) != 0 || len(d.ToErrors) == 0 {
		t.Errorf("errors: from %v, to %v", d.FromErrors, d.ToErrors)
	}
	if got := summarize(d); got != "removed Api order.create:v1 apis/orders/create.yaml\n" {
		t.Errorf("got:\n%s", got)
	}
	var text bytes.Buffer
	if err := d.Format(&text, FormatText); err != nil || !strings.Contains(text.String(), "warning: working tree is invalid (") {
		t.Errorf("text lacks the warning:\n%s", text.String())
	}
}

func api(t *testing.T, src string) *config.Api {
	t.Helper()
	a, diags := config.ParseAPI(&config.Repository{Settings: config.DefaultSettings()}, "x.yaml", []byte(strings.TrimPrefix(src, "\n")))
	if a == nil {
		t.Fatalf("%v", diags)
	}
	return a
}

func TestCompareAPI(t *testing.T) {
	base := `
apiVersion: databus/v1
kind: Api
code: c
version: v1
status: online
methods: [GET]
input: {type: object, properties: {"a.b": {type: string}}}
steps:
  - {id: start, type: start}
  - {id: one, type: script, script: {source: 'function main(ctx) { return 1 }'}}
  - {id: two, type: script, script: {source: 'function main(ctx) { return 2 }'}}
  - {id: end, type: end}
`
	tests := []struct {
		name, old, new, want string
	}{
		{"same", "", "", ""},
		{"status", "status: online", "status: offline", `changed status "online" => "offline"`},
		{"policy added", "methods: [GET]", "methods: [GET]\npolicies: {rateLimit: standard}", `added policies => {"rateLimit":"standard"}`},
		{"input key with a dot", "\"a.b\": {type: string}", "\"a.b\": {type: integer}", `changed input.properties["a.b"].type "string" => "integer"`},
		{"reorder", "  - {id: one, type: script, script: {source: 'function main(ctx) { return 1 }'}}\n  - {id: two, type: script, script: {source: 'function main(ctx) { return 2 }'}}",
			"  - {id: two, type: script, script: {source: 'function main(ctx) { return 2 }'}}\n  - {id: one, type: script, script: {source: 'function main(ctx) { return 1 }'}}",
			`changed steps ["start","one","two","end"] => ["start","two","one","end"]`},
		{"step field", "return 2 }'}}", "return 2 }', timeout: 2s}, when: '.x'}",
			"changed steps[two].script.timeout \"1s\" => \"2s\"\nadded steps[two].when => \".x\""},
		{"transforms", "methods: [GET]", "methods: [GET]\ntransforms: {request: '.a'}", `added transforms => {"request":".a"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := api(t, base)
			b := api(t, strings.Replace(base, tt.old, tt.new, 1))
			got := strings.TrimSuffix(changeList(CompareAPI(a, b), ""), "\n")
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	if cs := CompareAPI(nil, api(t, base)); len(cs) != 1 || cs[0].Kind != KindAdded || cs[0].Path != "" {
		t.Errorf("CompareAPI(nil, a) = %+v", cs)
	}
	if cs := CompareAPI(nil, nil); cs != nil {
		t.Errorf("CompareAPI(nil, nil) = %+v", cs)
	}
}

func TestFormatGolden(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	// From C2 to an edited working tree: every status and kind of document.
	s.Write("apis/orders/create.yaml", strings.NewReplacer(
		"  - id: score\n    type: script\n    script: {lang: javascript, timeout: 50ms, source: 'function main(ctx) { return {score: 1} }'}\n", "",
		"      timeout: 5s\n", "      timeout: 10s\n  - {id: notify, type: http, http: {method: POST, url: 'http://hooks.internal/orders'}}\n",
	).Replace(strings.TrimPrefix(gitopstest.OrderV3, "\n")))
	s.Write("credentials/partner.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: partner\nencryptionKey: {secretRef: 'env:PARTNER_KEY'}\n")
	s.Write("databus.yaml", strings.Replace(gitopstest.Settings, "basePath: /api", "basePath: /gateway", 1))
	d, err := r.Diff(s.C2, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ format, ext string }{{FormatText, "txt"}, {FormatMarkdown, "md"}, {FormatJSON, "json"}} {
		var b bytes.Buffer
		if err := d.Format(&b, f.format); err != nil {
			t.Fatal(err)
		}
		golden(t, "diff."+f.ext+".golden", names(s, b.String()))
	}
	var back RepoDiff
	var b bytes.Buffer
	d.Format(&b, FormatJSON)
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Docs) != len(d.Docs) {
		t.Errorf("json does not read back: %v", err)
	}

	// No differences.
	d, err = r.Diff("HEAD", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ format, ext string }{{FormatText, "txt"}, {FormatMarkdown, "md"}, {FormatJSON, "json"}} {
		var b bytes.Buffer
		if err := d.Format(&b, f.format); err != nil {
			t.Fatal(err)
		}
		golden(t, "diff-none."+f.ext+".golden", names(s, b.String()))
	}
	if err := d.Format(&b, "xml"); err == nil {
		t.Error("Format(xml) succeeded")
	}
}

func TestMarkdownEscapes(t *testing.T) {
	if got := mdCode("a`b"); got != "``a`b``"[:0]+"`` a`b ``" {
		t.Errorf("mdCode = %s", got)
	}
	d := &RepoDiff{From: strings.Repeat("a", 40), To: Worktree, Docs: []DocDiff{{
		Kind: DocApi, ID: "x:v1", File: "apis/x|y.yaml", Status: StatusChanged,
		Changes: []Change{{Path: "description", Kind: KindChanged, From: "a", To: "b"}},
		Unified: "--- a\n+++ b\n@@ -1 +1 @@\n-```\n+````\n",
	}}}
	var b bytes.Buffer
	if err := d.Format(&b, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "`apis/x\\|y.yaml`") {
		t.Errorf("the pipe in the table is not escaped:\n%s", out)
	}
	if !strings.Contains(out, "`````diff\n") {
		t.Errorf("the fence is not longer than the backticks inside:\n%s", out)
	}
}

func TestMarkdownBudget(t *testing.T) {
	big := strings.Repeat("line\n", MarkdownBudget/5)
	d := &RepoDiff{From: strings.Repeat("a", 40), To: Worktree}
	for _, id := range []string{"a:v1", "b:v1"} {
		d.Docs = append(d.Docs, DocDiff{Kind: DocApi, ID: id, File: "apis/" + id + ".yaml", Status: StatusAdded,
			Changes: []Change{}, Unified: UnifiedDiff(nil, []byte(big), "/dev/null", "b/x")})
	}
	var b bytes.Buffer
	if err := d.Format(&b, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	if b.Len() > MarkdownBudget+1000 || strings.Count(b.String(), "Unified diff left out") != 2 || !strings.Contains(b.String(), "#### Api `b:v1`") {
		t.Errorf("%d bytes, %d left out", b.Len(), strings.Count(b.String(), "Unified diff left out"))
	}
}
