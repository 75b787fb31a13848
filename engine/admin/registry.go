package admin

import "net/http"

// registryServers lists the registered servers (GET registry/servers).
func (a *API) registryServers(w http.ResponseWriter, r *http.Request) {
	list, err := a.reg.Servers(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "reading the registry: %v", err)
		return
	}
	ok(w, map[string]any{"list": list, "total": len(list), "shared": a.reg.Shared()})
}

// registryServices lists the registered services with the URL each
// resolves to now (GET registry/services).
func (a *API) registryServices(w http.ResponseWriter, r *http.Request) {
	list, err := a.reg.Views(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "reading the registry: %v", err)
		return
	}
	ok(w, map[string]any{"list": list, "total": len(list), "shared": a.reg.Shared()})
}
