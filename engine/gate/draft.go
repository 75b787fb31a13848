package gate

import (
	"errors"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Draft is the gate of a draft API sent to the debug invoke: it checks src
// (YAML or JSON text) like a file of apis/ named name, against snap's
// repository (its policies and credentials), and compiles it with snap's
// resources. Its findings are positioned in src like any file's.
func Draft(snap *snapshot.Snapshot, name string, src []byte) (*flow.Flow, *config.Api, config.Diagnostics) {
	api, diags := config.ParseAPI(snap.Repo, name, src)
	if api == nil || diags.HasErrors() {
		return nil, nil, diags
	}
	f, err := flow.Compile(api, snap.Env)
	if err != nil {
		var fault *config.Fault
		if errors.As(err, &fault) {
			diags = append(diags, config.PlaceIn(fault.File, src, fault.Pointer, fault.ScriptLine, fault.ScriptColumn, config.SevError, fault.Err.Error()))
		} else {
			diags = append(diags, config.Diagnostic{File: api.Source.File, Line: 1, Column: 1, Severity: config.SevError, Message: err.Error()})
		}
		diags.Sort()
		return nil, nil, diags
	}
	return f, api, diags
}
