package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

const testHash = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"

// describeBuild: the linker's values first, then the build information a
// go install or a build in a git checkout records, then "dev".
func TestDescribeBuild(t *testing.T) {
	vcs := func(rev, when, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	other := "ffffffffffffffffffffffffffffffffffffffff"
	tests := []struct {
		name                        string
		ldVersion, ldCommit, ldDate string
		bi                          *debug.BuildInfo
		want                        build
	}{
		{name: "release build: the linker's values",
			ldVersion: "v1.4.0", ldCommit: testHash, ldDate: "2026-12-06T10:00:00Z",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(testHash, "2026-12-06T10:00:00Z", "false")},
			want: build{Version: "v1.4.0", Commit: testHash, Date: "2026-12-06T10:00:00Z", GoVersion: "go1.26.8"}},
		{name: "go install ...@v1.2.3: the module version, no commit",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/databus-gateway/databus", Version: "v1.2.3"}},
			want: build{Version: "v1.2.3", GoVersion: "go1.26.8"}},
		{name: "go build in a checkout with changes",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261206100000-1a2b3c4d5e6f+dirty"}, Settings: vcs(testHash, "2026-12-06T10:00:00Z", "true")},
			want: build{Version: "v0.0.0-20261206100000-1a2b3c4d5e6f+dirty", Commit: testHash, Modified: true, Date: "2026-12-06T10:00:00Z", GoVersion: "go1.26.8"}},
		{name: "-buildvcs=false: nothing recorded",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: build{Version: "dev", GoVersion: "go1.26.8"}},
		{name: "the linker's commit is not the checkout's: its state says nothing of it",
			ldCommit: other,
			bi:       &debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs(testHash, "2026-12-06T10:00:00Z", "true")},
			want:     build{Version: "dev", Commit: other, Date: "2026-12-06T10:00:00Z", GoVersion: "go1.26.8"}},
		{name: "no build information",
			want: build{Version: "dev", GoVersion: runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got := describeBuild(tt.ldVersion, tt.ldCommit, tt.ldDate, tt.bi); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestVersionGolden(t *testing.T) {
	builds := map[string]build{
		"release": {Version: "v1.4.0", Commit: testHash, Date: "2026-12-06T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"},
		"dirty":   {Version: "dev", Commit: testHash, Modified: true, Date: "2026-12-06T10:00:00Z", GoVersion: "go1.26.8", Platform: "darwin/arm64"},
		"install": {Version: "v1.2.3", GoVersion: "go1.26.8", Platform: "linux/arm64"},
	}
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		for _, name := range []string{"release", "dirty", "install"} {
			var errb bytes.Buffer
			if code := writeBuild(&out, &errb, builds[name], format); code != exitOK {
				t.Fatalf("%s %s: exit %d: %s", name, format, code, errb.String())
			}
		}
		golden(t, "version."+format, out.String())
	}
}

// The binary under test has no linker values: it describes itself from
// its build information, in both formats.
func TestVersion(t *testing.T) {
	out, _, code := runCLI("version")
	if code != exitOK || !strings.HasPrefix(out, "databus ") || !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	if alias, _, _ := runCLI("--version"); alias != out {
		t.Errorf("--version printed %q, version %q", alias, out)
	}
	out, _, code = runCLI("version", "--format", "json")
	var b build
	if err := json.Unmarshal([]byte(out), &b); err != nil || code != exitOK {
		t.Fatalf("version --format json: exit %d, %v\n%s", code, err, out)
	}
	if b.Version == "" || b.GoVersion != runtime.Version() || b.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --format json: %+v", b)
	}
	if _, errOut, code := runCLI("version", "--format", "yaml"); code != exitUsage || !strings.Contains(errOut, `unknown format "yaml": expected text or json`) {
		t.Errorf("--format yaml: exit %d, %q", code, errOut)
	}
}
