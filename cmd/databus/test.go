package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/databus-gateway/databus/engine/apitest"
)

const testUsage = "[DIR] [--run PATTERN] [--timeout 10m] [--format text|json|github] [-v]"

func runTest(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", testUsage,
		"run the contract tests in tests/ (kind ApiTest) through the gate and the real portal chain in process, outbound calls answered by the cases' stubs on loopback; exit 0 all passed, 1 a case failed or the repository is refused, 2 usage or unreadable path", stderr)
	dir := fs.String("dir", ".", "config repository (or give it as the argument)")
	run := fs.String("run", "", "run only the cases whose name <file>/<case> (file below tests/, without .yaml) matches this regular expression")
	format := fs.String("format", "text", "output: text (failures with file:line and a diff), json, or github (workflow annotations)")
	parallel := fs.Int("parallel", 0, "cases run at once (default: the number of CPUs)")
	verbose := fs.Bool("v", false, "list the cases that passed too")
	timeout := fs.Duration("timeout", 10*time.Minute, "the whole run's time: the cases that did not finish by then are listed and the run fails (a case's own timeout is at most 2m)")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if !repoArgs("test", pos, dir, *format, stderr) {
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "databus test: --timeout must be positive\n")
		return exitUsage
	}
	o := apitest.Options{Parallel: *parallel, Timeout: *timeout}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintf(stderr, "databus test: --run: %v\n", err)
			return exitUsage
		}
		o.Run = re
	}
	if *parallel < 0 {
		fmt.Fprintf(stderr, "databus test: --parallel must be at least 0\n")
		return exitUsage
	}
	rep, err := apitest.Run(context.Background(), *dir, o)
	if err != nil {
		fmt.Fprintf(stderr, "databus test: %v\n", err)
		return exitUsage
	}
	if err := rep.Write(stdout, *format, *dir, *verbose); err != nil {
		fmt.Fprintf(stderr, "databus test: %v\n", err)
		return exitUsage
	}
	if !rep.OK() {
		return exitInvalid
	}
	return exitOK
}
