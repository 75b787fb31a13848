package replay

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

// Bounds of what is read.
const (
	// MaxLine is the longest JSON line of an export read; a longer one is
	// counted as unreadable and skipped. A captured record is at most
	// storage.accessLog.capture.maxBytes (1 MiB) plus its headers.
	MaxLine = 8 << 20
	// DefaultLimit is how many records are replayed when no limit is given.
	DefaultLimit = 1000
	// MaxLimit bounds --limit.
	MaxLimit = 100000
	// adminPageSize is the page size asked of the admin API (its maximum).
	adminPageSize = 100
	// maxAdminAnswer bounds one page the admin API answers.
	maxAdminAnswer = 256 << 20
)

// Filter selects the records to replay.
type Filter struct {
	Since time.Time // records that started at or after; zero: any
	API   string    // API code; "": any
	Limit int       // at most this many records are handed on; 0: DefaultLimit
}

func (f Filter) limit() int {
	if f.Limit <= 0 {
		return DefaultLimit
	}
	return min(f.Limit, MaxLimit)
}

func (f Filter) matches(r *store.Record) bool {
	return (f.API == "" || r.APICode == f.API) && (f.Since.IsZero() || !r.StartedAt.Before(f.Since))
}

// Source reads records, one at a time: nothing but the record being
// replayed is held.
type Source interface {
	// Each calls fn for each record that matches f, up to f's limit, and
	// returns how many lines or entries it could not read.
	Each(ctx context.Context, f Filter, fn func(*store.Record) error) (unreadable int, err error)
	String() string
}

// Open returns the source from names: an http(s) URL is a gateway's admin
// listener (token: its Bearer token), anything else a JSON-lines export
// file (storage.accessLog.export).
func Open(from, token string) Source {
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		return &Admin{URL: strings.TrimSuffix(from, "/"), Token: token, Client: &http.Client{Timeout: 60 * time.Second}}
	}
	return File(from)
}

// File is a JSON-lines export, oldest records first.
type File string

func (f File) String() string { return string(f) }

// Each reads the file line by line.
func (f File) Each(ctx context.Context, flt Filter, fn func(*store.Record) error) (int, error) {
	fh, err := os.Open(string(f))
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	return eachLine(ctx, fh, flt, fn)
}

func eachLine(ctx context.Context, rd io.Reader, flt Filter, fn func(*store.Record) error) (int, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	bad, n := 0, 0
	var line []byte
	for n < flt.limit() {
		if err := ctx.Err(); err != nil {
			return bad, err
		}
		chunk, err := br.ReadSlice('\n')
		line = append(line[:0], chunk...)
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = br.ReadSlice('\n')
			if len(line) <= MaxLine {
				line = append(line, chunk...)
			} else {
				tooLong = true
			}
		}
		if err != nil && err != io.EOF {
			return bad, err
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var r store.Record
			if tooLong || len(line) > MaxLine || json.Unmarshal(t, &r) != nil {
				bad++
			} else if flt.matches(&r) {
				n++
				if ferr := fn(&r); ferr != nil {
					return bad, ferr
				}
			}
		}
		if err == io.EOF {
			break
		}
		if cap(line) > 1<<20 {
			line = nil // after a huge line
		}
	}
	return bad, nil
}

// Admin is a gateway's admin listener: its access-log pages, newest first,
// captured records only (the others cannot be replayed).
type Admin struct {
	URL    string // the admin listener, e.g. http://127.0.0.1:8081
	Token  string // Bearer token; "": none (a loopback listener without tokens)
	Client *http.Client
}

func (a *Admin) String() string { return a.URL }

// Each pages through the captured records, with the window's end pinned
// to the first page's time so that records written meanwhile do not shift
// the pages.
func (a *Admin) Each(ctx context.Context, flt Filter, fn func(*store.Record) error) (int, error) {
	q := url.Values{"captured": {"true"}, "pageSize": {strconv.Itoa(adminPageSize)}}
	if flt.API != "" {
		q.Set("apiCode", flt.API)
	}
	if !flt.Since.IsZero() {
		q.Set("from", strconv.FormatInt(flt.Since.UnixMilli(), 10))
	}
	q.Set("to", strconv.FormatInt(time.Now().Add(time.Millisecond).UnixMilli(), 10))
	n := 0
	for page := 1; n < flt.limit(); page++ {
		q.Set("pageNo", strconv.Itoa(page))
		list, err := a.page(ctx, q)
		if err != nil {
			return 0, err
		}
		if len(list) == 0 {
			return 0, nil
		}
		for _, r := range list {
			if n >= flt.limit() {
				break
			}
			if !flt.matches(r) {
				continue
			}
			n++
			if err := fn(r); err != nil {
				return 0, err
			}
		}
		if len(list) < adminPageSize {
			return 0, nil
		}
	}
	return 0, nil
}

func (a *Admin) page(ctx context.Context, q url.Values) ([]*store.Record, error) {
	target := a.URL + "/databus/gateway/access-log/page?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxAdminAnswer {
		return nil, fmt.Errorf("%s answered more than %d bytes for one page", a.URL, maxAdminAnswer)
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
		return nil, fmt.Errorf("%s answered HTTP %d, not the admin envelope: %.200s", a.URL, resp.StatusCode, body)
	}
	if reply.Code != 0 || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered HTTP %d: %s", a.URL, resp.StatusCode, reply.Message)
	}
	return reply.Data.List, nil
}
