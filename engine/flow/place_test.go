package flow

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/expr"
)

// Every jq program and template of a compiled flow names its file and
// line (what a budget error reports), taken from the loader's record of
// the definition: the pointers of the loader's checks and of Compile agree.
func TestEveryProgramNamesItsLine(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join("..", "config", "testdata", "base")
	if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
		t.Fatal(err)
	}
	fixture, err := os.ReadFile(filepath.Join("..", "config", "testdata", "good", "api-every-field.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apis", "every.yaml"), fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatal(err, diags)
	}
	var api *config.Api
	for _, a := range repo.APIs {
		if a.Source.File == "apis/every.yaml" {
			api = a
		}
	}
	f, err := Compile(api, nil)
	if err != nil {
		t.Fatal(err)
	}
	placed := regexp.MustCompile(`^apis/every\.yaml:\d+: \S`)
	n := 0
	check := func(what string, place string) {
		t.Helper()
		n++
		if !placed.MatchString(place) {
			t.Errorf("%s: place %q names no line", what, place)
		}
	}
	prog := func(what string, p *expr.Program) {
		if p != nil {
			check(what, p.Place())
		}
	}
	tmpl := func(what string, tm *expr.Template) {
		if tm != nil && !tm.IsLiteral() {
			check(what, tm.Place())
		}
	}
	prog("transforms.request", f.reqT)
	prog("transforms.response", f.respT)
	prog("transforms.error", f.errT)
	for _, st := range f.steps {
		prog(st.id+".when", st.when)
		prog(st.id+".transforms.request", st.reqT)
		prog(st.id+".transforms.response", st.respT)
		prog(st.id+".transforms.error", st.errT)
		if h, ok := st.runner.(*httpStep); ok {
			tmpl(st.id+".url", h.url)
			for _, nt := range append(append([]namedTemplate(nil), h.headers...), h.query...) {
				tmpl(st.id+"."+nt.name, nt.t)
			}
			if h.poll != nil {
				prog(st.id+".poll.until", h.poll.until)
				prog(st.id+".poll.failWhen", h.poll.failWhen)
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d programs and templates checked: the fixture lost its expressions", n)
	}
}
