package replay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/sandbox"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/traffic"
)

// Bounds of a replay.
const (
	// DefaultLimit is how many records are replayed when no limit is given.
	DefaultLimit = 1000
	// MaxLimit bounds --limit.
	MaxLimit = 100000
)

// Options configure Run.
type Options struct {
	// Filter selects the records; its Limit 0 is DefaultLimit, and it is
	// at most MaxLimit.
	Filter traffic.Filter
	Logger *slog.Logger
	// Candidate names the candidate in the report (a folder or a revision).
	Candidate string
	// Select, when set, is asked about each record read: replay it, or
	// pass it by (it is neither replayed nor counted). An error ends the
	// reading after this record (traffic.Stop quietly).
	Select func(*store.Record) (bool, error)
}

// Run builds dir through the gate (in a sandbox) and replays the records
// src yields (engine/traffic reads them). When the gate refuses dir, the
// report is nil and res holds the findings. Records are replayed one at a
// time as they are read; lines of an export that are not records are
// counted in Report.Unreadable.
func Run(ctx context.Context, dir string, src traffic.Source, o Options) (*Report, gate.Result, error) {
	sb, res, err := sandbox.Open(ctx, dir, sandbox.Options{Logger: o.Logger})
	if err != nil || sb == nil {
		return nil, res, err
	}
	defer sb.Close()
	rp := New(sb)
	rep := &Report{Source: src.String(), Candidate: o.Candidate}
	flt := o.Filter
	if flt.Limit <= 0 {
		flt.Limit = DefaultLimit
	}
	flt.Limit = min(flt.Limit, MaxLimit)
	src.Unreadable = func(error) { rep.Unreadable++ }
	err = traffic.Each(ctx, src, flt, func(r *store.Record) error {
		ok, serr := true, error(nil)
		if o.Select != nil {
			ok, serr = o.Select(r)
		}
		if ok {
			rep.Add(rp.Replay(ctx, r))
		}
		return serr
	})
	if err != nil {
		return rep, res, fmt.Errorf("reading records: %w", err)
	}
	return rep, res, nil
}
