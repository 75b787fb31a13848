package gitops

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
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

// MaxSubjectCommitBytes: a commit object larger than this (its message,
// mostly) is listed without its subject; RevisionNames reads only its
// headers, never the whole object.
const MaxSubjectCommitBytes = 64 << 10

// RevisionNames lists HEAD, the local branches, the tags, the remote
// branches (MaxRevisionRefs references at most) and the latest commits
// reachable from HEAD, newest first (commits of them at most), each kind
// sorted by name except the commits. A repository without commits has
// none. When ctx ends, the names found so far are returned, without an
// error. A commit object above MaxSubjectCommitBytes is named without its
// subject.
func (r *Repo) RevisionNames(ctx context.Context, commits int) ([]RevisionName, error) {
	g, err := r.open()
	if err != nil {
		return nil, err
	}
	// Objects read through st: one above MaxSubjectCommitBytes is
	// streamed, not read into memory.
	var st storer.EncodedObjectStorer = g.Storer
	if fs, ok := g.Storer.(*filesystem.Storage); ok {
		st = filesystem.NewStorageWithOptions(fs.Filesystem(), cache.NewObjectLRUDefault(),
			filesystem.Options{LargeObjectThreshold: MaxSubjectCommitBytes})
	}
	head, err := g.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	subjectOf := func(h plumbing.Hash) string {
		if ctx.Err() != nil {
			return ""
		}
		if c, err := readCommitHead(st, h); err == nil {
			return c.subject
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
		if len(named) == MaxRevisionRefs || ctx.Err() != nil {
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
	// The latest commits by committer time, as git log lists them: the
	// newest of the commits waiting is taken next, its parents wait.
	var waiting []commitHead
	seen := map[plumbing.Hash]bool{}
	push := func(h plumbing.Hash) error {
		if seen[h] {
			return nil
		}
		seen[h] = true
		c, err := readCommitHead(st, h)
		if err != nil {
			return err
		}
		waiting = append(waiting, c)
		return nil
	}
	if err := push(head.Hash()); err != nil {
		return nil, fmt.Errorf("reading the history: %w", err)
	}
	for ; commits > 0 && len(waiting) > 0 && ctx.Err() == nil; commits-- {
		next := 0
		for i, c := range waiting {
			if c.when.After(waiting[next].when) {
				next = i
			}
		}
		c := waiting[next]
		waiting = append(waiting[:next], waiting[next+1:]...)
		out = append(out, RevisionName{Name: short(c.hash.String()), Kind: KindCommit, Subject: c.subject})
		for _, p := range c.parents {
			if ctx.Err() != nil {
				break
			}
			if err := push(p); err != nil {
				return nil, fmt.Errorf("reading the history: %w", err)
			}
		}
	}
	return out, nil
}

// commitHead is what RevisionNames needs of a commit.
type commitHead struct {
	hash    plumbing.Hash
	parents []plumbing.Hash
	when    time.Time // committer time
	subject string    // empty when the object is above MaxSubjectCommitBytes
}

// readCommitHead reads commit h: the whole object when it is at most
// MaxSubjectCommitBytes, else its headers only (parents, committer),
// streamed, without the message.
func readCommitHead(st storer.EncodedObjectStorer, h plumbing.Hash) (commitHead, error) {
	if sizer, ok := st.(interface {
		EncodedObjectSize(plumbing.Hash) (int64, error)
	}); ok {
		if size, err := sizer.EncodedObjectSize(h); err == nil && size > MaxSubjectCommitBytes {
			return readCommitHeaders(st, h)
		}
	}
	obj, err := st.EncodedObject(plumbing.CommitObject, h)
	if err != nil {
		return commitHead{}, err
	}
	if obj.Size() > MaxSubjectCommitBytes {
		return readCommitHeaders(st, h)
	}
	c, err := object.DecodeCommit(st, obj)
	if err != nil {
		return commitHead{}, err
	}
	return commitHead{hash: h, parents: c.ParentHashes, when: c.Committer.When, subject: subject(c.Message)}, nil
}

// readCommitHeaders reads the header lines of commit h, up to the blank
// line before the message, and no more than MaxSubjectCommitBytes of them.
func readCommitHeaders(st storer.EncodedObjectStorer, h plumbing.Hash) (commitHead, error) {
	obj, err := st.EncodedObject(plumbing.CommitObject, h)
	if err != nil {
		return commitHead{}, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return commitHead{}, err
	}
	defer rd.Close()
	c := commitHead{hash: h}
	br := bufio.NewReader(io.LimitReader(rd, MaxSubjectCommitBytes))
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 {
			break // the message follows, or the object (or the limit) ended
		}
		switch key, value, _ := bytes.Cut(line, []byte(" ")); string(key) {
		case "parent":
			c.parents = append(c.parents, plumbing.NewHash(string(value)))
		case "committer":
			var sig object.Signature
			sig.Decode(value)
			c.when = sig.When
		}
		if err != nil {
			break
		}
	}
	return c, nil
}
