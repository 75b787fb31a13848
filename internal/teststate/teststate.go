// Package teststate keeps tests out of the user's state folder: the
// default storage of a gateway ($XDG_STATE_HOME/databus/...,
// config.DefaultStoragePath) that tests start, in process or as a child
// process, goes to a temporary folder.
package teststate

import (
	"fmt"
	"os"
	"testing"
)

// Main runs m with XDG_STATE_HOME at a temporary folder, removed after;
// call it from a package's TestMain.
func Main(m *testing.M) {
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
