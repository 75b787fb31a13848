package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/internal/testredis"
)

type readyBody struct {
	Ready  bool             `json:"ready"`
	Checks map[string]Check `json:"checks"`
}

// readyz asks the admin listener of ts for /readyz, which shows each
// check's error.
func readyz(t *testing.T, ts *testServer) (int, readyBody) {
	t.Helper()
	resp, err := ts.client.Get(ts.adminURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return resp.StatusCode, b
}

// healthReadyz asks the health listener's handler for /readyz.
func healthReadyz(t *testing.T, ts *testServer) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	ts.Health().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// Ready means a Snapshot serving and the storage open: a closed bbolt file
// makes the gateway unready, and says so.
func TestReadyStorage(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "1")})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	st, b := readyz(t, ts)
	if st != http.StatusOK || !b.Ready || !b.Checks["snapshot"].OK || !b.Checks["storage"].OK {
		t.Fatalf("/readyz: %d %+v", st, b)
	}
	if _, ok := b.Checks["redis"]; ok {
		t.Errorf("a redis check without redis: %+v", b.Checks)
	}
	ts.closeStorage()
	st, b = readyz(t, ts)
	if st != http.StatusServiceUnavailable || b.Ready || b.Checks["storage"].OK || !strings.Contains(b.Checks["storage"].Error, "databus.db") {
		t.Fatalf("/readyz with the storage closed: %d %+v, want 503 naming the file", st, b)
	}
	// The health listener, which any address may reach, says which check
	// failed but neither the error nor the path, the commit or the reloads.
	hst, body := healthReadyz(t, ts)
	if hst != http.StatusServiceUnavailable || !strings.Contains(body, `"storage":{"ok":false,"required":true}`) {
		t.Errorf("health listener /readyz with the storage closed: %d %s", hst, body)
	}
	for _, secret := range []string{"databus.db", "lastReload", "revision", "accessLog"} {
		if strings.Contains(body, secret) {
			t.Errorf("health listener /readyz shows %q: %s", secret, body)
		}
	}
}

// With Redis, ready also means Redis answers, or redis.failOpen (the
// default) says the replica keeps serving without it: an outage makes a
// failOpen: false gateway unready and leaves a failOpen: true one ready,
// both say why, and both are ready again when Redis is back.
func TestReadyRedis(t *testing.T) {
	rs := testredis.Start(t)
	open := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, true, 1000)), NoWatch: true})
	closed := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, false, 1000)), NoWatch: true})
	for name, ts := range map[string]*testServer{"open": open, "closed": closed} {
		st, b := readyz(t, ts)
		if st != http.StatusOK || !b.Checks["redis"].OK || b.Checks["redis"].Required != (name == "closed") {
			t.Fatalf("%s before the outage: %d %+v", name, st, b)
		}
	}
	rs.Kill()
	waitFor(t, pollTimeout, "failOpen false unready during the outage", func() bool {
		st, b := readyz(t, closed)
		return st == http.StatusServiceUnavailable && !b.Checks["redis"].OK && strings.Contains(b.Checks["redis"].Error, "redis")
	})
	waitFor(t, pollTimeout, "failOpen true reports the outage", func() bool {
		_, b := readyz(t, open)
		return !b.Checks["redis"].OK
	})
	if st, b := readyz(t, open); st != http.StatusOK || !b.Ready {
		t.Errorf("failOpen true during the outage: %d %+v, want ready", st, b)
	}
	rs.Restart()
	waitFor(t, pollTimeout, "ready again after redis restarts", func() bool {
		a, _ := readyz(t, open)
		b, _ := readyz(t, closed)
		_, ob := readyz(t, open)
		return a == http.StatusOK && b == http.StatusOK && ob.Checks["redis"].OK
	})
}

// However many probes arrive, Redis is asked at most once per
// ReadyRedisEvery.
func TestReadyRedisProbesShareOnePing(t *testing.T) {
	rs := testredis.Start(t)
	ts := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, false, 1000)), NoWatch: true})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer c.Close()
	pings := func() int {
		info, err := c.Info(t.Context(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_ping:calls="); ok {
				n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
				return n
			}
		}
		return 0
	}
	before := pings()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			ts.Health().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("/readyz: %d %s", rec.Code, rec.Body)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// At most one ping per started interval, whatever the machine's speed.
	most := int(elapsed/ReadyRedisEvery) + 1
	if got := pings() - before; got > most {
		t.Errorf("200 probes in %s sent %d PINGs to redis, want at most %d", elapsed, got, most)
	}
}
