package config

import "sort"

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
