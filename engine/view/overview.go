package view

import (
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Overview is what a Snapshot serves, in numbers, and what in it does not
// work. Problems name references, never values.
type Overview struct {
	Revision    string             `json:"revision"` // the content hash
	Git         *revision.Revision `json:"git,omitempty"`
	LoadedAt    time.Time          `json:"loadedAt"`
	APIs        int                `json:"apis"`
	Online      int                `json:"online"`
	Credentials int                `json:"credentials"`
	Policies    int                `json:"policies"`
	// AdminTokenProblems are the admin tokens whose secret did not
	// resolve, by name.
	AdminTokenProblems map[string]string `json:"adminTokenProblems,omitempty"`
	// JWTProblem: apiPortal.security.jwt.key is set but did not resolve.
	JWTProblem string `json:"jwtProblem,omitempty"`
	// KeyProblems are the credentials without a usable key, by appId.
	KeyProblems map[string]string `json:"keyProblems,omitempty"`
}

// OverviewOf is the overview of snap.
func OverviewOf(snap *snapshot.Snapshot) Overview {
	o := Overview{Revision: snap.Revision, Git: snap.Git, LoadedAt: snap.LoadedAt, APIs: len(snap.Repo.APIs),
		Credentials: len(snap.Repo.Credentials), Policies: len(snap.Repo.Policies),
		AdminTokenProblems: snap.AdminTokenProblems}
	if snap.Settings.APIPortal.Security.JWT.Key != nil {
		o.JWTProblem = snap.JWTProblem
	}
	if kp := snap.KeyProblems(); len(kp) > 0 {
		o.KeyProblems = kp
	}
	for _, a := range snap.Repo.APIs {
		if a.Status == config.StatusOnline {
			o.Online++
		}
	}
	return o
}
