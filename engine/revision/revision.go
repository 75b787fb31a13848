// Package revision names what a Snapshot was built from: the git commit of
// the checkout (and whether config files differ from it), or the content
// hash outside git. It is a leaf package, so the request path can carry a
// revision without linking a git library.
package revision

import (
	"strings"
	"time"
)

// Revision describes the commit a working tree is on.
type Revision struct {
	Hash   string `json:"hash"`   // full hash of HEAD; "" before the first commit
	Short  string `json:"short"`  // abbreviated hash (7 characters)
	Branch string `json:"branch"` // "" when HEAD is detached
	// Dirty is true when a config file (databus.yaml or a YAML file under
	// apis/, credentials/, policies/) differs from HEAD in the working tree:
	// modified, added (even untracked or ignored: the loader reads it) or
	// deleted. Other files never make the tree dirty.
	Dirty      bool      `json:"dirty"`
	DirtyFiles []string  `json:"dirtyFiles,omitempty"` // config-relative, sorted
	Time       time.Time `json:"time"`                 // author time, as git log shows it
	Author     string    `json:"author"`
	Message    string    `json:"message"` // full message, trailing newlines dropped
}

// Subject returns the first line of the commit message.
func (v Revision) Subject() string {
	line, _, _ := strings.Cut(v.Message, "\n")
	return strings.TrimSpace(line)
}

// Same reports whether a and b name the same served state: commit, branch
// and dirtiness (nil: not a git checkout).
func Same(a, b *Revision) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Hash == b.Hash && a.Dirty == b.Dirty && a.Branch == b.Branch
}

// Label names what is served: the short commit hash with "-dirty" when
// config files differ from it, or "content:" and the first 12 hex digits of
// the content hash outside git (git nil or before the first commit).
func Label(git *Revision, contentHash string) string {
	if git != nil && git.Hash != "" {
		if git.Dirty {
			return git.Short + "-dirty"
		}
		return git.Short
	}
	if len(contentHash) > 12 {
		contentHash = contentHash[:12]
	}
	return "content:" + contentHash
}
