package replay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/sandbox"
	"github.com/databus-gateway/databus/engine/store"
)

// Options configure Run.
type Options struct {
	Filter Filter
	Logger *slog.Logger
	// Candidate names the candidate in the report (a folder or a revision).
	Candidate string
}

// Run builds dir through the gate (in a sandbox) and replays the records
// src yields. When the gate refuses dir, the report is nil and res holds
// the findings. Records are replayed one at a time as they are read.
func Run(ctx context.Context, dir string, src Source, o Options) (*Report, gate.Result, error) {
	sb, res, err := sandbox.Open(ctx, dir, sandbox.Options{Logger: o.Logger})
	if err != nil || sb == nil {
		return nil, res, err
	}
	defer sb.Close()
	rp := New(sb)
	rep := &Report{Source: src.String(), Candidate: o.Candidate}
	bad, err := src.Each(ctx, o.Filter, func(r *store.Record) error {
		rep.Add(rp.Replay(ctx, r))
		return nil
	})
	rep.Unreadable = bad
	if err != nil {
		return rep, res, fmt.Errorf("reading %s: %w", src, err)
	}
	return rep, res, nil
}
