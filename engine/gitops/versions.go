package gitops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/engine/config"
)

// Kinds of change of a Version.
const (
	Added    = "added"
	Modified = "modified"
	Renamed  = "renamed"
	Deleted  = "deleted"
)

// Version is one commit that changed a file.
type Version struct {
	Hash    string    `json:"hash"`
	Short   string    `json:"short"`
	Author  string    `json:"author"`
	Email   string    `json:"email"`
	Time    time.Time `json:"time"`    // author time, as git log shows it
	Message string    `json:"message"` // full message, trailing newlines dropped
	Path    string    `json:"path"`    // the file's config-relative path in that commit (before it, when deleted)
	Change  string    `json:"change"`  // added, modified, renamed or deleted
	OldPath string    `json:"oldPath,omitempty"`
}

// Subject returns the first line of the commit message.
func (v Version) Subject() string { return subject(v.Message) }

// renameOptions detect renames as git does by default: at least 50% similar.
var renameOptions = &object.DiffTreeOptions{DetectRenames: true, RenameScore: 50, RenameLimit: 1000}

// Versions lists the commits that changed a config-relative file, newest
// first, following the first parent from HEAD (as git log --first-parent
// does) and following renames: when a commit renamed apis/a.yaml to
// apis/b.yaml (found by comparing the commit's tree with its parent's, exact
// or at least 50% similar content), the history of b.yaml continues with
// that of a.yaml. A file deleted at HEAD still has its history, starting
// with the deletion. In a shallow clone the oldest available commit counts
// as the one that added the file. A file no commit touched has no versions.
func (r *Repo) Versions(file string) ([]Version, error) {
	file, err := cleanPath(file)
	if err != nil {
		return nil, err
	}
	g, err := r.open()
	if err != nil {
		return nil, err
	}
	head, err := headCommit(g)
	if err != nil || head == nil {
		return nil, err
	}
	return r.versions(g, head, file, nil)
}

// identity finds, in a parent commit, the file a file added by a commit was
// moved from when content similarity did not tell: the file that defined
// the same API. "" when there is none.
type identity func(parent, c *object.Commit, added string) (string, error)

// headCommit returns HEAD's commit, or nil before the first commit.
func headCommit(g *git.Repository) (*object.Commit, error) {
	ref, err := g.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	return g.CommitObject(ref.Hash())
}

func (r *Repo) versions(g *git.Repository, head *object.Commit, file string, same identity) ([]Version, error) {
	var out []Version
	cur := r.full(file)
	for c := head; c != nil; {
		var parent *object.Commit
		if len(c.ParentHashes) > 0 {
			p, err := g.CommitObject(c.ParentHashes[0])
			if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
				return nil, err
			}
			parent = p // nil beyond the edge of a shallow clone
		}
		tree, err := c.Tree()
		if err != nil {
			return nil, err
		}
		var ptree *object.Tree
		if parent != nil {
			if ptree, err = parent.Tree(); err != nil {
				return nil, err
			}
		}
		now, before := entryHash(tree, cur), entryHash(ptree, cur)
		change, oldPath := "", ""
		switch {
		case now == before:
		case before.IsZero():
			change = Added
			if ptree != nil {
				from, err := r.renameSource(ptree, tree, cur)
				if err != nil {
					return nil, err
				}
				if from == "" && same != nil {
					if from, err = same(parent, c, cur); err != nil {
						return nil, err
					}
				}
				if from != "" {
					change, oldPath = Renamed, from
				}
			}
		case now.IsZero():
			change = Deleted
		default:
			change = Modified
		}
		if change != "" {
			rel, _ := r.local(cur)
			v := versionOf(c, rel, change)
			if oldPath != "" {
				v.OldPath, _ = r.local(oldPath)
				cur = oldPath
			}
			out = append(out, v)
		}
		c = parent
	}
	return out, nil
}

func versionOf(c *object.Commit, rel, change string) Version {
	return Version{
		Hash:    c.Hash.String(),
		Short:   short(c.Hash.String()),
		Author:  c.Author.Name,
		Email:   c.Author.Email,
		Time:    c.Author.When,
		Message: trimMessage(c.Message),
		Path:    rel,
		Change:  change,
	}
}

// entryHash returns the blob hash of a file in a tree, or the zero hash.
func entryHash(t *object.Tree, full string) plumbing.Hash {
	if t == nil {
		return plumbing.ZeroHash
	}
	e, err := t.FindEntry(full)
	if err != nil || !e.Mode.IsFile() {
		return plumbing.ZeroHash
	}
	return e.Hash
}

// renameSource returns the path (work-tree-relative) the file at full was
// renamed from between the two trees, or "".
func (r *Repo) renameSource(before, after *object.Tree, full string) (string, error) {
	changes, err := object.DiffTreeWithOptions(context.Background(), before, after, renameOptions)
	if err != nil {
		return "", err
	}
	for _, ch := range changes {
		if ch.To.Name != full || ch.From.Name == "" || ch.From.Name == full {
			continue
		}
		if _, inside := r.local(ch.From.Name); inside {
			return ch.From.Name, nil
		}
	}
	return "", nil
}

// sameAPI follows an API by its code and version across a move that
// changed too much of the file for the similarity test.
func (r *Repo) sameAPI(code, version string, cache map[plumbing.Hash]apiHeader) identity {
	return func(parent, c *object.Commit, added string) (string, error) {
		files, err := r.apiFilesIn(parent, code, version, cache)
		if err != nil || len(files) != 1 {
			return "", err
		}
		from := r.full(files[0].path)
		tree, err := c.Tree()
		if err != nil {
			return "", err
		}
		if from == added || entryHash(tree, from) == files[0].hash {
			return "", nil // the old file is still there, unchanged
		}
		return from, nil
	}
}

// ParseAPIRef splits "code:version" (or a bare code, version "").
func ParseAPIRef(s string) (code, version string) {
	code, version, _ = strings.Cut(s, ":")
	return code, version
}

// apiHeader is what identifies an API file.
type apiHeader struct {
	Kind    string `yaml:"kind"`
	Code    string `yaml:"code"`
	Version string `yaml:"version"`
}

func parseAPIHeader(data []byte) (apiHeader, bool) {
	var h apiHeader
	if err := yaml.Unmarshal(data, &h); err != nil || h.Code == "" {
		return h, false
	}
	return h, true
}

// apiFile is an API file found in a tree or the working tree.
type apiFile struct {
	path    string // config-relative
	version string
	hash    plumbing.Hash
}

// apiFilesIn lists the files of apis/ in a commit's tree that define code
// (any version when version is ""). cache maps blob hashes to parsed
// headers across calls.
func (r *Repo) apiFilesIn(c *object.Commit, code, version string, cache map[plumbing.Hash]apiHeader) ([]apiFile, error) {
	root, err := c.Tree()
	if err != nil {
		return nil, err
	}
	var out []apiFile
	err = r.treeFiles(root, func(rel string, f *object.File) error {
		if !strings.HasPrefix(rel, config.APIsDir+"/") || !config.IsConfigFile(rel) {
			return nil
		}
		h, ok := cache[f.Hash]
		if !ok {
			s, err := f.Contents()
			if err != nil {
				return err
			}
			h, _ = parseAPIHeader([]byte(s))
			if cache != nil {
				cache[f.Hash] = h
			}
		}
		if h.Code == code && (version == "" || h.Version == version) {
			out = append(out, apiFile{path: rel, version: h.Version, hash: f.Hash})
		}
		return nil
	})
	return out, err
}

// VersionsOfAPI lists the versions of an API's file (see Versions). The file
// is the one that defines code:version at HEAD; for an API deleted at HEAD,
// the last file in the first-parent history that defined it. version ""
// stands for the API's only version, and is ambiguous when it has several.
func (r *Repo) VersionsOfAPI(code, version string) ([]Version, error) {
	g, err := r.open()
	if err != nil {
		return nil, err
	}
	head, err := headCommit(g)
	if err != nil {
		return nil, err
	}
	if head == nil {
		return nil, fmt.Errorf("%w: API %s: the repository has no commits", ErrNotFound, apiName(code, version))
	}
	cache := map[plumbing.Hash]apiHeader{}
	for c := head; c != nil; {
		files, err := r.apiFilesIn(c, code, version, cache)
		if err != nil {
			return nil, err
		}
		f, err := pickAPIFile(files, code, version, c)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return r.versions(g, head, f.path, r.sameAPI(code, f.version, cache))
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		if c, err = g.CommitObject(c.ParentHashes[0]); err != nil {
			break // the edge of a shallow clone
		}
	}
	return nil, fmt.Errorf("%w: API %s is defined in no file of %s/ in the history of HEAD", ErrNotFound, apiName(code, version), config.APIsDir)
}

// pickAPIFile chooses the file of code:version among files; nil when there
// is none.
func pickAPIFile(files []apiFile, code, version string, c *object.Commit) (*apiFile, error) {
	if len(files) == 0 {
		return nil, nil
	}
	if version == "" {
		seen := map[string]bool{}
		var vs []string
		for _, f := range files {
			if !seen[f.version] {
				seen[f.version] = true
				vs = append(vs, f.version)
			}
		}
		if len(vs) > 1 {
			sort.Strings(vs)
			return nil, fmt.Errorf("%w: API %s has versions %s at %s: give code:version", ErrAmbiguous, code, strings.Join(vs, ", "), short(c.Hash.String()))
		}
	}
	if len(files) > 1 {
		paths := make([]string, len(files))
		for i, f := range files {
			paths[i] = f.path
		}
		return nil, fmt.Errorf("%w: API %s is defined by several files at %s: %s", ErrAmbiguous, apiName(code, files[0].version), short(c.Hash.String()), strings.Join(paths, ", "))
	}
	return &files[0], nil
}

func apiName(code, version string) string {
	if version == "" {
		return code
	}
	return code + ":" + version
}
