package admin_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering pins the import layering of the request path and the admin
// listener: the admin API and pages reach the portal's flow run and
// access-log record through engine/call, never through the portal itself,
// and engine/call stands below both.
func TestLayering(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	const mod = "github.com/databus-gateway/databus/engine/"
	for _, tc := range []struct {
		pkg       string
		forbidden []string
	}{
		{"admin", []string{"portal", "ui"}},
		{"ui", []string{"portal"}},
		{"call", []string{"portal", "admin", "ui", "gateway"}},
	} {
		out, err := exec.Command(gobin, "list", "-deps", mod+tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, f := range tc.forbidden {
			if deps[mod+f] {
				t.Errorf("engine/%s depends on engine/%s", tc.pkg, f)
			}
		}
	}
}
