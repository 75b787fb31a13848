package impact

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/replay"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/traffic"
)

// Responses is the response check of diff --traffic: the captured records
// (storage.accessLog.capture) of the changed APIs replayed against the new
// revision (engine/replay, through the sandbox the gate builds), and the
// APIs whose answers differ. Made false: no check was made, and Note says
// why.
type Responses struct {
	Made          bool                      `json:"made"`
	Note          string                    `json:"note,omitempty"`
	Replayed      int                       `json:"replayed"` // records compared
	Differ        int                       `json:"differ"`
	NotReplayable int                       `json:"notReplayable"`
	APIs          map[string]ResponseResult `json:"apis,omitempty"` // by code:version
}

// Check is a ResponseCheck over r (nil: none).
func (r *Responses) Check(apiID string) (ResponseResult, bool) {
	if r == nil || !r.Made {
		return ResponseResult{}, false
	}
	res, ok := r.APIs[apiID]
	return res, ok && res.Compared > 0
}

// NotChecked is a Responses that says why no check was made.
func NotChecked(why string) *Responses { return &Responses{Note: why} }

// ResponseOptions bound CheckResponses.
type ResponseOptions struct {
	// Filter selects the records read (Since, API, Limit: records read at
	// most, of any API); CapturedOnly is set.
	Filter traffic.Filter
	// PerAPI bounds the records replayed per changed API; 0:
	// replay.DefaultLimit.
	PerAPI int
	Logger *slog.Logger
}

// ChangedAPIs lists the APIs (code:version) a diff changed or added.
func ChangedAPIs(d *gitops.RepoDiff) []string {
	var out []string
	if d == nil {
		return nil
	}
	for _, doc := range d.Docs {
		if doc.Kind == gitops.DocApi && doc.Status != gitops.StatusRemoved {
			out = append(out, doc.ID)
		}
	}
	sort.Strings(out)
	return out
}

// CheckResponses replays the captured records of apis (code:version) that
// src holds against the config folder dir (the new revision, named rev),
// at most o.PerAPI per API, one record at a time. The gate builds dir: a
// revision it refuses is not checked (Note says so).
func CheckResponses(ctx context.Context, dir, rev string, src traffic.Source, apis []string, o ResponseOptions) (*Responses, error) {
	if len(apis) == 0 {
		return NotChecked("no API changed: no response check"), nil
	}
	perAPI := o.PerAPI
	if perAPI <= 0 {
		perAPI = replay.DefaultLimit
	}
	want := map[string]int{} // replayed so far, by API
	for _, id := range apis {
		want[id] = 0
	}
	f := o.Filter
	f.CapturedOnly = true
	if codes := codesOf(apis); len(codes) == 1 && (f.API == "" || f.API == codes[0]) {
		f.API = codes[0] // the admin API reads its apiCode index
	}
	full := 0
	sel := func(r *store.Record) (bool, error) {
		n, ok := want[r.APICode+":"+r.Version]
		if !ok || n >= perAPI {
			return false, nil
		}
		want[r.APICode+":"+r.Version] = n + 1
		if n+1 == perAPI {
			full++
		}
		if full == len(want) {
			return true, traffic.Stop // every API has its share: this one is the last
		}
		return true, nil
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rep, res, err := replay.Run(ctx, dir, src, replay.Options{Filter: f, Logger: logger, Candidate: rev, Select: sel})
	if res.Err != nil {
		return nil, res.Err
	}
	if rep == nil && err == nil {
		return NotChecked("the gate refuses the new revision: no response check"), nil
	}
	if err != nil {
		return nil, err
	}
	out := &Responses{APIs: map[string]ResponseResult{}}
	for _, s := range rep.APIs {
		r := ResponseResult{Compared: s.Identical + s.Differ, Differ: s.Differ, NotReplayable: s.NotReplayed}
		if len(s.Details) > 0 {
			r.First = fmt.Sprintf("trace %s: %s", s.Details[0].TraceID, s.Details[0].First())
		}
		out.APIs[s.API] = r
		out.Replayed += r.Compared
		out.Differ += r.Differ
		out.NotReplayable += r.NotReplayable
	}
	if rep.Records == 0 {
		return NotChecked(fmt.Sprintf("no captured records of %s in the traffic (storage.accessLog.capture): no response check made", listed(apis, 5, "API"))), nil
	}
	out.Made = true
	return out, nil
}

func codesOf(apis []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range apis {
		code, _, _ := strings.Cut(id, ":")
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	return out
}
