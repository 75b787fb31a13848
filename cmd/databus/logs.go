package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/store"
)

func runLogs(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("logs", "[--trace ID] [--api CODE] [--since DUR] [--admin URL --token ...]",
		"query the access log through the admin API", stderr)
	admin := fs.String("admin", "http://127.0.0.1:8081", "admin listener URL")
	token := fs.String("token", "", "admin token (default: $DATABUS_ADMIN_TOKEN)")
	tokenFile := fs.String("token-file", "", "file holding the admin token")
	trace := fs.String("trace", "", "trace id")
	api := fs.String("api", "", "API code")
	app := fs.String("app", "", "appId")
	status := fs.String("status", "", "0 success, 1 client error, 2 server error, 3 unknown")
	since := fs.Duration("since", 0, "only records of the last DUR (e.g. 15m, 24h)")
	limit := fs.Int("limit", 20, "records to show (at most 100)")
	asJSON := fs.Bool("json", false, "print the records as JSON, one per line")
	id := fs.String("id", "", "show one record in full")
	captured := fs.Bool("captured", false, "only records kept whole by storage.accessLog.capture (what databus replay runs)")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "databus logs: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	tok, err := adminToken(*token, *tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "databus logs: %v\n", err)
		return exitUsage
	}
	base := strings.TrimSuffix(*admin, "/") + "/databus/gateway/access-log/"
	var target string
	if *id != "" {
		target = base + "get?id=" + url.QueryEscape(*id)
	} else {
		q := url.Values{}
		for k, v := range map[string]string{"traceId": *trace, "apiCode": *api, "appId": *app, "status": *status} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *captured {
			q.Set("captured", "true")
		}
		if *since > 0 {
			q.Set("from", strconv.FormatInt(time.Now().Add(-*since).UnixMilli(), 10))
		}
		q.Set("pageNo", "1")
		q.Set("pageSize", strconv.Itoa(min(max(*limit, 1), 100)))
		target = base + "page?" + q.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "databus logs: %v\n", err)
		return exitUsage
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "databus logs: %v\n", err)
		return exitInvalid
	}
	defer resp.Body.Close()
	var reply struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &reply); err != nil {
		fmt.Fprintf(stderr, "databus logs: %s answered HTTP %d, not the admin envelope: %.200s\n", *admin, resp.StatusCode, body)
		return exitInvalid
	}
	if reply.Code != 0 || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "databus logs: %s answered HTTP %d: %s\n", *admin, resp.StatusCode, reply.Message)
		return exitInvalid
	}
	var records []*store.Record
	if *id != "" {
		var r store.Record
		if err := json.Unmarshal(reply.Data, &r); err != nil {
			fmt.Fprintf(stderr, "databus logs: %v\n", err)
			return exitInvalid
		}
		records = []*store.Record{&r}
	} else {
		var page struct {
			Total int             `json:"total"`
			List  []*store.Record `json:"list"`
		}
		if err := json.Unmarshal(reply.Data, &page); err != nil {
			fmt.Fprintf(stderr, "databus logs: %v\n", err)
			return exitInvalid
		}
		records = page.List
		if !*asJSON {
			fmt.Fprintf(stderr, "%d of %d records\n", len(records), page.Total)
		}
	}
	full := *id != "" || *trace != ""
	for _, r := range records {
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(stdout, string(b))
			continue
		}
		printRecord(stdout, r, full)
	}
	return exitOK
}

// printRecord writes a record as one line, and with full its steps and
// bodies too.
func printRecord(w io.Writer, r *store.Record, full bool) {
	api := r.APICode
	if r.Version != "" {
		api += ":" + r.Version
	}
	if api == "" {
		api = "-"
	}
	line := fmt.Sprintf("%s %d %s %s %s app=%s %.1fms trace=%s id=%s",
		r.StartedAt.Local().Format("2006-01-02 15:04:05.000"), r.HTTPStatus, r.Method, r.Path, api, orDash(r.AppID), r.DurationMs, r.TraceID, r.ID)
	if r.ErrorMessage != "" {
		line += fmt.Sprintf(" error=%s: %s", r.ErrorCode, r.ErrorMessage)
	}
	fmt.Fprintln(w, line)
	if !full {
		return
	}
	if c := r.Capture; c != nil {
		if c.Kept() {
			fmt.Fprintf(w, "  captured: %d bytes whole, query %q\n", c.Bytes, c.Query)
		} else {
			fmt.Fprintf(w, "  not captured: %s\n", c.Skipped)
		}
	}
	if r.RequestBody != "" {
		fmt.Fprintf(w, "  request:  %s\n", r.RequestBody)
	}
	if r.ResponseBody != "" {
		fmt.Fprintf(w, "  response: %s\n", r.ResponseBody)
	}
	for _, s := range r.StepResults {
		status := ""
		if s.Status != 0 {
			status = fmt.Sprintf(" status=%d", s.Status)
		}
		switch {
		case s.Skipped:
			fmt.Fprintf(w, "  step %-12s %-7s skipped\n", s.ID, s.Type)
		case s.Error != "":
			attempts := ""
			if s.Attempts > 1 {
				attempts = fmt.Sprintf(" attempts=%d", s.Attempts)
			}
			fmt.Fprintf(w, "  step %-12s %-7s %7.1fms%s%s error: %s\n", s.ID, s.Type, s.ElapsedMs, status, attempts, s.Error)
		default:
			fmt.Fprintf(w, "  step %-12s %-7s %7.1fms%s\n", s.ID, s.Type, s.ElapsedMs, status)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
