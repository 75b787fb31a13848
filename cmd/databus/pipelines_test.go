package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPipelinesUseRealFlags reads every databus command line of the CI
// files in ci/ (the pipelines config repositories copy) and checks that
// the command exists and accepts each flag it is given, so a renamed flag
// cannot leave a pipeline that fails only once someone copies it.
func TestPipelinesUseRealFlags(t *testing.T) {
	files, _ := filepath.Glob("../../ci/*.yml")
	files = append(files, "../../ci/pre-commit", "../../ci/know-before-merge.sh")
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range joinContinuations(string(b)) {
			for _, args := range databusCommands(line) {
				seen++
				checkCommand(t, filepath.Base(f), i+1, args)
			}
		}
	}
	if seen < 8 {
		t.Fatalf("found %d databus command lines in ci/, want the pipelines' validate, test, diff and replay", seen)
	}
}

// joinContinuations joins shell lines ending in a backslash; the index of
// each joined line is that of its first line (approximately: for messages).
func joinContinuations(s string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasSuffix(strings.TrimRight(l, " "), "\\") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(l, " "), "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

var databusCall = regexp.MustCompile(`(?:^|[\s;|&(-]|"\$DB"\s*)(?:"\$DB"|databus)\s+([a-z]+)((?:\s+[^|;&>]*)?)`)

// databusCommands finds the databus invocations of a shell line: the
// command and its arguments up to a redirection, pipe or list operator.
func databusCommands(line string) [][]string {
	l := strings.TrimSpace(line)
	if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "echo ") || strings.Contains(l, "go install") {
		return nil
	}
	if i := strings.Index(l, " #"); i >= 0 {
		l = l[:i]
	}
	var out [][]string
	for _, m := range databusCall.FindAllStringSubmatch(l, -1) {
		if _, ok := commands[m[1]]; !ok && !strings.Contains(m[0], "databus") {
			continue
		}
		out = append(out, append([]string{m[1]}, strings.Fields(m[2])...))
	}
	return out
}

func checkCommand(t *testing.T, file string, line int, args []string) {
	t.Helper()
	c, ok := commands[args[0]]
	if !ok {
		t.Errorf("%s:%d: databus %s: no such command", file, line, args[0])
		return
	}
	var help bytes.Buffer
	c.run([]string{"--help"}, &help, &help)
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.Contains(help.String(), "\n  -"+name+" ") && !strings.Contains(help.String(), "\n  -"+name+"\n") {
			t.Errorf("%s:%d: databus %s does not accept %s (its flags:\n%s)", file, line, args[0], a, help.String())
		}
	}
}

// releaseVersion is a version a release is tagged with (ci/release.sh
// takes the same): vMAJOR.MINOR.PATCH, maybe a pre-release.
var releaseVersion = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// TestPipelinesPinOneRelease checks that the CI files and the pre-commit
// hook install one pinned release: each sets DATABUS_VERSION once, to a
// release version, the same in all of them, and installs databus at that
// version only (never @latest).
func TestPipelinesPinOneRelease(t *testing.T) {
	pinLine := regexp.MustCompile(`(?m)^\s*DATABUS_VERSION[:=]\s*"?([^"\s#]*)"?\s*(#.*)?$`)
	install := regexp.MustCompile(`databus-gateway/databus/cmd/databus@(\S*)`)
	pins := map[string]string{}
	for _, f := range []string{"github-actions.yml", "gitlab-ci.yml", "pre-commit"} {
		b, err := os.ReadFile(filepath.Join("../../ci", f))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		m := pinLine.FindAllStringSubmatch(text, -1)
		if len(m) != 1 {
			t.Errorf("%s: %d DATABUS_VERSION settings, want one", f, len(m))
			continue
		}
		pin := m[0][1]
		if !releaseVersion.MatchString(pin) {
			t.Errorf("%s: DATABUS_VERSION %q is not a release version (v1.2.3, v1.3.0-rc.1)", f, pin)
		}
		pins[f] = pin
		if strings.Contains(text, "@latest") {
			t.Errorf("%s: installs @latest: install @${DATABUS_VERSION}", f)
		}
		uses := install.FindAllStringSubmatch(text, -1)
		if len(uses) == 0 {
			t.Errorf("%s: does not install databus", f)
		}
		for _, u := range uses {
			if v := strings.Trim(u[1], `"'`); v != "${DATABUS_VERSION}" && v != "$DATABUS_VERSION" {
				t.Errorf("%s: installs databus@%s: install @${DATABUS_VERSION}", f, u[1])
			}
		}
	}
	for f, pin := range pins {
		if pin != pins["github-actions.yml"] {
			t.Errorf("DATABUS_VERSION: %s in %s, %s in github-actions.yml: pin one release everywhere", pin, f, pins["github-actions.yml"])
		}
	}
	// The release script takes the same versions.
	script, err := os.ReadFile("../../ci/release.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), strings.Trim(releaseVersion.String(), "^$")) {
		t.Errorf("ci/release.sh does not check VERSION with %s", releaseVersion)
	}
}
