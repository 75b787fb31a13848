package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ContentHash is the Hash that Load would compute for dir, given the
// descriptor sets its APIs name (repository-relative), found without
// parsing anything: a reload tells an unchanged repository from a changed
// one at the cost of reading its files. It fails when a file cannot be
// read; the caller then loads the repository to learn why.
func ContentHash(dir string, descriptorSets []string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	files, _, err := listFiles(abs)
	if err != nil {
		return "", err
	}
	hash := sha256.New()
	read := func(rel string) error {
		data, err := os.ReadFile(filepath.Join(abs, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		hashFile(hash, rel, data)
		return nil
	}
	// The order Load hashes in: settings, the kind folders' files (sorted),
	// then the descriptor sets (sorted).
	if err := read(SettingsFile); err != nil {
		return "", err
	}
	for _, f := range files {
		if err := read(f); err != nil {
			return "", err
		}
	}
	sets := append([]string(nil), descriptorSets...)
	sort.Strings(sets)
	for i, rel := range sets {
		if i > 0 && rel == sets[i-1] {
			continue
		}
		if err := read(rel); err != nil {
			return "", fmt.Errorf("descriptor set %s: %w", rel, err)
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
