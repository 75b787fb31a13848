package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gitops"
)

// Shell completion. The bash, zsh and fish scripts are cobra's: they ask
// the binary what to offer with `databus __complete ARGS... WORD` (cobra's
// protocol: one candidate a line, a tab before its description, then
// :DIRECTIVE). The command tree they complete is built from `commands` and
// the FlagSet each command makes for itself (flagsOf), so it cannot drift
// from what the commands accept; only the CLI's completion uses cobra.

const completionUsage = "bash|zsh|fish [--no-descriptions]"

// completionShells are the shells `databus completion` writes a script for.
var completionShells = []string{"bash", "zsh", "fish"}

// revisionCommits is how many of the latest commits a REV completes to,
// beside HEAD, the branches and the tags (gitops.MaxRevisionRefs).
const revisionCommits = 100

// completeDeadline bounds the names one request reads from the repository
// (API codes, appIds, revisions): past it the names found so far are
// offered, so that no repository can hang a Tab.
const completeDeadline = 2 * time.Second

func runCompletion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("completion", completionUsage,
		"print the completion script of a shell: commands, flags, fixed flag values, API codes of --dir and git revisions", stderr)
	noDesc := fs.Bool("no-descriptions", false, "candidates without their descriptions")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "databus completion: name one shell (%s), got %d arguments\n", strings.Join(completionShells, ", "), len(pos))
		return exitUsage
	}
	root := completionTree()
	var err error
	switch pos[0] {
	case "bash":
		err = root.GenBashCompletionV2(stdout, !*noDesc)
	case "zsh":
		if *noDesc {
			err = root.GenZshCompletionNoDesc(stdout)
		} else {
			err = root.GenZshCompletion(stdout)
		}
	case "fish":
		err = root.GenFishCompletion(stdout, !*noDesc)
	default:
		fmt.Fprintf(stderr, "databus completion: unknown shell %q: expected %s\n", pos[0], strings.Join(completionShells, ", "))
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "databus completion: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// runComplete answers the scripts: args are cobra's request, starting
// with __complete (or __completeNoDesc).
func runComplete(args []string, stdout, stderr io.Writer) int {
	root := completionTree()
	root.SetArgs(doubleDash(args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	ctx, cancel := context.WithTimeout(context.Background(), completeDeadline)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		return exitUsage
	}
	return exitOK
}

// doubleDash turns the Go flag syntax -name (one dash, as the commands
// also take) into --name for cobra's parser, which reads -name as the
// short flags n, a, m and e. The word being completed, the last, is left
// as typed.
func doubleDash(args []string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out)-1; i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && (a[1] < '0' || a[1] > '9') {
			out[i] = "-" + a
		}
	}
	return out
}

// flagCatcher is the stderr flagsOf runs a command with: newFlagSet hands
// it the FlagSet the command makes, and --help stops the command there.
type flagCatcher struct{ fs *flag.FlagSet }

func (*flagCatcher) Write(p []byte) (int, error) { return len(p), nil }

// flagsOf returns the flags c accepts: c run with --help, which every
// command answers after making its FlagSet and before doing anything.
func flagsOf(c *command) *flag.FlagSet {
	var fc flagCatcher
	c.run([]string{"--help"}, io.Discard, &fc)
	return fc.fs
}

// completionTree mirrors the commands for cobra.
func completionTree() *cobra.Command {
	root := &cobra.Command{
		Use:               "databus",
		Short:             "a declarative, git-driven API gateway",
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c := commands[name]
		sub := &cobra.Command{
			Use:                   strings.TrimSpace(name + " " + c.usage),
			Short:                 c.summary,
			DisableFlagsInUseLine: true,
			Run:                   func(*cobra.Command, []string) {},
		}
		if fs := flagsOf(c); fs != nil {
			sub.Flags().AddGoFlagSet(fs)
		}
		if f := argCompletions[name]; f != nil {
			sub.ValidArgsFunction = sanitized(f)
		} else {
			sub.ValidArgsFunction = cobra.NoFileCompletions
		}
		sub.Flags().VisitAll(func(f *pflag.Flag) {
			if fn := flagCompletion(name, f.Name); fn != nil {
				sub.RegisterFlagCompletionFunc(f.Name, sanitized(fn))
			}
		})
		root.AddCommand(sub)
	}
	// databus --version and --help, as run takes them.
	root.Flags().Bool("version", false, "print the version of this binary")
	root.Flags().BoolP("help", "h", false, "list the commands")
	// databus help COMMAND, as run takes it: cobra's help command, which
	// completes command names, in our words.
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Short = "print the usage and flags of a command"
		}
	}
	return root
}

// What the arguments of each command complete to; a command not named
// here takes none.
var argCompletions = map[string]cobra.CompletionFunc{
	"validate":   dirArgument,
	"test":       dirArgument,
	"versions":   apiArgument,
	"rollback":   apiArgument,
	"call":       apiArgument,
	"sign":       apiArgument,
	"bench":      apiArgument,
	"diff":       revisionArguments(2), // REV [REV2]
	"completion": fixedArgument(completionShells),
}

// flagChoices are the values of the flags that take one of a few. The
// commands check them; TestFlagChoices keeps the two in step.
var flagChoices = map[string]map[string][]string{
	"validate": {"format": {"text", "json", "github"}},
	"test":     {"format": {"text", "json", "github"}},
	"versions": {"format": {"text", "json"}},
	"version":  {"format": {"text", "json"}},
	"diff":     {"format": {"text", "markdown", "json"}, "fail-on": {"breaking"}},
	"replay":   {"format": {"text", "json", "markdown"}},
	"serve":    {"log-format": {"text", "json"}, "log-level": {"debug", "info", "warn", "error"}},
	"bench":    {"format": {"text", "json"}, "sign-type": signTypes, "enc-type": encTypes, "method": methods},
	"call":     {"sign-type": signTypes, "enc-type": encTypes, "method": methods},
	"sign":     {"sign-type": signTypes, "enc-type": encTypes, "method": methods},
	"logs":     {"status": {"0", "1", "2", "3"}},
}

var (
	signTypes = []string{"HMAC-SHA256", "SHA256", "MD5"}
	encTypes  = []string{"AES", "AES-GCM", "DES", "NONE"}
	methods   = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
)

// flagCompletion is what the value of command's flag completes to: fixed
// choices, directories, API codes, appIds or revisions; nil for the
// shell's default (file names).
func flagCompletion(command, name string) cobra.CompletionFunc {
	if choices, ok := flagChoices[command][name]; ok {
		return cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveKeepOrder)
	}
	switch {
	case name == "dir":
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
	case name == "api": // logs, replay, diff: an API code
		return apiCodes
	case name == "app": // call, sign, bench, logs: an appId of --dir
		return appIDs
	case command == "rollback" && name == "to", command == "replay" && name == "rev":
		return revisions
	}
	return nil
}

// repoDir is the config repository a completion reads: --dir, the DIR
// argument of validate and test, else the current folder.
func repoDir(cmd *cobra.Command, args []string) string {
	if (cmd.Name() == "validate" || cmd.Name() == "test") && len(args) > 0 {
		return args[0]
	}
	if f := cmd.Flags().Lookup("dir"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	return "."
}

// names reads the repository's names; a folder that is not one, or a
// broken one, offers nothing and says nothing.
func names(cmd *cobra.Command, args []string) *config.Names {
	n, err := config.ReadNames(cmd.Context(), repoDir(cmd, args), config.DefaultNameLimits)
	if err != nil {
		return &config.Names{}
	}
	return n
}

func dirArgument(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// apiArgument completes an API as code or code:version.
func apiArgument(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return apiNames(cmd, args, word, true), cobra.ShellCompDirectiveNoFileComp
}

// apiCodes completes an API code (--api).
func apiCodes(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
	return apiNames(cmd, args, word, false), cobra.ShellCompDirectiveNoFileComp
}

// apiNames are the API codes of the repository starting with word, each
// once, and with versions also each code:version.
func apiNames(cmd *cobra.Command, args []string, word string, versions bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range names(cmd, args).APIs {
		if !seen[a.Code] && strings.HasPrefix(a.Code, word) {
			seen[a.Code] = true
			out = append(out, withDescription(a.Code, a.Description))
		}
		if ref := a.Code + ":" + a.Version; versions && strings.HasPrefix(ref, word) {
			out = append(out, withDescription(ref, a.Description))
		}
	}
	return out
}

// appIDs completes a credential's appId (--app).
func appIDs(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, id := range names(cmd, args).Credentials {
		if strings.HasPrefix(id, word) {
			out = append(out, id)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// revisionArguments completes the first n arguments as revisions.
func revisionArguments(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return revisions(cmd, args, word)
	}
}

// revisions completes a revision of --dir's git repository: HEAD, the
// branches, the tags, the remote branches and the latest commits, in that
// order.
func revisions(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
	const directive = cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	repo, err := gitops.Open(repoDir(cmd, args))
	if err != nil {
		return nil, directive
	}
	revs, err := repo.RevisionNames(cmd.Context(), revisionCommits)
	if err != nil {
		return nil, directive
	}
	var out []string
	for _, r := range revs {
		if !strings.HasPrefix(r.Name, word) {
			continue
		}
		desc := string(r.Kind)
		if r.Subject != "" && r.Kind != gitops.KindCommit {
			desc += ": " + r.Subject
		} else if r.Subject != "" {
			desc = r.Subject
		}
		out = append(out, withDescription(r.Name, desc))
	}
	return out, directive
}

func fixedArgument(choices []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, c := range choices {
			if strings.HasPrefix(c, word) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func withDescription(value, desc string) string {
	if desc == "" {
		return value
	}
	return cobra.CompletionWithDesc(value, desc)
}

// sanitized is f whose candidates are fit for a terminal: the names come
// from the repository (API codes and descriptions, appIds, branches, tags,
// commit subjects), and the shell prints them as they are, so an escape
// sequence in one would reach the terminal (OSC 52 writes the clipboard).
// A candidate whose value holds a control character (C0, DEL, C1) or is
// not UTF-8 is dropped; a description loses its control characters.
func sanitized(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
		got, directive := f(cmd, args, word)
		out := got[:0]
		for _, c := range got {
			value, desc, _ := strings.Cut(c, "\t")
			if !terminalSafe(value) {
				continue
			}
			out = append(out, withDescription(value, strings.TrimSpace(strings.Map(dropControl, strings.ToValidUTF8(desc, "")))))
		}
		return out, directive
	}
}

// isControl: C0 (tab and newline among them), DEL and C1.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

func dropControl(r rune) rune {
	if isControl(r) {
		return -1
	}
	return r
}

// terminalSafe: valid UTF-8 without a control character.
func terminalSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if isControl(r) {
			return false
		}
	}
	return true
}
