package gitops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/databus-gateway/databus/engine/config"
)

// Check decides whether the config repository in a folder is acceptable:
// the gate's dry build (engine/gate.Check). gitops runs it on the exact
// trees it is about to move to or commit.
type Check func(ctx context.Context, dir string) (config.Diagnostics, error)

// ErrDiverged: the local checkout has commits the remote branch lacks.
var ErrDiverged = errors.New("the checkout and the remote branch diverged: not a fast-forward")

// SyncResult is the outcome of one git-sync attempt.
type SyncResult struct {
	At         time.Time          `json:"at"`
	Remote     string             `json:"remote"`
	Branch     string             `json:"branch"`
	From       string             `json:"from"`             // HEAD before
	RemoteHead string             `json:"remoteHead"`       // the fetched branch head
	To         string             `json:"to"`               // HEAD after
	OK         bool               `json:"ok"`               // HEAD is the remote head, or nothing to do
	Moved      bool               `json:"moved"`            // the checkout was fast-forwarded
	Error      string             `json:"error,omitempty"`  // why the checkout stays where it is
	Errors     config.Diagnostics `json:"errors,omitempty"` // an invalid remote revision
}

// Sync fetches branch (the checked-out one when "") from remote and
// fast-forwards the checkout to it, when check accepts the new revision's
// tree. It never moves onto a revision check refuses, never rewrites local
// history (a diverged branch stays), and never overwrites local edits of
// config files. The fetch is bounded by ctx and by a minute.
func (r *Repo) Sync(ctx context.Context, remote, branch string, check Check) SyncResult {
	res := SyncResult{At: time.Now(), Remote: remote, Branch: branch}
	fail := func(err error) SyncResult { res.Error = err.Error(); return res }
	repo, err := r.open()
	if err != nil {
		return fail(err)
	}
	head, err := repo.Head()
	if err != nil {
		return fail(fmt.Errorf("reading HEAD: %w", err))
	}
	res.From = head.Hash().String()
	if branch == "" {
		if !head.Name().IsBranch() {
			return fail(errors.New("HEAD is detached: set gitSync.branch"))
		}
		branch = head.Name().Short()
	}
	res.Branch = branch
	if head.Name().Short() != branch {
		return fail(fmt.Errorf("the checkout is on %s, not on the followed branch %s", head.Name().Short(), branch))
	}
	remoteRef := plumbing.NewRemoteReferenceName(remote, branch)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = repo.FetchContext(fctx, &git.FetchOptions{
		RemoteName: remote,
		RefSpecs:   []gitconfig.RefSpec{gitconfig.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, remoteRef))},
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fail(fmt.Errorf("fetching %s from %s: %w", branch, remote, err))
	}
	ref, err := repo.Reference(remoteRef, true)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", remoteRef, err))
	}
	res.RemoteHead = ref.Hash().String()
	res.To = res.From
	if ref.Hash() == head.Hash() {
		res.OK = true
		return res
	}
	local, err := repo.CommitObject(head.Hash())
	if err != nil {
		return fail(err)
	}
	next, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return fail(err)
	}
	if ok, err := local.IsAncestor(next); err != nil || !ok {
		if err == nil {
			err = ErrDiverged
		}
		return fail(err)
	}
	if rev, err := r.Revision(); err == nil && rev.Dirty {
		return fail(fmt.Errorf("the checkout has local changes to config files (%v): git sync does not overwrite them", rev.DirtyFiles))
	}
	// The new revision passes the gate before the checkout moves to it.
	diags, err := r.checkCommit(ctx, next, check)
	if err != nil {
		return fail(fmt.Errorf("checking %s: %w", short(res.RemoteHead), err))
	}
	if diags.HasErrors() {
		res.Errors = diags.Errors()
		return fail(fmt.Errorf("revision %s is invalid (%d errors; first: %s)", short(res.RemoteHead), len(res.Errors), res.Errors[0]))
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fail(err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: ref.Hash(), Mode: git.HardReset}); err != nil {
		return fail(fmt.Errorf("fast-forwarding to %s: %w", short(res.RemoteHead), err))
	}
	res.To, res.OK, res.Moved = res.RemoteHead, true, true
	return res
}

// checkCommit writes the config folder of c to a temporary folder and runs
// check on it.
func (r *Repo) checkCommit(ctx context.Context, c *object.Commit, check Check) (diags config.Diagnostics, err error) {
	err = r.inTempDir(c, func(dir string) error {
		var cerr error
		diags, cerr = check(ctx, dir)
		return cerr
	})
	return diags, err
}

// CheckRevision runs check on the config folder as of rev (the gate of a
// revision's tree).
func (r *Repo) CheckRevision(ctx context.Context, rev string, check Check) (config.Diagnostics, error) {
	c, err := r.commitOf(rev)
	if err != nil {
		return nil, err
	}
	return r.checkCommit(ctx, c, check)
}

// InRevision calls fn with a folder holding the config repository as of
// rev: the revision's config folder written to a temporary folder (removed
// when fn returns), or for rev "" the working tree itself. It is how a
// caller runs the gate on a revision other than the checkout.
func (r *Repo) InRevision(rev string, fn func(dir string) error) error {
	if rev == "" {
		return fn(r.dir)
	}
	c, err := r.commitOf(rev)
	if err != nil {
		return err
	}
	return r.inTempDir(c, fn)
}
