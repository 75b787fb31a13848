package view

import (
	"strings"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Policy is a rate-limit policy, its file and the APIs bound to it.
type Policy struct {
	*config.RateLimitPolicy
	File   string   `json:"file"`
	UsedBy []string `json:"usedBy"`
}

// PolicyOf is the view of p, one of snap's policies.
func PolicyOf(snap *snapshot.Snapshot, p *config.RateLimitPolicy) Policy {
	v := Policy{RateLimitPolicy: p, File: p.Source.File, UsedBy: []string{}}
	for _, a := range snap.Repo.APIs {
		if a.Policies != nil && a.Policies.RateLimit == p.Name {
			v.UsedBy = append(v.UsedBy, a.ID())
		}
	}
	return v
}

// Policies are snap's rate-limit policies whose name contains name (every
// one for ""), in repository order.
func Policies(snap *snapshot.Snapshot, name string) []Policy {
	list := []Policy{}
	for _, p := range snap.Repo.Policies {
		if strings.Contains(p.Name, name) {
			list = append(list, PolicyOf(snap, p))
		}
	}
	return list
}

// FindPolicy is the view of the policy name.
func FindPolicy(snap *snapshot.Snapshot, name string) (Policy, bool) {
	p := snap.Repo.Policy(name)
	if p == nil {
		return Policy{}, false
	}
	return PolicyOf(snap, p), true
}
