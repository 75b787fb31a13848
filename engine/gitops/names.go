package gitops

import (
	"errors"
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// RevisionName is a name a revision goes by: what shell completion offers
// where a command takes REV. Every Name resolves with Resolve.
type RevisionName struct {
	Name string       // HEAD, main, origin/main, v1.0, or a commit's abbreviated hash
	Kind RevisionKind // what the name is
	// Subject is the subject line of the commit the name points at
	// (HEAD, branches and commits; tags and remote branches leave it out).
	Subject string
}

// RevisionKind says what a RevisionName is.
type RevisionKind string

// The kinds of RevisionName, in the order RevisionNames lists them.
const (
	KindHEAD         RevisionKind = "HEAD"
	KindBranch       RevisionKind = "branch"
	KindTag          RevisionKind = "tag"
	KindRemoteBranch RevisionKind = "remote branch"
	KindCommit       RevisionKind = "commit"
)

// MaxRevisionRefs bounds the references RevisionNames reads (branches,
// tags and remote branches together): a repository with tens of thousands
// of tags lists the first ones.
const MaxRevisionRefs = 1000

// RevisionNames lists HEAD, the local branches, the tags, the remote
// branches (MaxRevisionRefs references at most) and the latest commits
// reachable from HEAD, newest first (commits of them at most), each kind
// sorted by name except the commits. A repository without commits has
// none.
func (r *Repo) RevisionNames(commits int) ([]RevisionName, error) {
	g, err := r.open()
	if err != nil {
		return nil, err
	}
	head, err := g.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	subjectOf := func(h plumbing.Hash) string {
		if c, err := g.CommitObject(h); err == nil {
			return subject(c.Message)
		}
		return ""
	}
	out := []RevisionName{{Name: "HEAD", Kind: KindHEAD, Subject: subjectOf(head.Hash())}}

	refs, err := g.Storer.IterReferences()
	if err != nil {
		return nil, fmt.Errorf("listing references: %w", err)
	}
	var named []RevisionName
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if len(named) == MaxRevisionRefs {
			return storer.ErrStop
		}
		name := ref.Name()
		switch {
		case name.IsBranch():
			named = append(named, RevisionName{Name: name.Short(), Kind: KindBranch})
		case name.IsTag():
			named = append(named, RevisionName{Name: name.Short(), Kind: KindTag})
		case name.IsRemote() && ref.Type() == plumbing.HashReference: // not origin/HEAD
			named = append(named, RevisionName{Name: name.Short(), Kind: KindRemoteBranch})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing references: %w", err)
	}
	order := map[RevisionKind]int{KindBranch: 0, KindTag: 1, KindRemoteBranch: 2}
	sort.Slice(named, func(i, j int) bool {
		if order[named[i].Kind] != order[named[j].Kind] {
			return order[named[i].Kind] < order[named[j].Kind]
		}
		return named[i].Name < named[j].Name
	})
	for i := range named {
		if named[i].Kind == KindBranch {
			if ref, err := g.Reference(plumbing.NewBranchReferenceName(named[i].Name), false); err == nil {
				named[i].Subject = subjectOf(ref.Hash())
			}
		}
	}
	out = append(out, named...)

	if commits <= 0 {
		return out, nil
	}
	log, err := g.Log(&git.LogOptions{From: head.Hash(), Order: git.LogOrderCommitterTime})
	if err != nil {
		return nil, fmt.Errorf("reading the history: %w", err)
	}
	defer log.Close()
	err = log.ForEach(func(c *object.Commit) error {
		if commits == 0 {
			return storer.ErrStop
		}
		commits--
		out = append(out, RevisionName{Name: short(c.Hash.String()), Kind: KindCommit, Subject: subject(c.Message)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the history: %w", err)
	}
	return out, nil
}
