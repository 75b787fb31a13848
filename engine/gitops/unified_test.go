package gitops

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "%d\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name, a, b, want string
	}{
		{"equal", "a\n", "a\n", ""},
		{"both empty", "", "", ""},
		{"added file", "", "a\nb\n", "--- A\n+++ B\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"removed file", "a\n", "", "--- A\n+++ B\n@@ -1 +0,0 @@\n-a\n"},
		{"one line", "a\nb\nc\n", "a\nB\nc\n", "--- A\n+++ B\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"context is 3 lines", lines(1, 10), strings.Replace(lines(1, 10), "5\n", "five\n", 1),
			"--- A\n+++ B\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"two hunks", lines(1, 20), strings.Replace(strings.Replace(lines(1, 20), "2\n", "two\n", 1), "19\n", "nineteen\n", 1),
			"--- A\n+++ B\n@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n@@ -16,5 +16,5 @@\n 16\n 17\n 18\n-19\n+nineteen\n 20\n"},
		{"hunks 6 lines apart merge", lines(1, 12), strings.Replace(strings.Replace(lines(1, 12), "3\n", "x\n", 1), "10\n", "y\n", 1),
			"--- A\n+++ B\n@@ -1,12 +1,12 @@\n 1\n 2\n-3\n+x\n 4\n 5\n 6\n 7\n 8\n 9\n-10\n+y\n 11\n 12\n"},
		{"insert at the end", "a\nb\n", "a\nb\nc\n", "--- A\n+++ B\n@@ -1,2 +1,3 @@\n a\n b\n+c\n"},
		{"no newline at the end", "a\nb", "a\nc", "--- A\n+++ B\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"newline added at the end", "a", "a\n", "--- A\n+++ B\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UnifiedDiff([]byte(tt.a), []byte(tt.b), "A", "B")
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// apply applies a unified diff to a, checking every context and removed
// line, the hunk headers and the line counts, as patch -F0 would.
func apply(t *testing.T, a, diff string) string {
	t.Helper()
	src := splitLines(a)
	var out []string
	lines := splitLines(diff)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- ") || !strings.HasPrefix(lines[1], "+++ ") {
		t.Fatalf("bad header:\n%s", diff)
	}
	pos := 0 // next line of src to copy
	i := 2
	for i < len(lines) {
		var as, al, bs, bl int
		h := strings.TrimSuffix(lines[i], "\n")
		if _, err := fmt.Sscanf(h, "@@ -%s +%s @@", new(string), new(string)); err != nil {
			t.Fatalf("bad hunk header %q", h)
		}
		parts := strings.Fields(h)
		parse := func(s string) (int, int) {
			start, n, ok := strings.Cut(s[1:], ",")
			st, _ := strconv.Atoi(start)
			if !ok {
				return st, 1
			}
			c, _ := strconv.Atoi(n)
			return st, c
		}
		as, al = parse(parts[1])
		bs, bl = parse(parts[2])
		first := as - 1
		if al == 0 {
			first = as
		}
		if first < pos {
			t.Fatalf("hunk %q overlaps the previous one", h)
		}
		if len(out)+(first-pos) != bs-1 && !(bl == 0 && len(out)+(first-pos) == bs) {
			t.Fatalf("hunk %q: new start does not match", h)
		}
		out = append(out, src[pos:first]...)
		pos = first
		i++
		na, nb := 0, 0
		for i < len(lines) && !strings.HasPrefix(lines[i], "@@") {
			l := lines[i]
			body := l[1:]
			if i+1 < len(lines) && lines[i+1] == "\\ No newline at end of file\n" {
				body = strings.TrimSuffix(body, "\n")
				i++
			}
			switch l[0] {
			case ' ', '-':
				if pos >= len(src) || src[pos] != body {
					t.Fatalf("hunk %q: line %d is %q, diff says %q", h, pos+1, src[pos], body)
				}
				pos++
				na++
				if l[0] == ' ' {
					out = append(out, body)
					nb++
				}
			case '+':
				out = append(out, body)
				nb++
			default:
				t.Fatalf("bad line %q", l)
			}
			i++
		}
		if na != al || nb != bl {
			t.Fatalf("hunk %q holds %d/%d lines", h, na, nb)
		}
	}
	out = append(out, src[pos:]...)
	return strings.Join(out, "")
}

func TestUnifiedDiffApplies(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	gen := func() string {
		var b strings.Builder
		for i, n := 0, rng.Intn(40); i < n; i++ {
			fmt.Fprintf(&b, "%c\n", 'a'+rng.Intn(6))
		}
		s := b.String()
		if s != "" && rng.Intn(4) == 0 {
			s = strings.TrimSuffix(s, "\n")
		}
		return s
	}
	for i := 0; i < 3000; i++ {
		a, b := gen(), gen()
		if rng.Intn(2) == 0 && len(a) > 2 { // small edits of the same text
			b = a[:len(a)/3] + gen() + a[2*len(a)/3:]
		}
		d := UnifiedDiff([]byte(a), []byte(b), "a", "b")
		if (d == "") != (a == b) {
			t.Fatalf("a=%q b=%q: diff %q", a, b, d)
		}
		if d == "" {
			continue
		}
		if got := apply(t, a, d); got != b {
			t.Fatalf("a=%q b=%q\n%s\napplied: %q", a, b, d, got)
		}
		// Minimal: the number of changed lines is the edit distance.
		changed := 0
		for _, l := range splitLines(d)[2:] {
			if l[0] == '+' || l[0] == '-' {
				changed++
			}
		}
		if want := editDistance(splitLines(a), splitLines(b)); changed != want {
			t.Fatalf("a=%q b=%q: %d changed lines, edit distance %d\n%s", a, b, changed, want, d)
		}
	}
}

// editDistance is the insert/delete distance through the LCS.
func editDistance(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return len(a) + len(b) - 2*dp[0][0]
}

// Files that share nothing stay bounded in time: past maxEdit the middle is
// replaced as a whole.
func TestUnifiedDiffLarge(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 3*maxEdit; i++ {
		fmt.Fprintf(&a, "a%d\n", i)
		fmt.Fprintf(&b, "b%d\n", i)
	}
	d := UnifiedDiff([]byte(a.String()), []byte(b.String()), "a", "b")
	if got := apply(t, a.String(), d); got != b.String() {
		t.Fatal("large diff does not apply")
	}
}

func BenchmarkUnifiedDiff(b *testing.B) {
	var x, y strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&x, "line %d\n", i)
		if i%50 == 0 {
			fmt.Fprintf(&y, "changed %d\n", i)
		} else {
			fmt.Fprintf(&y, "line %d\n", i)
		}
	}
	for b.Loop() {
		UnifiedDiff([]byte(x.String()), []byte(y.String()), "a", "b")
	}
}
