package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	dbconfig "github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gitops"
)

// SyncResult is the outcome of one git-sync attempt, kept for the admin view.
type SyncResult struct {
	At         time.Time             `json:"at"`
	Remote     string                `json:"remote"`
	Branch     string                `json:"branch"`
	From       string                `json:"from"`             // HEAD before
	RemoteHead string                `json:"remoteHead"`       // the fetched branch head
	To         string                `json:"to"`               // HEAD after
	OK         bool                  `json:"ok"`               // HEAD is the remote head, or nothing to do
	Moved      bool                  `json:"moved"`            // the checkout was fast-forwarded
	Error      string                `json:"error,omitempty"`  // why the gateway stays where it is
	Errors     []dbconfig.Diagnostic `json:"errors,omitempty"` // an invalid remote revision
}

// ErrDiverged: the local checkout has commits the remote branch lacks.
var ErrDiverged = errors.New("the checkout and the remote branch diverged: not a fast-forward")

// gitRevision reads the revision of the checkout; nil when it is not a git
// work tree.
func (s *Server) gitRevision() *gitops.Revision {
	if s.git == nil {
		return nil
	}
	rev, err := s.git.Revision()
	if err != nil {
		s.log.Warn("reading the git revision failed", "error", err)
		return nil
	}
	return &rev
}

// syncOnce fetches the followed branch and fast-forwards the checkout to
// it when the new revision is valid. It never leaves the gateway on an
// invalid revision, and never rewrites local history.
func (s *Server) syncOnce(ctx context.Context) SyncResult {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	settings := s.Current().Settings.GitSync
	res := SyncResult{At: time.Now(), Remote: settings.Remote, Branch: settings.Branch}
	defer func() {
		r := res
		s.lastSync.Store(&r)
		if res.Error != "" {
			s.log.Error("git sync: staying on the current revision", "from", short(res.From), "remote", short(res.RemoteHead), "error", res.Error)
		} else if res.Moved {
			s.log.Info("git sync: fast-forwarded", "from", short(res.From), "to", short(res.To))
		}
	}()
	fail := func(err error) SyncResult { res.Error = err.Error(); return res }
	if s.git == nil {
		return fail(errors.New("git sync needs the config repository to be a git checkout"))
	}
	repo, err := git.PlainOpenWithOptions(s.git.Root(), &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return fail(err)
	}
	head, err := repo.Head()
	if err != nil {
		return fail(fmt.Errorf("reading HEAD: %w", err))
	}
	res.From = head.Hash().String()
	branch := settings.Branch
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
	remoteRef := plumbing.NewRemoteReferenceName(settings.Remote, branch)
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = repo.FetchContext(fctx, &git.FetchOptions{
		RemoteName: settings.Remote,
		RefSpecs:   []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:%s", branch, remoteRef))},
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fail(fmt.Errorf("fetching %s from %s: %w", branch, settings.Remote, err))
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
	remote, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return fail(err)
	}
	if ok, err := local.IsAncestor(remote); err != nil || !ok {
		if err == nil {
			err = ErrDiverged
		}
		return fail(err)
	}
	if rev, err := s.git.Revision(); err == nil && rev.Dirty {
		return fail(fmt.Errorf("the checkout has local changes to config files (%v): git sync does not overwrite them", rev.DirtyFiles))
	}
	// Validate the new revision before the checkout moves to it.
	_, diags, err := s.git.Load(res.RemoteHead)
	if err != nil {
		return fail(fmt.Errorf("loading %s: %w", short(res.RemoteHead), err))
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

// LastSync returns the latest git-sync attempt, or nil.
func (s *Server) LastSync() *SyncResult { return s.lastSync.Load() }

// Refresh is what cache/refresh does: in git-sync mode it fetches first,
// then reloads.
func (s *Server) Refresh(reason string) ReloadResult {
	if s.opts.GitSync {
		s.syncOnce(context.Background())
	}
	return s.Reload(reason)
}

// runSync fetches on the interval until ctx ends.
func (s *Server) runSync(ctx context.Context) {
	for {
		interval := s.Current().Settings.GitSync.Interval.D()
		if s.opts.GitSyncInterval > 0 {
			interval = s.opts.GitSyncInterval
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if r := s.syncOnce(ctx); r.Moved {
			s.Reload("git sync " + short(r.To))
		}
	}
}
