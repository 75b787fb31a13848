package traffic

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

	g := New("test", Options{Now: t0.Add(2 * time.Minute), Since: time.Hour})
	if err := g.ReadLines(strings.NewReader(in.String()), "x.jsonl"); err != nil {
		t.Fatal(err)
	}
	g.Finish()
	if g.Records != 7 || g.Skipped != 2 || len(g.APIs) != 1 {
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

func TestReadLinesErrors(t *testing.T) {
	g := New("test", Options{})
	err := g.ReadLines(strings.NewReader(line(&store.Record{APICode: "a"})+"{not json\n"), "log.jsonl")
	if err == nil || !strings.HasPrefix(err.Error(), "log.jsonl:2: not an access-log record") {
		t.Fatalf("%v", err)
	}
}

// fakeAdmin serves the access-log page as the admin listener does: newest
// first, StartedAt in [from, to), pageSize at most 100.
func fakeAdmin(t *testing.T, recs []*store.Record) (url string, calls *int) {
	sort.Slice(recs, func(i, j int) bool {
		if !recs[i].StartedAt.Equal(recs[j].StartedAt) {
			return recs[i].StartedAt.After(recs[j].StartedAt)
		}
		return recs[i].ID > recs[j].ID
	})
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.URL.Path != "/databus/gateway/access-log/page" || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			w.Write([]byte(`{"code":401,"message":"no"}`))
			return
		}
		q := r.URL.Query()
		to, _ := time.Parse(time.RFC3339Nano, q.Get("to"))
		size, _ := strconv.Atoi(q.Get("pageSize"))
		var list []*store.Record
		for _, rec := range recs {
			if rec.StartedAt.Before(to) && len(list) < size {
				list = append(list, rec)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"code": 0, "data": map[string]any{"total": len(recs), "list": list}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// Paging moves the upper end of the range down page by page; records that
// share the boundary nanosecond are neither lost nor counted twice.
func TestFetchAdminPaging(t *testing.T) {
	var recs []*store.Record
	for i := range 250 {
		at := t0.Add(time.Duration(i/3) * time.Millisecond) // three records per instant
		recs = append(recs, &store.Record{ID: strconv.Itoa(1000 + i), APICode: "a", Version: "v1", AppID: "shop", HTTPStatus: 200, StartedAt: at})
	}
	url, calls := fakeAdmin(t, recs)
	g := New(url, Options{Now: t0.Add(time.Hour)})
	if err := g.FetchAdmin(context.Background(), nil, url, "tok"); err != nil {
		t.Fatal(err)
	}
	if g.Records != 250 || g.API("a:v1").Accepted != 250 || *calls != 3 {
		t.Fatalf("records %d in %d pages", g.Records, *calls)
	}
	g = New(url, Options{Now: t0.Add(time.Hour), Limit: 120})
	g.FetchAdmin(context.Background(), nil, url, "tok")
	if g.Records != 120 || !g.Limited {
		t.Fatalf("limit: %d %v", g.Records, g.Limited)
	}
	if err := New(url, Options{}).FetchAdmin(context.Background(), nil, url, "wrong"); err == nil || !strings.Contains(err.Error(), "answered HTTP 401: no") {
		t.Fatalf("%v", err)
	}
}
