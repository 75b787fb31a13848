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
