package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSiteNeedsHooks: a site step warns (it loads, but cannot be signed)
// until databus.yaml names the hooks server and this site's party id.
func TestSiteNeedsHooks(t *testing.T) {
	cases := []struct {
		hooks string // appended to the base settings
		want  string // fragment of the warning; "" for none
	}{
		{"", "hooks.server"},
		{"hooks:\n  server: hooks\n", "hooks.partyId"},
		{"hooks:\n  server: hooks\n  partyId: \"9999\"\n", ""},
	}
	for _, tc := range cases {
		dir, rel := withFixture(t, "good", "api-every-field.good.yaml")
		settings := filepath.Join(dir, SettingsFile)
		base, err := os.ReadFile(settings)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(settings, append(base, tc.hooks...), 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := mustLoad(t, dir)
		if diags.HasErrors() {
			t.Fatalf("%q: want no errors, got:\n%s", tc.hooks, dump(diags))
		}
		var found []Diagnostic
		for _, d := range diags {
			if d.File == rel && strings.HasSuffix(d.Path, ".http.site") {
				found = append(found, d)
			}
		}
		switch {
		case tc.want == "" && len(found) > 0:
			t.Errorf("%q: unexpected warnings:\n%s", tc.hooks, dump(found))
		case tc.want != "" && (len(found) != 1 || found[0].Severity != SevWarning || found[0].Line != 42 || !strings.Contains(found[0].Message, tc.want)):
			t.Errorf("%q: want one warning at line 42 naming %s, got:\n%s", tc.hooks, tc.want, dump(found))
		}
	}
}
