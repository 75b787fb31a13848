package gitops

import (
	"fmt"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// RevisionNames lists HEAD, branches, tags and the latest commits, each
// of which Resolve takes.
func TestRevisionNames(t *testing.T) {
	s := gitopstest.Sample(t, "config")
	r := open(t, s.Dir)
	got, err := r.RevisionNames(3)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, n := range got {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", n.Name, n.Kind, n.Subject)
		if _, err := r.Resolve(n.Name); err != nil {
			t.Errorf("%s does not resolve: %v", n.Name, err)
		}
	}
	want := `HEAD	HEAD	Retire stock.reserve; tighten the standard policy
broken	branch	Point order.create at a missing policy
feature	branch	Draft order.create v2
main	branch	Retire stock.reserve; tighten the standard policy
v0.9	tag	
v1.0	tag	
<C4>	commit	Retire stock.reserve; tighten the standard policy
<C3>	commit	Move order.create to apis/orders/
<C2>	commit	Publish order.create with a scoring step
`
	if g := names(s, b.String()); g != want {
		t.Errorf("got\n%s\nwant\n%s", g, want)
	}

	// No commits asked: references only.
	if got, _ := r.RevisionNames(0); len(got) != 6 {
		t.Errorf("RevisionNames(0): %v", got)
	}
	// A repository without commits has no names, and no error.
	empty := gitopstest.New(t, "")
	if got, err := open(t, empty.Dir).RevisionNames(10); err != nil || len(got) != 0 {
		t.Errorf("empty repository: %v, %v", got, err)
	}
}

// Past MaxRevisionRefs references the rest are not read.
func TestRevisionNamesBound(t *testing.T) {
	b := gitopstest.New(t, "")
	b.Write("databus.yaml", gitopstest.Settings)
	c := b.Commit("one")
	for i := range MaxRevisionRefs + 10 {
		b.Tag(fmt.Sprintf("t%04d", i), c, "")
	}
	got, err := open(t, b.Dir).RevisionNames(5)
	if err != nil {
		t.Fatal(err)
	}
	// HEAD, MaxRevisionRefs references (main and tags), one commit.
	if len(got) != 1+MaxRevisionRefs+1 {
		t.Errorf("%d names, want %d", len(got), MaxRevisionRefs+2)
	}
}
