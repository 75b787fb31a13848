package redisstore_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/redisstore"
)

// childEnv marks the copy of this test binary that a test runs as a
// separate process.
const childEnv = "DATABUS_REDISSTORE_TEST_CHILD"

// TestNoImportTimeLogger: importing the package leaves go-redis's
// process-wide logger as it was. A separate process (this test binary, run
// again) makes go-redis log — a TTL under a millisecond is logged as it is
// truncated, before anything is dialled — and the line reaches stderr.
func TestNoImportTimeLogger(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		useSubMillisecondTTL(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoImportTimeLogger$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "truncating to 1ms") {
		t.Fatalf("go-redis's log line did not reach stderr: the package replaced its logger\n%s", out)
	}
}

// useSubMillisecondTTL stores a nonce with a 500µs TTL on an address
// nothing listens on.
func useSubMillisecondTTL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := redisstore.NewClient(config.RedisSettings{Addr: addr, Timeout: config.Duration(100 * time.Millisecond)}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	redisstore.NewNonces(c, 100*time.Millisecond).Use(context.Background(), "k", 500*time.Microsecond)
}
