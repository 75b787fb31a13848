package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
)

// ContentHash is the Hash that Reload would compute for dir, found without
// parsing anything: a reload tells an unchanged repository from a changed
// one at the cost of listing its files. The files whose metadata prev's
// load recorded, unchanged, are not even read; prev's APIs name the
// descriptor sets that count. It fails when a file cannot be read; the
// caller then loads the repository to learn why.
func ContentHash(dir string, prev *Repository) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	list, _, err := listFiles(abs)
	if err != nil {
		return "", err
	}
	var idx *fileIndex
	if prev != nil {
		idx = prev.files
	}
	fs := newFiles(abs, idx)
	hash := sha256.New()
	// The order Load hashes in: settings, the kind folders' files (sorted),
	// then the descriptor sets (sorted).
	e, _, err := fs.look(SettingsFile, nil)
	if err != nil {
		return "", err
	}
	hashEntry(hash, SettingsFile, e.sum)
	for _, f := range list {
		e, _, err := fs.look(f.rel, f.st)
		if err != nil {
			return "", err
		}
		hashEntry(hash, f.rel, e.sum)
	}
	if prev != nil {
		for _, rel := range prev.DescriptorSets() {
			e, _, err := fs.look(rel, nil)
			if err != nil {
				return "", fmt.Errorf("descriptor set %s: %w", rel, err)
			}
			hashEntry(hash, rel, e.sum)
		}
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

// DescriptorSets lists the descriptor sets the repository's rpc steps name,
// sorted, each once.
func (r *Repository) DescriptorSets() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range r.APIs {
		for _, s := range a.Steps {
			if s.RPC != nil && s.RPC.DescriptorSet != "" && !seen[s.RPC.DescriptorSet] {
				seen[s.RPC.DescriptorSet] = true
				out = append(out, s.RPC.DescriptorSet)
			}
		}
	}
	sort.Strings(out)
	return out
}
