package traffic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/store"
)

// Bounds of reading.
const (
	// PageSize is how many records one admin API page asks for: small,
	// so that a page (and what decoding it holds, several times its bytes)
	// stays small; by cursor, more pages cost no more per record.
	PageSize = 10
	// MaxReplyBytes bounds one admin API answer: a page of PageSize
	// records, captured ones each up to storage.accessLog.capture.maxBytes
	// (1 MiB) plus bodies of up to storage.accessLog.maxBodyChars.
	MaxReplyBytes = 32 << 20
	// MaxLineBytes bounds one JSON line of an export file.
	MaxLineBytes = 16 << 20
	// PageTimeout bounds one admin API request when Source.Client is nil.
	PageTimeout = 60 * time.Second
)

// Stop, returned by Each's fn, ends the reading early; Each returns nil.
var Stop = errors.New("stop reading")

// Source is where access-log records come from.
type Source struct {
	// From is a gateway's admin listener (an http:// or https:// URL),
	// else a file of JSON lines as storage.accessLog.export writes them,
	// oldest first ("-": standard input).
	From string
	// Token is the admin listener's bearer token; "": none (a loopback
	// listener without tokens).
	Token string
	// Client makes the admin requests; nil: one with PageTimeout.
	Client *http.Client
	// Unreadable, when set, is told of each line of a file that is not a
	// record (the error names file:line) and reading goes on; nil: such a
	// line ends the reading with that error.
	Unreadable func(error)
}

// Admin reports whether the source is an admin listener.
func (s Source) Admin() bool {
	return strings.HasPrefix(s.From, "http://") || strings.HasPrefix(s.From, "https://")
}

func (s Source) String() string { return s.From }

// Filter selects the records Each hands on.
type Filter struct {
	Since time.Time // records that started at or after; zero: any age
	API   string    // API code; "": any
	Limit int       // records handed on at most; 0: no limit
	// CapturedOnly: only records that hold a whole capture
	// (storage.accessLog.capture), the ones a replay can run.
	CapturedOnly bool
}

func (f Filter) matches(r *store.Record) bool {
	return (f.API == "" || r.APICode == f.API) &&
		(f.Since.IsZero() || !r.StartedAt.Before(f.Since)) &&
		(!f.CapturedOnly || r.Capture.Kept())
}

// Each calls fn for each record of src that f selects, one at a time: an
// export file is read line by line, the admin API page by page (newest
// first), and nothing but the current line or page is held. It stops at
// f.Limit records, at the end of the records, when fn returns Stop (then
// Each returns nil) or another error (returned as is), or when ctx ends.
func Each(ctx context.Context, src Source, f Filter, fn func(*store.Record) error) error {
	n := 0
	hand := func(r *store.Record) error {
		if !f.matches(r) {
			return nil
		}
		n++
		if err := fn(r); err != nil {
			return err
		}
		if f.Limit > 0 && n >= f.Limit {
			return Stop
		}
		return nil
	}
	var err error
	if src.Admin() {
		err = eachAdmin(ctx, src, f, hand)
	} else {
		err = eachFile(ctx, src, hand)
	}
	if errors.Is(err, Stop) {
		return nil
	}
	return err
}

func eachFile(ctx context.Context, src Source, fn func(*store.Record) error) error {
	var r io.Reader
	if src.From == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(src.From)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return eachLine(ctx, r, src.From, src.Unreadable, fn)
}

// eachLine reads JSON lines, one store.Record each. Blank lines are
// skipped; a line that is not a record, or is longer than MaxLineBytes,
// is an error naming name:line, handed to bad when it is set (and the
// reading goes on), returned otherwise.
func eachLine(ctx context.Context, rd io.Reader, name string, bad func(error), fn func(*store.Record) error) error {
	br := bufio.NewReaderSize(rd, 64<<10)
	var line []byte
	for no := 1; ; no++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk, err := br.ReadSlice('\n')
		line = append(line[:0], chunk...)
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = br.ReadSlice('\n')
			if len(line) <= MaxLineBytes {
				line = append(line, chunk...)
			} else {
				tooLong = true // the rest of the line is read and dropped
			}
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s:%d: %w", name, no, err)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var rec store.Record
			var lineErr error
			if tooLong || len(t) > MaxLineBytes {
				lineErr = fmt.Errorf("%s:%d: line longer than %d bytes", name, no, MaxLineBytes)
			} else if jerr := json.Unmarshal(t, &rec); jerr != nil {
				lineErr = fmt.Errorf("%s:%d: not an access-log record (JSON lines of storage.accessLog.export expected): %v", name, no, jerr)
			}
			switch {
			case lineErr != nil && bad == nil:
				return lineErr
			case lineErr != nil:
				bad(lineErr)
			default:
				if ferr := fn(&rec); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if cap(line) > 1<<20 {
			line = nil // after a huge line
		}
	}
}

// eachAdmin pages through the access log of a gateway's admin listener
// (GET /databus/gateway/access-log/page), newest first, by cursor: the
// first page with noTotal=true, each next one with before=<the id of the
// last record of the page before>. A page costs the gateway its own
// records only (no count, no skip), and records written meanwhile, newer
// than the cursor, neither shift nor repeat the pages.
func eachAdmin(ctx context.Context, src Source, f Filter, fn func(*store.Record) error) error {
	client := src.Client
	if client == nil {
		client = &http.Client{Timeout: PageTimeout}
	}
	admin := strings.TrimSuffix(src.From, "/")
	q := url.Values{"pageSize": {strconv.Itoa(PageSize)}, "noTotal": {"true"}}
	if f.API != "" {
		q.Set("apiCode", f.API)
	}
	if !f.Since.IsZero() {
		q.Set("from", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.CapturedOnly {
		q.Set("captured", "true")
	}
	for {
		list, next, err := fetchPage(ctx, client, admin+"/databus/gateway/access-log/page?"+q.Encode(), src.Token)
		if err != nil {
			return fmt.Errorf("%s: %w", admin, err)
		}
		for _, r := range list {
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		if next == q.Get("before") {
			return fmt.Errorf("%s: the access-log cursor did not move past %s", admin, next)
		}
		q.Del("noTotal")
		q.Set("before", next)
	}
}

// fetchPage asks one page by cursor: its records and the next cursor.
func fetchPage(ctx context.Context, client *http.Client, target, token string) ([]*store.Record, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return nil, "", err
	}
	if len(body) > MaxReplyBytes {
		return nil, "", fmt.Errorf("an access-log page larger than %d bytes", MaxReplyBytes)
	}
	var reply struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			List []*store.Record `json:"list"`
			Next *string         `json:"next"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, "", fmt.Errorf("answered HTTP %d, not the admin envelope: %.200s", resp.StatusCode, body)
	}
	if reply.Code != 0 || resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("answered HTTP %d: %s", resp.StatusCode, reply.Message)
	}
	if reply.Data.Next == nil {
		// A gateway from before access-log/page took a cursor answers
		// page 1 with a total, again and again.
		return nil, "", errors.New("the access-log page has no next cursor: the gateway does not page by cursor (access-log/page before=); run a databus at least as new as this one")
	}
	return reply.Data.List, *reply.Data.Next, nil
}

// Load aggregates the records src yields under the filters of o.
func Load(ctx context.Context, src Source, o Options) (*Aggregate, error) {
	g := New(src.From, o)
	f := Filter{API: g.opts.API}
	if g.opts.Since > 0 {
		f.Since = g.opts.Now.Add(-g.opts.Since)
	}
	err := Each(ctx, src, f, func(r *store.Record) error {
		if g.Full() {
			g.Limited = true
			return Stop
		}
		g.Add(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	g.Finish()
	return g, nil
}
