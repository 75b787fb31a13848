package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points the default storage folder ($XDG_STATE_HOME/databus/...,
// config.DefaultStoragePath) of every gateway these tests start, in process
// or as a child process, at a temporary folder: a test never writes into
// the user's state folder.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "databus-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
