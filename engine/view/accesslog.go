package view

import (
	"errors"
	"net/url"
	"strconv"
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
