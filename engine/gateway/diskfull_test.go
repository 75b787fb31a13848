package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/store"
)

// fsizeChild marks the subprocess of TestAccessLogDiskFull that runs with a
// file-size limit.
const fsizeChild = "DATABUS_TEST_FSIZE_CHILD"

// storageLimit is the largest file the child may write: the bbolt file
// fills it after a few hundred records.
const storageLimit = 512 << 10

// TestAccessLogDiskFull fills the storage and frees it again: every lost
// record is counted (databus_accesslog_dropped_total, and the failed
// transactions in databus_accesslog_write_errors_total), /readyz says the
// access log is degraded while still answering 200, the failure is logged
// once per interval, and writes resume once there is room.
//
// The disk is full by RLIMIT_FSIZE (writes past the limit fail with EFBIG,
// as a full filesystem fails them with ENOSPC): it needs no root and no
// mount, so it runs everywhere. The limit binds the whole process, so the
// test runs in a subprocess of the test binary.
func TestAccessLogDiskFull(t *testing.T) {
	if os.Getenv(fsizeChild) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAccessLogDiskFull$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), fsizeChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestAccessLogDiskFull")) {
			t.Fatalf("the disk-full run failed: %v\n%s", err, out)
		}
		return
	}
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Cur < 8*storageLimit {
		t.Fatalf("RLIMIT_FSIZE is already %d", orig.Cur)
	}
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings)
	logs := &syncBuffer{}
	setLimit := func(n uint64) {
		t.Helper()
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: orig.Max}); err != nil {
			t.Fatal(err)
		}
	}
	setLimit(storageLimit)
	t.Cleanup(func() { setLimit(orig.Cur) })
	ts := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "databus.db"),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})

	pad := make([]byte, 1500)
	rand.Read(pad)
	body := `{"pad":"` + hex.EncodeToString(pad) + `"}`
	sent := 0
	send := func() {
		t.Helper()
		if env, err := ts.do("POST", "t.one", strings.NewReader(body)); err != nil || env.Code != 200 {
			t.Fatalf("call %d: %v %+v", sent, err, env)
		}
		sent++
	}
	accessLog := func() map[string]any {
		t.Helper()
		st, body := ts.admin("/readyz")
		if st != 200 {
			t.Fatalf("/readyz: HTTP %d %v", st, body)
		}
		a, _ := body["accessLog"].(map[string]any)
		return a
	}
	stored := func() int {
		_, n, err := ts.acc.Page(store.Filter{}, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	settled := func() bool { return uint64(stored())+ts.acc.Dropped() == uint64(sent) }

	// Fill the disk: calls keep answering, the access log turns degraded.
	if a := accessLog(); a["status"] != "ok" {
		t.Fatalf("/readyz accessLog at start: %v", a)
	}
	start := time.Now()
	deadline := start.Add(pollTimeout)
	var full map[string]any
	for full = accessLog(); full["status"] != "degraded"; full = accessLog() {
		if time.Now().After(deadline) {
			t.Fatalf("no degraded access log after %d calls; stored %d; %v", sent, stored(), full)
		}
		send()
	}
	if lost, _ := full["lost"].(float64); lost < 1 || full["droppedTotal"].(float64) < lost || !strings.Contains(fmt.Sprint(full["error"]), "file too large") {
		t.Errorf("/readyz accessLog when the disk filled: %v", full)
	}
	for range 50 { // more losses in the outage
		send()
	}
	waitFor(t, pollTimeout, "every record stored or counted as lost", settled,
		func() string { return fmt.Sprintf("sent %d, stored %d, dropped %d", sent, stored(), ts.acc.Dropped()) })
	lost := ts.acc.Dropped()
	mf := ts.metricFamilies(t)
	if got := metricValue(mf, "databus_accesslog_dropped_total", nil); lost == 0 || got != float64(lost) {
		t.Errorf("databus_accesslog_dropped_total %v, lost %d of %d", got, lost, sent)
	}
	// On a nearly full disk some small batches still fit: the log may be
	// degraded or ok again now, but /readyz and the gauge agree, and every
	// failed transaction is counted.
	// (The writer updates them just after its commit shows in the store.)
	var a map[string]any
	waitFor(t, pollTimeout, "databus_accesslog_degraded and /readyz agree", func() bool {
		a, mf = accessLog(), ts.metricFamilies(t)
		degraded := map[any]float64{"degraded": 1, "ok": 0}[a["status"]]
		return metricValue(mf, "databus_accesslog_degraded", nil) == degraded
	}, func() string { return fmt.Sprintf("/readyz accessLog %v", a) })
	if got, errs := metricValue(mf, "databus_accesslog_write_errors_total", nil), a["writeErrors"]; got < 1 || errs != got {
		t.Errorf("databus_accesslog_write_errors_total %v, /readyz writeErrors %v", got, errs)
	}
	if a["droppedTotal"] != float64(lost) {
		t.Errorf("/readyz accessLog %v, lost %d", a, lost)
	}
	t.Logf("full: %d of %d records lost; /readyz accessLog %v", lost, sent, a)
	// Logged once per interval with a count, not once per failed batch.
	if n, most := logs.count("access log: write failed"), 1+int(time.Since(start)/(10*time.Second)); n < 1 || n > most {
		t.Errorf("write failure logged %d times, want 1 to %d:\n%s", n, most, logs.String())
	}
	if !strings.Contains(logs.String(), "records=") {
		t.Errorf("write failure logged without a count:\n%s", logs.String())
	}

	// Free the space: the next write succeeds and the log is ok again.
	setLimit(orig.Cur)
	before := stored()
	deadline = time.Now().Add(pollTimeout)
	for accessLog()["status"] != "ok" {
		if time.Now().After(deadline) {
			t.Fatalf("still degraded after room was made: %v", accessLog())
		}
		send()
	}
	send()
	waitFor(t, pollTimeout, "records stored again", func() bool { return settled() && stored() > before },
		func() string { return fmt.Sprintf("sent %d, stored %d, dropped %d", sent, stored(), ts.acc.Dropped()) })
	if ts.acc.Dropped() != lost {
		t.Errorf("records lost after room was made: %d, was %d", ts.acc.Dropped(), lost)
	}
	waitFor(t, pollTimeout, "databus_accesslog_degraded 0 after recovery", func() bool {
		return metricValue(ts.metricFamilies(t), "databus_accesslog_degraded", nil) == 0
	})
	waitFor(t, pollTimeout, "the recovery logged", func() bool { return logs.count("access log: writes recovered") > 0 },
		func() string { return logs.String() })
}

// String is everything logged so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
