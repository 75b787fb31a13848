package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"
)

// Page sizes: a pageSize <= 0 asks for DefaultPageSize, a larger one than
// MaxPageSize gets MaxPageSize.
const (
	DefaultPageSize = 20
	MaxPageSize     = 1000
)

// Filter selects records for Page. Empty fields match anything.
type Filter struct {
	TraceID, APICode, AppID string
	Status                  *int         // a Status* value; nil = any
	HTTPStatus              *StatusRange // HTTPStatus within; nil = any
	From, To                time.Time    // StartedAt in [From, To); zero = open
	Captured                bool         // only records holding a whole capture
}

// StatusRange selects HTTP statuses from Min to Max, both included: 404
// to 404 for one status, 400 to 499 for a class.
type StatusRange struct{ Min, Max int }

func (f Filter) matches(p *probe) bool {
	return (f.TraceID == "" || p.TraceID == f.TraceID) &&
		(f.APICode == "" || p.APICode == f.APICode) &&
		(f.AppID == "" || p.AppID == f.AppID) &&
		(f.Status == nil || p.Status == *f.Status) &&
		(f.HTTPStatus == nil || p.HTTPStatus >= f.HTTPStatus.Min && p.HTTPStatus <= f.HTTPStatus.Max) &&
		(!f.Captured || p.Capture.Kept())
}

// Get returns the record with that id, or an error wrapping ErrNotFound.
func (l *AccessLog) Get(id string) (*Record, error) {
	k, ok := parseKey(id)
	if !ok {
		return nil, fmt.Errorf("access log record %q: %w", id, ErrNotFound)
	}
	var r *Record
	err := l.db.bolt.View(func(tx *bbolt.Tx) error {
		v := tablesOf(tx).log.Get(k[:])
		if v == nil {
			return fmt.Errorf("access log record %q: %w", id, ErrNotFound)
		}
		r = decodeRecord(k[:], v)
		return nil
	})
	return r, err
}

// Page returns page pageNo (from 1) of the records matching f, newest
// first, and how many match in all. Records are in key order, a total
// order, so consecutive pages of the same query over the same records are
// disjoint and together hold every match. Records written between two
// calls shift later pages; pin To to page through a fixed window, or page
// by cursor with Before, which neither counts nor skips.
//
// A TraceID (else an APICode) is looked up in its index and From/To in
// the time-ordered key; AppID and Status are checked record by record over
// what those leave, so pair them with a time window on a large log.
func (l *AccessLog) Page(f Filter, pageNo, pageSize int) (list []*Record, total int, err error) {
	pageNo = max(pageNo, 1)
	pageSize = pageLen(pageSize)
	skip := math.MaxInt - pageSize
	if pageNo-1 < skip/pageSize {
		skip = (pageNo - 1) * pageSize
	}
	list = []*Record{}
	err = l.db.bolt.View(func(tx *bbolt.Tx) error {
		t := tablesOf(tx)
		// No filter at all: the kept count is the total; stop after the page.
		counted := f == Filter{}
		if counted {
			total = t.count()
		}
		n := 0 // matches so far
		scan(t, f, nil, func(rk []byte) bool { return n >= skip && n-skip < pageSize }, func(rk, v []byte) bool {
			if v != nil {
				list = append(list, decodeRecord(rk, v))
			}
			n++
			return !counted || n < skip+pageSize
		})
		if !counted {
			total = n
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("access log: %w", err)
	}
	return list, total, nil
}

// Before returns up to pageSize records matching f that are older than the
// record whose id is cursor ("": from the newest), newest first, and the
// cursor of the next page: the id of the last record listed, "" when no
// older record matches. Its cost is the page's, whatever the page's depth:
// nothing is counted or skipped, and records written meanwhile, newer than
// the cursor, do not shift the pages.
func (l *AccessLog) Before(f Filter, cursor string, pageSize int) (list []*Record, next string, err error) {
	var before []byte
	if cursor != "" {
		k, ok := parseKey(cursor)
		if !ok {
			return nil, "", fmt.Errorf("access log cursor %q: %w", cursor, ErrBadCursor)
		}
		before = k[:]
	}
	pageSize = pageLen(pageSize)
	list = []*Record{}
	err = l.db.bolt.View(func(tx *bbolt.Tx) error {
		more := false
		scan(tablesOf(tx), f, before, func([]byte) bool { return len(list) < pageSize }, func(rk, v []byte) bool {
			if v == nil { // a match beyond the page: there is a next one
				more = true
				return false
			}
			list = append(list, decodeRecord(rk, v))
			return true
		})
		if more {
			next = list[len(list)-1].ID
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("access log: %w", err)
	}
	return list, next, nil
}

func pageLen(pageSize int) int {
	if pageSize <= 0 {
		return DefaultPageSize
	}
	return min(pageSize, MaxPageSize)
}

// scan calls match for each record matching f in [From, To) and older
// than the key before (nil: no bound), newest first, until it returns
// false: with the record's key, and its stored value when want(key) asks
// for it (nil otherwise).
//
// A TraceID (else an APICode) is read from its index; the other fields
// are checked on the record itself.
func scan(t tables, f Filter, before []byte, want func(rk []byte) bool, match func(rk, v []byte) bool) {
	var from, to []byte
	if !f.From.IsZero() {
		from = timeKey(f.From)
	}
	if !f.To.IsZero() {
		to = timeKey(f.To)
	}
	if before != nil && (to == nil || bytes.Compare(before, to) < 0) {
		to = before
	}
	src, prefix := t.log, []byte(nil)
	byTrace, byAPI := indexable(f.TraceID), false
	switch {
	case byTrace:
		src, prefix = t.trace, []byte(f.TraceID+"\x00")
	case indexable(f.APICode):
		byAPI = true
		src, prefix = t.api, []byte(f.APICode+"\x00")
	}
	needProbe := f.AppID != "" || f.Status != nil || f.HTTPStatus != nil || f.Captured ||
		(f.TraceID != "" && !byTrace) || (f.APICode != "" && !byAPI)
	lo, hi := from, to
	if prefix != nil {
		lo = append(bytes.Clone(prefix), from...)
		if to != nil {
			hi = append(bytes.Clone(prefix), to...)
		} else {
			hi = bytes.Clone(prefix)
			hi[len(hi)-1] = 1 // just past every value+0x00+key
		}
	}
	reverse(src.Cursor(), lo, hi, func(k, v []byte) bool {
		rk := k
		if prefix != nil {
			// Exactly value+0x00+key: a longer value sharing the prefix
			// (one containing 0x00) is not this one.
			if len(k) != len(prefix)+keyLen {
				return true
			}
			rk, v = k[len(prefix):], nil
		}
		wanted := want(rk)
		if v == nil && (needProbe || wanted) {
			if v = t.log.Get(rk); v == nil {
				return true // cannot happen: index entries go with their record
			}
		}
		if needProbe {
			var p probe
			pv, err := plain(v)
			if err != nil || json.Unmarshal(pv, &p) != nil || !f.matches(&p) {
				return true
			}
		}
		if !wanted {
			v = nil
		}
		return match(rk, v)
	})
}

// decodeRecord never fails: a record that does not decode comes back as
// its id and the reason, so one bad value cannot break paging.
func decodeRecord(k, v []byte) *Record {
	r := &Record{}
	v, err := plain(v)
	if err == nil {
		err = json.Unmarshal(v, r)
	}
	if err != nil {
		var kk key
		copy(kk[:], k)
		return &Record{ID: kk.String(), Status: StatusUnknown, ErrorMessage: "stored record unreadable: " + err.Error()}
	}
	return r
}

// reverse calls fn for the keys in [lo, hi) (nil: open), highest first,
// until fn returns false.
func reverse(c *bbolt.Cursor, lo, hi []byte, fn func(k, v []byte) bool) {
	var k, v []byte
	if hi == nil {
		k, v = c.Last()
	} else if k, _ = c.Seek(hi); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && (lo == nil || bytes.Compare(k, lo) >= 0); k, v = c.Prev() {
		if !fn(k, v) {
			return
		}
	}
}
