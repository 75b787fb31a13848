package view

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/store"
)

// AccessLogFilter reads the access-log filters of a query: traceId,
// apiCode, appId, status (0 success, 1 client error, 2 server error, 3
// unknown), from and to (RFC 3339 or Unix milliseconds), captured (true:
// only records holding a whole capture, see storage.accessLog.capture).
func AccessLogFilter(q url.Values) (store.Filter, error) {
	f := store.Filter{TraceID: q.Get("traceId"), APICode: q.Get("apiCode"), AppID: q.Get("appId")}
	if s := q.Get("status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3 {
			return f, errors.New("status must be 0 (success), 1 (client error), 2 (server error) or 3 (unknown)")
		}
		f.Status = &n
	}
	switch q.Get("captured") {
	case "", "false", "0":
	case "true", "1":
		f.Captured = true
	default:
		return f, errors.New("captured must be true or false")
	}
	var err error
	if f.From, err = parseTime(q.Get("from")); err != nil {
		return f, errors.New("from must be RFC 3339 or Unix milliseconds")
	}
	if f.To, err = parseTime(q.Get("to")); err != nil {
		return f, errors.New("to must be RFC 3339 or Unix milliseconds")
	}
	return f, nil
}

// AccessLogPageFilter is AccessLogFilter with status as the admin pages
// show it in the Status column: an HTTP status (404) or a class (4xx).
// The REST API keeps status 0-3 (AccessLogFilter).
func AccessLogPageFilter(q url.Values) (store.Filter, error) {
	rest := url.Values{}
	for k, v := range q {
		if k != "status" {
			rest[k] = v
		}
	}
	f, err := AccessLogFilter(rest)
	if err != nil {
		return f, err
	}
	if s := strings.TrimSpace(q.Get("status")); s != "" {
		f.HTTPStatus, err = HTTPStatusRange(s)
	}
	return f, err
}

// HTTPStatusRange reads an HTTP status (100 to 599) or a class (1xx to
// 5xx, any case).
func HTTPStatusRange(s string) (*store.StatusRange, error) {
	bad := fmt.Errorf("status %q: expected an HTTP status (404) or a class (2xx, 3xx, 4xx, 5xx), as the Status column shows them", s)
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return nil, bad
	}
	if rest := strings.ToLower(s[1:]); rest == "xx" {
		lo := int(s[0]-'0') * 100
		return &store.StatusRange{Min: lo, Max: lo + 99}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 {
		return nil, bad
	}
	return &store.StatusRange{Min: n, Max: n}, nil
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
