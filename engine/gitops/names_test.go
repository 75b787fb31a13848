package gitops

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// RevisionNames lists HEAD, branches, tags and the latest commits, each
// of which Resolve takes.
func TestRevisionNames(t *testing.T) {
	s := gitopstest.Sample(t, "config")
	r := open(t, s.Dir)
	got, err := r.RevisionNames(context.Background(), 3)
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
	if got, _ := r.RevisionNames(context.Background(), 0); len(got) != 6 {
		t.Errorf("RevisionNames(0): %v", got)
	}
	// A repository without commits has no names, and no error.
	empty := gitopstest.New(t, "")
	if got, err := open(t, empty.Dir).RevisionNames(context.Background(), 10); err != nil || len(got) != 0 {
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
	got, err := open(t, b.Dir).RevisionNames(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	// HEAD, MaxRevisionRefs references (main and tags), one commit.
	if len(got) != 1+MaxRevisionRefs+1 {
		t.Errorf("%d names, want %d", len(got), MaxRevisionRefs+2)
	}
}

// A commit whose message is megabytes long is listed by its hash, without
// its subject, and its message is never read into memory.
func TestRevisionNamesHugeCommit(t *testing.T) {
	b := gitopstest.New(t, "")
	b.Write("databus.yaml", gitopstest.Settings)
	first := b.Commit("First")
	b.Write("apis/a.yaml", "a: 1\n")
	const messageBytes = 5 << 20
	huge := b.Commit("Huge subject\n\n" + strings.Repeat("all work and no play\n", messageBytes/21))
	b.Write("apis/b.yaml", "b: 1\n")
	b.Commit("After")
	r := open(t, b.Dir)

	var got []RevisionName
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := r.RevisionNames(context.Background(), 10)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > messageBytes/4 {
		t.Errorf("RevisionNames allocated %d bytes for a %d-byte message", alloc, messageBytes)
	}
	var lines []string
	for _, n := range got {
		lines = append(lines, fmt.Sprintf("%s\t%s\t%s", n.Name, n.Kind, n.Subject))
	}
	want := []string{
		"HEAD\tHEAD\tAfter",
		"main\tbranch\tAfter",
		short(b.Head()) + "\tcommit\tAfter",
		short(huge) + "\tcommit\t", // no subject; its parent is still found
		short(first) + "\tcommit\tFirst",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// The huge commit at HEAD and a branch: neither has a subject.
	b.Checkout(huge)
	got, err = open(t, b.Dir).RevisionNames(context.Background(), 1)
	if err != nil || len(got) < 1 || got[0].Subject != "" {
		t.Errorf("HEAD at the huge commit: %+v, %v", got, err)
	}
}

// A context that has ended stops the listing; what was found is returned.
func TestRevisionNamesCanceled(t *testing.T) {
	s := gitopstest.Sample(t, "config")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := open(t, s.Dir).RevisionNames(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range got {
		if n.Kind == KindCommit || n.Subject != "" {
			t.Errorf("after the context ended: %+v", n)
		}
	}
}
