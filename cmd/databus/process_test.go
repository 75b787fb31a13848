package main

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

// setupChildEnv marks the copy of this test binary that
// TestSetupProcessQuietsRedis runs as a separate process.
const setupChildEnv = "DATABUS_TEST_SETUP_CHILD"

// TestSetupProcessQuietsRedis: after setupProcess, go-redis logs nothing.
// It runs in a separate process (this test binary, run again) because the
// logger is process-wide: a TTL under a millisecond, which go-redis logs as
// it truncates it, must leave stderr empty.
func TestSetupProcessQuietsRedis(t *testing.T) {
	if os.Getenv(setupChildEnv) == "1" {
		setupProcess()
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
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSetupProcessQuietsRedis$", "-test.count=1")
	cmd.Env = append(os.Environ(), setupChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "redis:") {
		t.Fatalf("go-redis logged after setupProcess:\n%s", out)
	}
}
