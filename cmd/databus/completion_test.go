package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// completionRepo is a config repository in a git repository: APIs
// order.create v1 and v2 and quote v1, the credential demo-app, branches
// main and feature, the tag v1.0. Its commits' hashes are the same on
// every run (gitopstest fixes their times).
func completionRepo(t *testing.T) string {
	t.Helper()
	b := gitopstest.New(t, "")
	api := func(code, version, desc string) string {
		return "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: " + version + "\ndescription: " + desc +
			"\nstatus: online\nmethods: [POST]\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
	}
	b.Write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
	b.Write("apis/order.yaml", api("order.create", "v1", "Create an order"))
	b.Write("credentials/demo.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: demo-app\nsignatureType: HMAC-SHA256\nencryptionType: NONE\n")
	c1 := b.Commit("Add order.create")
	b.Tag("v1.0", c1, "")
	b.Write("apis/order-v2.yaml", api("order.create", "v2", "Create an order, with lines"))
	b.Write("apis/quote.yaml", api("quote", "v1", "Price an order"))
	b.Commit("Add order.create v2 and quote")
	b.Branch("feature")
	b.Write("apis/broken.yaml", "code: [unclosed\n") // validate's to report; completion names the rest
	b.Commit("A broken file")
	b.Checkout("main")
	return b.Dir
}

// TestCompleteProtocol checks the answers of databus __complete, the
// request every script makes, against testdata/golden/complete.txt.
func TestCompleteProtocol(t *testing.T) {
	repo := completionRepo(t)
	notGit := t.TempDir()
	requests := [][]string{
		{""},
		{"-"},
		{"ver"},
		{"validate", "--"},
		{"validate", "--format", ""},
		{"validate", ""},
		{"serve", "--log-level", ""},
		{"serve", "--dir", ""},
		{"call", "--method", ""},
		{"completion", ""},
		{"versions", "--dir", repo, ""},
		{"versions", "-dir", repo, "order.create:"}, // the Go flag syntax
		{"versions", "--dir=" + repo, "q"},
		{"versions", "--dir", repo, "quote", ""}, // one API only
		{"call", "--dir", repo, "--app", ""},
		{"replay", "--dir", repo, "--api", ""},
		{"diff", "--dir", repo, ""},
		{"diff", "--dir", repo, "v1.0", "f"},
		{"diff", "--dir", repo, "v1.0", "HEAD", ""}, // two revisions at most
		{"rollback", "order.create", "--dir", repo, "--to", "v"},
		{"replay", "--dir", repo, "--rev", "ma"},
		{"help", "ro"},
		// Not a repository, not a git repository: nothing, and no error.
		{"versions", "--dir", filepath.Join(repo, "no-such-folder"), ""},
		{"diff", "--dir", notGit, ""},
	}
	var b strings.Builder
	for _, req := range requests {
		args := append([]string{"__complete"}, req...)
		out, errOut, code := runCLI(args...)
		if code != exitOK {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
		// cobra reports the directive on stderr (the scripts drop it);
		// nothing else may be there.
		if rest := regexp.MustCompile(`(?m)^Completion ended with directive: .*\n`).ReplaceAllString(errOut, ""); rest != "" {
			t.Errorf("%q: stderr %q", args, rest)
		}
		b.WriteString("$ databus " + strings.Join(quoteEmpty(args), " ") + "\n" + out + "\n")
	}
	golden(t, "complete.txt", strings.NewReplacer(repo, "REPO", notGit, "NOT-GIT").Replace(b.String()))
}

func quoteEmpty(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "" {
			out[i] = "''"
		}
	}
	return out
}

// Every command makes its FlagSet with newFlagSet before it does anything,
// so that the completion tree holds exactly its flags.
func TestCompletionTreeHasEveryFlag(t *testing.T) {
	root := completionTree()
	for name, c := range commands {
		fs := flagsOf(c)
		if fs == nil {
			t.Errorf("%s: its FlagSet was not caught: make it with newFlagSet(..., stderr)", name)
			continue
		}
		sub, _, err := root.Find([]string{name})
		if err != nil || sub.Name() != name {
			t.Errorf("%s: not in the completion tree: %v", name, err)
			continue
		}
		var want, got []string
		fs.VisitAll(func(f *flag.Flag) { want = append(want, f.Name) })
		sub.Flags().VisitAll(func(f *pflag.Flag) { got = append(got, f.Name) })
		if !slices.Equal(got, want) {
			t.Errorf("%s: completion tree flags %v, command flags %v", name, got, want)
		}
	}
}

// The fixed choices a flag completes to are the command's: the flag
// exists and its help names every choice.
func TestFlagChoices(t *testing.T) {
	for name, flags := range flagChoices {
		c, ok := commands[name]
		if !ok {
			t.Errorf("flagChoices: no command %s", name)
			continue
		}
		fs := flagsOf(c)
		for fl, choices := range flags {
			f := fs.Lookup(fl)
			if f == nil {
				t.Errorf("databus %s has no --%s", name, fl)
				continue
			}
			for _, ch := range choices {
				if !regexp.MustCompile(`(^|[\s,(:])` + regexp.QuoteMeta(ch) + `($|[\s,)])`).MatchString(f.Usage) {
					t.Errorf("databus %s --%s: its help %q does not name %q", name, fl, f.Usage, ch)
				}
			}
		}
	}
	// A choice the command refuses is not offered.
	for _, args := range [][]string{
		{"validate", "--format", "xml", "."},
		{"versions", "x", "--format", "xml"},
		{"serve", "--log-level", "trace"},
		{"diff", "HEAD", "--fail-on", "minor", "--traffic", "x"},
		{"version", "--format", "xml"},
	} {
		if _, _, code := runCLI(args...); code != exitUsage {
			t.Errorf("databus %s: exit %d, want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
}

func TestCompletionScriptUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		err  string
	}{
		{[]string{"completion"}, "name one shell (bash, zsh, fish), got 0 arguments"},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh": expected bash, zsh, fish`},
	} {
		if _, errOut, code := runCLI(tt.args...); code != exitUsage || !strings.Contains(errOut, tt.err) {
			t.Errorf("databus %s: exit %d, %q; want %q", strings.Join(tt.args, " "), code, errOut, tt.err)
		}
	}
	for _, sh := range completionShells {
		out, _, code := runCLI("completion", sh)
		if code != exitOK || !strings.Contains(out, "__complete") {
			t.Errorf("databus completion %s: exit %d, a script without the __complete request:\n%.300s", sh, code, out)
		}
	}
}

// TestCompletionInShells loads each script into its shell, asks for
// completions as the shell would on TAB, and checks that commands, flags,
// flag values, an API of --dir and a revision of its git repository are
// offered. Under CI=true a missing shell fails the test (.ci/run installs
// bash-completion, zsh and fish).
func TestCompletionInShells(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "databus"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	repo := completionRepo(t)
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
	script := func(t *testing.T, shell string) string {
		out, errOut, code := runCLI("completion", shell)
		if code != exitOK {
			t.Fatalf("completion %s: %s", shell, errOut)
		}
		p := filepath.Join(t.TempDir(), "databus."+shell)
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	need := func(t *testing.T, what, path string) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if _, err := exec.LookPath(path); err == nil {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (%s) is missing: .ci/run installs it", what, path)
		}
		t.Skipf("%s (%s) is missing", what, path)
	}
	run := func(t *testing.T, name string, args ...string) []string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "PATH="+path, "HOME="+t.TempDir())
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimRight(l, "\r"); l != "" {
				lines = append(lines, l)
			}
		}
		return lines
	}
	// cases: a command line up to the cursor, and what must be offered
	// (each shell prints candidates in its own way: the check is on the
	// value, before any tab and description).
	cases := []struct {
		line string
		want []string
	}{
		{"databus ver", []string{"version", "versions"}},
		{"databus validate --fo", []string{"--format"}},
		{"databus validate --format ", []string{"text", "json", "github"}},
		{"databus versions --dir " + repo + " ", []string{"order.create", "order.create:v1", "order.create:v2", "quote", "quote:v1"}},
		{"databus call --dir " + repo + " --app ", []string{"demo-app"}},
		{"databus diff --dir " + repo + " ", []string{"HEAD", "main", "feature", "v1.0"}},
		{"databus rollback quote --dir " + repo + " --to fea", []string{"feature"}},
	}
	check := func(t *testing.T, shell, line string, got, want []string) {
		t.Helper()
		values := map[string]bool{}
		for _, g := range got {
			v, _, _ := strings.Cut(g, "\t")
			values[strings.TrimSpace(v)] = true
		}
		for _, w := range want {
			if !values[w] {
				t.Errorf("%s: %q: %q not offered; got %q", shell, line, w, got)
			}
		}
	}

	t.Run("bash", func(t *testing.T) {
		const lib = "/usr/share/bash-completion/bash_completion"
		need(t, "bash", "bash")
		need(t, "the bash-completion package", lib)
		// bash fills COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT and
		// calls the function complete -F names; compopt only works inside
		// a real completion, so it is a no-op here.
		var sh strings.Builder
		sh.WriteString("source " + lib + "\nsource " + script(t, "bash") + "\ncompopt() { :; }\n")
		sh.WriteString(`comp() {
  COMP_LINE=$1; COMP_POINT=${#COMP_LINE}
  read -ra COMP_WORDS <<< "$COMP_LINE"
  [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  "$(complete -p databus | sed -E 's/.* -F ([^ ]+) .*/\1/')" databus "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}" "=="
}
`)
		for _, c := range cases {
			sh.WriteString("comp '" + c.line + "'\n")
		}
		// bash splits order.create:v at the colon (COMP_WORDBREAKS); the
		// script puts the word together and answers past the colon.
		sh.WriteString(`COMP_LINE="databus versions --dir ` + repo + ` order.create:v"; COMP_POINT=${#COMP_LINE}
COMP_WORDS=(databus versions --dir ` + repo + ` order.create : v); COMP_CWORD=6; COMPREPLY=()
__start_databus databus v :
printf '%s\n' "${COMPREPLY[@]}" "=="
`)
		lines := run(t, "bash", "-c", sh.String())
		results := splitResults(lines)
		if len(results) != len(cases)+1 {
			t.Fatalf("%d answers for %d questions:\n%s", len(results), len(cases)+1, strings.Join(lines, "\n"))
		}
		for i, c := range cases {
			check(t, "bash", c.line, results[i], c.want)
		}
		check(t, "bash", "order.create:v", results[len(cases)], []string{"v1", "v2"})
	})

	t.Run("zsh", func(t *testing.T) {
		need(t, "zsh", "zsh")
		// zsh completes only in its line editor: an interactive zsh in a
		// pseudo-terminal (zsh/zpty) gets the line and a TAB; compadd,
		// where every candidate ends up, also prints it.
		capture := filepath.Join(t.TempDir(), "capture.zsh")
		os.WriteFile(capture, []byte(zshCapture), 0o644)
		s := script(t, "zsh")
		for _, c := range cases {
			check(t, "zsh", c.line, run(t, "zsh", "-f", capture, s, c.line), c.want)
		}
		check(t, "zsh", "order.create:v", run(t, "zsh", "-f", capture, s, "databus versions --dir "+repo+" order.create:v"), []string{"order.create:v1", "order.create:v2"})
	})

	t.Run("fish", func(t *testing.T) {
		need(t, "fish", "fish")
		var sh strings.Builder
		sh.WriteString("source " + script(t, "fish") + "\n")
		for _, c := range cases {
			sh.WriteString("complete -C '" + c.line + "'; echo ==\n")
		}
		results := splitResults(run(t, "fish", "--no-config", "-c", sh.String()))
		if len(results) != len(cases) {
			t.Fatalf("%d answers for %d questions: %q", len(results), len(cases), results)
		}
		for i, c := range cases {
			check(t, "fish", c.line, results[i], c.want)
		}
	})
}

// splitResults splits lines at the == that ends each answer.
func splitResults(lines []string) [][]string {
	var out [][]string
	var cur []string
	for _, l := range lines {
		if l == "==" {
			out = append(out, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return out
}

// zshCapture completes a command line in an interactive zsh: zsh -f
// capture.zsh SCRIPT 'LINE' prints each candidate of LINE<TAB> on a line.
const zshCapture = `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; autoload -U compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false; bindkey '^I' complete-word"
zpty -w z "null-line () { echo -E - \$'\0' }; compprefuncs=( null-line ); comppostfuncs=( null-line exit )"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  local h; for h in $__hits; do echo -E - "CAND:$h"; done
}'
zpty -w z "source $1"
zpty -w z "echo ready"
local line
while zpty -r z line; do [[ $line == ready* ]] && break; done
zpty -w -n z "$2"$'\t'
integer nulls=0
while zpty -r z line; do
  [[ $line == *CAND:* ]] && print -r -- "${${line#*CAND:}%$'\r'}"
  [[ $line == *$'\0'* ]] && (( ++nulls >= 2 )) && break
done
zpty -d z
`

// Names from the repository reach the terminal through the shell as they
// are: one holding an escape sequence (OSC 52 writes the clipboard, CSI
// colours) is not offered, and a description loses its control
// characters.
func TestCompleteControlCharacters(t *testing.T) {
	const osc, csi = "\x1b]52;c;aGVsbG8=\x07", "\x1b[31m"
	b := gitopstest.New(t, "")
	api := func(code, desc string) string {
		return "apiVersion: databus/v1\nkind: Api\ncode: " + strconv.Quote(code) + "\nversion: v1\ndescription: " + strconv.Quote(desc) +
			"\nstatus: online\nmethods: [POST]\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
	}
	b.Write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
	b.Write("apis/evil.yaml", api("evil"+osc, "Evil"))
	b.Write("apis/red.yaml", api("red"+csi, "Red"))
	b.Write("apis/c1.yaml", api("c1\u009b31m", "C1"))
	b.Write("apis/del.yaml", api("del\x7f", "DEL"))
	b.Write("apis/quote.yaml", api("quote", "Price "+osc+"an order"+csi))
	b.Write("credentials/evil.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: "+strconv.Quote("app"+osc)+"\nsignatureType: HMAC-SHA256\nencryptionType: NONE\n")
	b.Write("credentials/demo.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: demo-app\nsignatureType: HMAC-SHA256\nencryptionType: NONE\n")
	head := b.Commit("Add the APIs " + osc + csi)
	// git refuses such a branch name; a repository may hold one anyway.
	b.Write(".git/refs/heads/evil"+csi, head+"\n")
	repo := b.Dir

	for _, req := range []struct {
		args []string
		want string // in the output
	}{
		{[]string{"versions", "--dir", repo, ""}, "quote\tPrice ]52;c;aGVsbG8=an order[31m\n"},
		{[]string{"call", "--dir", repo, "--app", ""}, "demo-app\n"},
		{[]string{"replay", "--dir", repo, "--api", ""}, "quote\tPrice"},
		{[]string{"diff", "--dir", repo, ""}, "\tAdd the APIs ]52;c;aGVsbG8=[31m\n"},
	} {
		args := append([]string{"__complete"}, req.args...)
		out, errOut, code := runCLI(args...)
		if code != exitOK {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
		for _, r := range out {
			if r == utf8.RuneError || r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f {
				t.Errorf("%q: %U in the output:\n%q", args, r, out)
				break
			}
		}
		if !strings.Contains(out, req.want) {
			t.Errorf("%q: %q not in the output:\n%q", args, req.want, out)
		}
	}
}
