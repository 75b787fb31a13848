// Package testredis gives tests a real redis-server: the shared one that
// .ci/run starts (DATABUS_TEST_REDIS), or a private one a test can kill and
// restart. Without Redis the tests skip with the variable's name — except
// under CI=true, where they fail, so CI can never pass without running them.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env names the variable holding the shared test Redis address.
const Env = "DATABUS_TEST_REDIS"

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("Redis tests must run under CI: %s", why)
	}
	t.Skipf("no Redis: %s (set %s=host:port, or install redis-server)", why, Env)
}

// Addr returns the shared test Redis address.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(Env)
	if addr == "" {
		unavailable(t, Env+" is not set")
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		unavailable(t, fmt.Sprintf("%s=%s does not answer: %v", Env, addr, err))
	}
	return addr
}

var seq atomic.Int64

// Prefix returns a key prefix unique to this test run, so tests sharing one
// Redis never see each other's keys.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("test:%d:%d:%s:", os.Getpid(), seq.Add(1), t.Name())
}

// Server is a private redis-server a test controls.
type Server struct {
	Addr string
	port int
	bin  string
	cmd  *exec.Cmd
	t    testing.TB
}

// Start runs a private redis-server on a free loopback port, without
// persistence, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), port: port, bin: bin, t: t}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not start: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL by PID), as an outage would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts the server again on the same port (empty: no persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}
