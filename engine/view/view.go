// Package view is the runtime view of a gateway: what a Snapshot serves
// (APIs, credentials without secrets, policies), its versions in git, and
// what is wrong with it — each computed by one function from what the
// Snapshot already holds. The admin REST API marshals these values as
// they are; the admin pages template the same values.
package view

import (
	"strings"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Definition is an API as the admin view shows it: the definition, where
// it comes from, and whether it is served.
type Definition struct {
	ID     string `json:"id"`
	File   string `json:"file"`
	Served bool   `json:"served"`
	*config.Api
}

// DefinitionOf is the view of one route.
func DefinitionOf(rt *snapshot.Route) Definition {
	return Definition{ID: rt.API.ID(), File: rt.API.Source.File, Served: rt.API.Status == config.StatusOnline, Api: rt.API}
}

// Policy is the name of the API's rate-limit policy, "" when it has none.
func (d Definition) Policy() string {
	if d.Policies == nil {
		return ""
	}
	return d.Policies.RateLimit
}

// Callers are the appIds auth.credentials allows; nil: any enabled
// credential.
func (d Definition) Callers() []string {
	if d.Auth == nil {
		return nil
	}
	return d.Auth.Credentials
}

// DefinitionFilter selects definitions; empty fields select everything.
type DefinitionFilter struct {
	Code   string // part of the code or the description
	Status string // exactly
	// Q is a search, case-insensitive, in the id, description, status,
	// policy, file and methods.
	Q string
}

func (f DefinitionFilter) match(d Definition) bool {
	if f.Code != "" && !strings.Contains(d.Code, f.Code) && !strings.Contains(d.Description, f.Code) {
		return false
	}
	if f.Status != "" && string(d.Status) != f.Status {
		return false
	}
	if q := strings.ToLower(strings.TrimSpace(f.Q)); q != "" {
		hay := strings.Join([]string{d.ID, d.Description, string(d.Status), d.Policy(), d.File, strings.Join(d.Methods, " ")}, " ")
		return strings.Contains(strings.ToLower(hay), q)
	}
	return true
}

// Definitions are the APIs f selects, whatever their status, in
// repository order.
func Definitions(snap *snapshot.Snapshot, f DefinitionFilter) []Definition {
	list := []Definition{}
	for _, rt := range snap.Routes() {
		if d := DefinitionOf(rt); f.match(d) {
			list = append(list, d)
		}
	}
	return list
}

// Route finds the API of an admin id, code:version (v1 when the version
// is left out), whatever its status; nil when there is none.
func Route(snap *snapshot.Snapshot, id string) *snapshot.Route {
	code, version, found := strings.Cut(id, ":")
	if !found {
		version = "v1"
	}
	return snap.Route(code, version)
}

// FindDefinition is the view of the API of an admin id (see Route).
func FindDefinition(snap *snapshot.Snapshot, id string) (Definition, bool) {
	rt := Route(snap, id)
	if rt == nil {
		return Definition{}, false
	}
	return DefinitionOf(rt), true
}
