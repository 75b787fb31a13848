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

// PageSize is the admin API's largest page (its pageSize is 1 to 100).
const PageSize = 100

// MaxReplyBytes bounds one admin API answer (a page of records whose bodies
// are each at most storage.accessLog.maxBodyChars).
const MaxReplyBytes = 64 << 20

// Load aggregates the records of src: an http(s) URL is a gateway's admin
// listener (token: its bearer token, "" none), anything else a file of JSON
// lines as storage.accessLog.export writes them ("-": standard input).
func Load(ctx context.Context, src, token string, o Options) (*Aggregate, error) {
	g := New(src, o)
	var err error
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		err = g.FetchAdmin(ctx, nil, src, token)
	} else {
		err = g.ReadFile(src)
	}
	if err != nil {
		return nil, err
	}
	g.Finish()
	return g, nil
}

// ReadFile aggregates a JSON-lines file.
func (g *Aggregate) ReadFile(path string) error {
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return g.ReadLines(r, path)
}

// ReadLines aggregates JSON lines, one store.Record each. Blank lines are
// skipped; a line that is not a record is an error naming name:line.
// Lines longer than MaxLineBytes are refused.
func (g *Aggregate) ReadLines(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec store.Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("%s:%d: not an access-log record (JSON lines of storage.accessLog.export expected): %v", name, line, err)
		}
		g.Add(&rec)
		if g.Full() {
			g.Limited = true
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, MaxLineBytes)
		}
		return fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return nil
}

// FetchAdmin pages through the access log of a gateway's admin listener
// (GET /databus/gateway/access-log/page), newest first, until the records
// end, the window of Options.Since is passed, or Options.Limit records
// were aggregated. The upper end of the range is fixed when it starts and
// moves down with each page, so records written meanwhile neither shift
// nor repeat the pages. client nil: a client with a 30 s timeout per page.
func (g *Aggregate) FetchAdmin(ctx context.Context, client *http.Client, admin, token string) error {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimSuffix(admin, "/") + "/databus/gateway/access-log/page"
	upper := g.opts.Now.Add(time.Nanosecond) // records up to Now, inclusive
	seen := map[string]bool{}                // ids aggregated of the nanosecond prevLow
	var prevLow time.Time
	for !g.Full() {
		q := url.Values{}
		if g.opts.API != "" {
			q.Set("apiCode", g.opts.API)
		}
		if g.opts.Since > 0 {
			q.Set("from", g.opts.Now.Add(-g.opts.Since).UTC().Format(time.RFC3339Nano))
		}
		q.Set("to", upper.UTC().Format(time.RFC3339Nano))
		q.Set("pageNo", "1")
		q.Set("pageSize", strconv.Itoa(PageSize))
		list, err := fetchPage(ctx, client, base+"?"+q.Encode(), token)
		if err != nil {
			return fmt.Errorf("%s: %w", admin, err)
		}
		fresh := 0
		var low time.Time
		nextSeen := map[string]bool{}
		for _, r := range list {
			if low.IsZero() || r.StartedAt.Before(low) {
				low = r.StartedAt
			}
		}
		for _, r := range list {
			if r.StartedAt.Equal(low) {
				nextSeen[r.ID] = true
			}
			if seen[r.ID] {
				continue
			}
			fresh++
			g.Add(r)
			if g.Full() {
				g.Limited = true
				return nil
			}
		}
		if len(list) < PageSize {
			return nil // the last page
		}
		if fresh == 0 {
			// A whole page in one nanosecond, all seen: go below it.
			upper, seen, prevLow = low, map[string]bool{}, time.Time{}
			continue
		}
		// The next page ends at the oldest record's time, inclusive (its
		// siblings of the same nanosecond may be on it), skipping the
		// records of that nanosecond already aggregated.
		upper = low.Add(time.Nanosecond)
		if !low.Equal(prevLow) {
			seen = map[string]bool{}
		}
		for id := range nextSeen {
			seen[id] = true
		}
		prevLow = low
	}
	g.Limited = true
	return nil
}

func fetchPage(ctx context.Context, client *http.Client, target, token string) ([]*store.Record, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxReplyBytes {
		return nil, fmt.Errorf("an access-log page larger than %d bytes", MaxReplyBytes)
	}
	var reply struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Total int             `json:"total"`
			List  []*store.Record `json:"list"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, fmt.Errorf("answered HTTP %d, not the admin envelope: %.200s", resp.StatusCode, body)
	}
	if reply.Code != 0 || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered HTTP %d: %s", resp.StatusCode, reply.Message)
	}
	return reply.Data.List, nil
}
