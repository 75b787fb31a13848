package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/store"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func line(r *store.Record) string {
	b, _ := json.Marshal(r)
	return string(b) + "\n"
}

func TestAggregate(t *testing.T) {
	var in strings.Builder
	for i := range 5 {
		in.WriteString(line(&store.Record{APICode: "a", Version: "v1", AppID: "shop", Method: "POST", ClientIP: "10.0.0.1", TenantID: "t1",
			RequestBody: `{"n":1}`, HTTPStatus: 200, StartedAt: t0.Add(time.Duration(i) * time.Second)}))
	}
	in.WriteString("\n") // blank lines are skipped
	in.WriteString(line(&store.Record{APICode: "a", Version: "v1", AppID: "mall", Method: "GET", ClientIP: "10.0.0.2", HTTPStatus: 500, ErrorCode: "flow",
		RequestBody: store.Truncate(strings.Repeat("x", 100), 10), StartedAt: t0.Add(90 * time.Second)}))
	in.WriteString(line(&store.Record{APICode: "a", Version: "v1", AppID: "evil", Method: "POST", HTTPStatus: 401, ErrorCode: "signature", StartedAt: t0}))
	in.WriteString(line(&store.Record{APICode: "b", Version: "v2", AppID: "shop", Method: "POST", HTTPStatus: 200, StartedAt: t0.Add(-48 * time.Hour)}))
	in.WriteString(line(&store.Record{HTTPStatus: 404, StartedAt: t0})) // no API

	file := filepath.Join(t.TempDir(), "x.jsonl")
	os.WriteFile(file, []byte(in.String()), 0o644)
	g, err := Load(context.Background(), Source{From: file}, Options{Now: t0.Add(2 * time.Minute), Since: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The record older than Since is not read; the one of no API is skipped.
	if g.Records != 7 || g.Skipped != 1 || len(g.APIs) != 1 || g.Limited {
		t.Fatalf("records %d skipped %d apis %v", g.Records, g.Skipped, g.APIs)
	}
	a := g.API("a:v1")
	if a.Total != 7 || a.Accepted != 6 || a.Methods["POST"] != 5 || a.Methods["GET"] != 1 || a.Statuses[401] != 1 || a.Peak != 5 ||
		a.Callers.Count("shop") != 5 || a.Callers.Count("evil") != 0 || a.Truncated != 1 || len(a.Bodies) != 1 || a.Bodies[0].Count != 5 {
		t.Fatalf("%+v", a)
	}
	if got := a.Callers.Sorted(); got[0].Key != "shop" || !got[0].LastCall.Equal(t0.Add(4*time.Second)) {
		t.Errorf("callers %+v", got)
	}
	c := g.Credentials["shop"]
	if c == nil || c.Requests != 5 || c.ClientIPs.Count("10.0.0.1") != 5 || c.Tenants.Count("t1") != 5 || g.Credentials["evil"] != nil {
		t.Errorf("credential %+v", c)
	}
}

func TestAggregateBounds(t *testing.T) {
	g := New("test", Options{MaxKeys: 2, MaxBodies: 2, MaxBodyBytes: 10, Limit: 8})
	for i := range 10 {
		g.Add(&store.Record{APICode: "a", Version: "v1", AppID: "app" + strconv.Itoa(i), ClientIP: "10.0.0." + strconv.Itoa(i),
			RequestBody: `{"i":` + strconv.Itoa(i%4) + `}` + strings.Repeat(" ", i/6*10), HTTPStatus: 200, StartedAt: t0})
	}
	g.Finish()
	a := g.API("a:v1")
	if g.Records != 8 || !g.Limited || len(a.Callers.Entries) != 2 || a.Callers.Dropped != 6 || len(a.Bodies) != 2 || a.Unsampled != 4 || a.Bodies[0].Count != 2 ||
		len(g.Credentials) != 2 || g.DroppedCredentials != 6 {
		t.Fatalf("records %d limited %v callers %d/%d bodies %d unsampled %d creds %d/%d", g.Records, g.Limited, len(a.Callers.Entries), a.Callers.Dropped,
			len(a.Bodies), a.Unsampled, len(g.Credentials), g.DroppedCredentials)
	}
}

func TestTruncated(t *testing.T) {
	for s, want := range map[string]bool{
		store.Truncate(strings.Repeat("é", 50), 10): true,
		`{"a":1}`:                      false,
		"…(truncated, x chars in all)": false,
		"":                             false,
	} {
		if Truncated(s) != want {
			t.Errorf("Truncated(%q) = %v", s, !want)
		}
	}
}

// Meters count per key in windows aligned like the fixed-window limiter,
// whichever order the records come in.
func TestMeter(t *testing.T) {
	for _, order := range []string{"oldest first", "newest first"} {
		m := NewMeter("m", 10*time.Second, func(id string) bool { return id == "a:v1" }, func(r *store.Record) string { return r.AppID })
		g := New("test", Options{Meters: []*Meter{m}})
		var recs []*store.Record
		for i, at := range []int{0, 1, 9, 10, 11, 12, 13, 25} { // windows [0,10): 3, [10,20): 4, [20,30): 1
			recs = append(recs, &store.Record{APICode: "a", Version: "v1", AppID: "x", HTTPStatus: 200, StartedAt: t0.Add(time.Duration(at) * time.Second), ID: strconv.Itoa(i)})
		}
		recs = append(recs, &store.Record{APICode: "a", Version: "v1", AppID: "y", HTTPStatus: 200, StartedAt: t0})
		recs = append(recs, &store.Record{APICode: "b", Version: "v1", AppID: "z", HTTPStatus: 200, StartedAt: t0}) // another API
		if order == "newest first" {
			sort.Slice(recs, func(i, j int) bool { return recs[i].StartedAt.After(recs[j].StartedAt) })
		}
		for _, r := range recs {
			g.Add(r)
		}
		if n, key := m.Peak(); n != 4 || key != "x" {
			t.Errorf("%s: peak %d for %q, want 4 for x", order, n, key)
		}
	}
}

// A line that is not a record, or is too long, is an error naming
// file:line; with Unreadable set it is reported there and reading goes on.
func TestEachFile(t *testing.T) {
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(id, api string, at time.Time) string {
		return line(&store.Record{ID: id, APICode: api, StartedAt: at})
	}
	captured := func(id string) string {
		return line(&store.Record{ID: id, APICode: "a", StartedAt: t1, Capture: &store.Capture{Bytes: 10}})
	}
	data := rec("1", "a", t1) + "not json\n\n" + rec("2", "b", t1.Add(time.Hour)) + "[]\n" +
		rec("4", "a", t1.Add(2*time.Hour)) + rec("5", "a", t1.Add(3*time.Hour)) + captured("6")
	file := filepath.Join(t.TempDir(), "log.jsonl")
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f   Filter
		ids string
		bad []string
	}{
		{Filter{}, "1 2 4 5 6", []string{"log.jsonl:2: not an access-log record", "log.jsonl:5: not an access-log record"}},
		{Filter{API: "a"}, "1 4 5 6", []string{":2:", ":5:"}},
		{Filter{API: "a", Limit: 2}, "1 4", []string{":2:", ":5:"}},
		{Filter{Since: t1.Add(90 * time.Minute)}, "4 5", []string{":2:", ":5:"}},
		{Filter{CapturedOnly: true}, "6", []string{":2:", ":5:"}},
		{Filter{Limit: 1}, "1", nil},
	} {
		var ids, bad []string
		src := Source{From: file, Unreadable: func(err error) { bad = append(bad, err.Error()) }}
		err := Each(context.Background(), src, tc.f, func(r *store.Record) error {
			ids = append(ids, r.ID)
			return nil
		})
		ok := err == nil && strings.Join(ids, " ") == tc.ids && len(bad) == len(tc.bad)
		for i := range bad {
			ok = ok && i < len(tc.bad) && strings.Contains(bad[i], tc.bad[i])
		}
		if !ok {
			t.Errorf("%+v: %v (bad %q, %v), want %s (bad %q)", tc.f, ids, bad, err, tc.ids, tc.bad)
		}
	}
	// Without Unreadable the first bad line ends the reading.
	n := 0
	err := Each(context.Background(), Source{From: file}, Filter{}, func(*store.Record) error { n++; return nil })
	if err == nil || !strings.HasPrefix(err.Error(), file+":2: not an access-log record (JSON lines of storage.accessLog.export expected)") || n != 1 {
		t.Fatalf("%d records, %v", n, err)
	}
	tooLong := filepath.Join(t.TempDir(), "long.jsonl")
	os.WriteFile(tooLong, []byte(rec("1", "a", t1)+`{"requestBody":"`+strings.Repeat("z", MaxLineBytes)+`"}`+"\n"), 0o644)
	if err := Each(context.Background(), Source{From: tooLong}, Filter{}, func(*store.Record) error { return nil }); err == nil || err.Error() != tooLong+":2: line longer than 16777216 bytes" {
		t.Fatalf("%v", err)
	}
	var bad []error
	n = 0
	src := Source{From: tooLong, Unreadable: func(err error) { bad = append(bad, err) }}
	if err := Each(context.Background(), src, Filter{}, func(*store.Record) error { n++; return nil }); err != nil || n != 1 || len(bad) != 1 || bad[0].Error() != tooLong+":2: line longer than 16777216 bytes" {
		t.Fatalf("%d records, %v %v", n, bad, err)
	}
	// fn's own error ends the reading and is returned; Stop ends it quietly.
	mine := errors.New("mine")
	if err := Each(context.Background(), Source{From: tooLong}, Filter{}, func(*store.Record) error { return mine }); err != mine {
		t.Errorf("%v", err)
	}
	if err := Each(context.Background(), Source{From: tooLong}, Filter{}, func(*store.Record) error { return Stop }); err != nil {
		t.Errorf("%v", err)
	}
}

// fakeAdmin serves the access-log page by cursor as the admin listener
// does: newest first, records older than before, pageSize at most 100, the
// next cursor when more are left. It fails a request that asks for a
// total or a page number.
func fakeAdmin(t *testing.T, recs []*store.Record) (url string, calls *int) {
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID > recs[j].ID })
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.URL.Path != "/databus/gateway/access-log/page" || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			w.Write([]byte(`{"code":401,"message":"no"}`))
			return
		}
		q := r.URL.Query()
		if q.Has("pageNo") || (q.Get("noTotal") != "true") == (q.Get("before") == "") {
			t.Errorf("asked %s", r.URL.RawQuery)
		}
		size, _ := strconv.Atoi(q.Get("pageSize"))
		var list []*store.Record
		next := ""
		for _, rec := range recs {
			if before := q.Get("before"); before != "" && rec.ID >= before {
				continue
			}
			if q.Get("apiCode") != "" && rec.APICode != q.Get("apiCode") {
				continue
			}
			if len(list) == size {
				next = list[size-1].ID
				break
			}
			list = append(list, rec)
		}
		json.NewEncoder(w).Encode(map[string]any{"code": 0, "data": map[string]any{"list": list, "next": next}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// Paging follows the cursor, page by page, until the page that says there
// is no next one; a gateway that answers without a cursor is refused.
func TestEachAdminPaging(t *testing.T) {
	var recs []*store.Record
	for i := range 250 {
		at := t0.Add(time.Duration(i/3) * time.Millisecond) // three records per instant
		recs = append(recs, &store.Record{ID: strconv.Itoa(1000 + i), APICode: "a", Version: "v1", AppID: "shop", HTTPStatus: 200, StartedAt: at})
	}
	url, calls := fakeAdmin(t, recs)
	g, err := Load(context.Background(), Source{From: url, Token: "tok"}, Options{Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if pages := (250 + PageSize - 1) / PageSize; g.Records != 250 || g.API("a:v1").Accepted != 250 || *calls != pages || g.Limited {
		t.Fatalf("records %d in %d pages", g.Records, *calls)
	}
	*calls = 0
	g, _ = Load(context.Background(), Source{From: url, Token: "tok"}, Options{Now: t0.Add(time.Hour), Limit: 120})
	if pages := (120 + PageSize) / PageSize; g.Records != 120 || !g.Limited || *calls != pages {
		t.Fatalf("limit: %d %v in %d pages", g.Records, g.Limited, *calls)
	}
	if _, err := Load(context.Background(), Source{From: url, Token: "wrong"}, Options{}); err == nil || err.Error() != url+": answered HTTP 401: no" {
		t.Fatalf("%v", err)
	}
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"code":0,"data":{"total":1,"list":[{"apiCode":"a"}]}}`))
	}))
	defer old.Close()
	if err := Each(context.Background(), Source{From: old.URL}, Filter{}, func(*store.Record) error { return nil }); err == nil || !strings.Contains(err.Error(), "does not page by cursor") {
		t.Fatalf("%v", err)
	}
}
