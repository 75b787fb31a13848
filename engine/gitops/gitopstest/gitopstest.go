// Package gitopstest builds git repositories holding a config repository
// for tests, with go-git (no git binary): a Builder for any history, and
// Sample for a ready-made one with renames, deletions, branches and tags.
package gitopstest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Epoch is the author time of a Builder's first commit; each further commit
// is one day later, so that hashes are the same on every run.
var Epoch = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// Builder writes files into a git work tree and commits them.
type Builder struct {
	T    testing.TB
	Root string // the git work tree
	Dir  string // the config repository: Root, or a folder inside it
	Git  *git.Repository

	// Author and Email sign the next commits.
	Author, Email string

	commits int
}

// New creates a git repository on branch main in a temporary folder; the
// config repository is the folder sub inside it ("" for the root).
func New(t testing.TB, sub string) *Builder {
	t.Helper()
	root := t.TempDir()
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	g, err := git.PlainInitWithOptions(root, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := root
	if sub != "" {
		dir = filepath.Join(root, filepath.FromSlash(sub))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Builder{T: t, Root: root, Dir: dir, Git: g, Author: "Alice Admin", Email: "alice@example.com"}
}

// Path returns the absolute path of a config-relative file.
func (b *Builder) Path(rel string) string { return filepath.Join(b.Dir, filepath.FromSlash(rel)) }

// Write writes a config-relative file, creating its folders. A leading
// newline of content is dropped, so that raw strings can start on their own
// line.
func (b *Builder) Write(rel, content string) {
	b.T.Helper()
	p := b.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.T.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.TrimPrefix(content, "\n")), 0o644); err != nil {
		b.T.Fatal(err)
	}
}

// Read returns a config-relative file's content, "" when it is missing.
func (b *Builder) Read(rel string) string {
	data, _ := os.ReadFile(b.Path(rel))
	return string(data)
}

// Remove deletes a config-relative file.
func (b *Builder) Remove(rel string) {
	b.T.Helper()
	if err := os.Remove(b.Path(rel)); err != nil {
		b.T.Fatal(err)
	}
}

// Rename moves a config-relative file.
func (b *Builder) Rename(from, to string) {
	b.T.Helper()
	if err := os.MkdirAll(filepath.Dir(b.Path(to)), 0o755); err != nil {
		b.T.Fatal(err)
	}
	if err := os.Rename(b.Path(from), b.Path(to)); err != nil {
		b.T.Fatal(err)
	}
}

// Commit stages every change of the work tree (git add -A) and commits it;
// it returns the full hash.
func (b *Builder) Commit(msg string) string {
	b.T.Helper()
	wt, err := b.Git.Worktree()
	if err != nil {
		b.T.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		b.T.Fatal(err)
	}
	sig := b.Signature()
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &sig, Committer: &sig, AllowEmptyCommits: true})
	if err != nil {
		b.T.Fatal(err)
	}
	b.commits++
	return h.String()
}

// Signature is the author of the next commit.
func (b *Builder) Signature() object.Signature {
	return object.Signature{Name: b.Author, Email: b.Email, When: Epoch.Add(time.Duration(b.commits) * 24 * time.Hour)}
}

// Branch creates a branch at HEAD and checks it out.
func (b *Builder) Branch(name string) {
	b.T.Helper()
	b.checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(name), Create: true})
}

// Checkout checks out a branch, or a commit hash as a detached HEAD.
func (b *Builder) Checkout(rev string) {
	b.T.Helper()
	if len(rev) == 40 && plumbing.IsHash(rev) {
		b.checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(rev)})
		return
	}
	b.checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(rev)})
}

func (b *Builder) checkout(opts *git.CheckoutOptions) {
	b.T.Helper()
	wt, err := b.Git.Worktree()
	if err != nil {
		b.T.Fatal(err)
	}
	opts.Force = true
	if err := wt.Checkout(opts); err != nil {
		b.T.Fatal(err)
	}
}

// Tag tags a commit: lightweight, or annotated when message is not "".
func (b *Builder) Tag(name, hash, message string) {
	b.T.Helper()
	var opts *git.CreateTagOptions
	if message != "" {
		sig := b.Signature()
		opts = &git.CreateTagOptions{Tagger: &sig, Message: message}
	}
	if _, err := b.Git.CreateTag(name, plumbing.NewHash(hash), opts); err != nil {
		b.T.Fatal(err)
	}
}

// SetUser sets user.name and user.email in the repository's git config.
func (b *Builder) SetUser(name, email string) {
	b.T.Helper()
	cfg, err := b.Git.Config()
	if err != nil {
		b.T.Fatal(err)
	}
	cfg.User.Name, cfg.User.Email = name, email
	if err := b.Git.SetConfig(cfg); err != nil {
		b.T.Fatal(err)
	}
}

// Head returns the full hash HEAD points at.
func (b *Builder) Head() string {
	b.T.Helper()
	ref, err := b.Git.Head()
	if err != nil {
		b.T.Fatal(err)
	}
	return ref.Hash().String()
}
