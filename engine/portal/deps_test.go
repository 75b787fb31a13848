package portal

import (
	"os/exec"
	"strings"
	"testing"
)

// The request path links no git library: the Snapshot's revision comes
// from engine/revision, not engine/gitops.
func TestRequestPathLinksNoGit(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "go-git") || strings.HasSuffix(pkg, "/engine/gitops") {
			t.Errorf("engine/portal depends on %s", pkg)
		}
	}
}
