package gitops

import (
	"fmt"
	"strings"
)

// context is the number of unchanged lines around each hunk, as diff -u.
const contextLines = 3

// maxEdit bounds the Myers search: beyond that many differing lines the
// remaining middle is shown as removed and re-added, which keeps time and
// memory bounded on files that share next to nothing.
const maxEdit = 1000

// UnifiedDiff returns the unified diff of a and b (--- nameA, +++ nameB,
// @@ hunks with 3 lines of context, "\ No newline at end of file" where it
// applies), or "" when they are equal. Pass nil and "/dev/null" for a
// missing side.
func UnifiedDiff(a, b []byte, nameA, nameB string) string {
	if string(a) == string(b) {
		return ""
	}
	la, lb := splitLines(string(a)), splitLines(string(b))
	ops := diffLines(la, lb)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	for _, h := range hunks(ops) {
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(h.aStart, h.aLen), hunkRange(h.bStart, h.bLen))
		for _, op := range h.ops {
			var line string
			switch op.kind {
			case ' ':
				line = la[op.a]
			case '-':
				line = la[op.a]
			case '+':
				line = lb[op.b]
			}
			sb.WriteByte(op.kind)
			if strings.HasSuffix(line, "\n") {
				sb.WriteString(line)
			} else {
				sb.WriteString(line)
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
	}
	return sb.String()
}

// splitLines splits s after every newline; the last line may lack one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// op is one line of an edit script: ' ' kept, '-' removed, '+' added; a and
// b index the line in each side.
type op struct {
	kind byte
	a, b int
}

// diffLines returns a shortest edit script from a to b (Myers' O(ND)
// algorithm on the part between the common prefix and suffix).
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []op
	for i := 0; i < pre; i++ {
		ops = append(ops, op{' ', i, i})
	}
	ops = append(ops, myers(a[pre:len(a)-suf], b[pre:len(b)-suf], pre, pre)...)
	for i := 0; i < suf; i++ {
		ops = append(ops, op{' ', len(a) - suf + i, len(b) - suf + i})
	}
	return ops
}

// myers diffs a and b, whose first lines are line offA and offB of the
// whole files.
func myers(a, b []string, offA, offB int) []op {
	n, m := len(a), len(b)
	max := n + m
	if max == 0 {
		return nil
	}
	replaceAll := func() []op {
		var ops []op
		for i := range a {
			ops = append(ops, op{'-', offA + i, 0})
		}
		for j := range b {
			ops = append(ops, op{'+', 0, offB + j})
		}
		return ops
	}
	// Lines as ints, so that comparisons are cheap.
	ids := map[string]int{}
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	x, y := intern(a), intern(b)
	limit := max
	if limit > maxEdit {
		limit = maxEdit
	}
	off := limit
	v := make([]int, 2*limit+2)
	// trace[d] holds v[-d..d] after round d: O(D²) memory, bounded by maxEdit.
	var trace [][]int
	found := false
	for d := 0; d <= limit && !found; d++ {
		for k := -d; k <= d; k += 2 {
			var i int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				i = v[off+k+1] // down: insertion
			} else {
				i = v[off+k-1] + 1 // right: deletion
			}
			j := i - k
			for i < n && j < m && x[i] == y[j] {
				i++
				j++
			}
			v[off+k] = i
			if i >= n && j >= m {
				found = true
				break
			}
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
	}
	if !found {
		return replaceAll()
	}
	// Walk back from (n, m) through the rounds.
	var rev []op
	i, j := n, m
	for d := len(trace) - 1; d > 0; d-- {
		prev := trace[d-1]
		at := func(k int) int { return prev[k+d-1] }
		k := i - j
		var prevK int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevI := at(prevK)
		prevJ := prevI - prevK
		for i > prevI && j > prevJ {
			i--
			j--
			rev = append(rev, op{' ', offA + i, offB + j})
		}
		if i == prevI {
			j--
			rev = append(rev, op{'+', offA + i, offB + j})
		} else {
			i--
			rev = append(rev, op{'-', offA + i, offB + j})
		}
	}
	for i > 0 && j > 0 {
		i--
		j--
		rev = append(rev, op{' ', offA + i, offB + j})
	}
	ops := make([]op, len(rev))
	for k := range rev {
		ops[k] = rev[len(rev)-1-k]
	}
	return ops
}

// hunk is a run of ops with its line ranges (1-based starts).
type hunk struct {
	aStart, aLen, bStart, bLen int
	ops                        []op
}

// hunks groups an edit script into hunks with contextLines of context,
// merging hunks whose contexts touch.
func hunks(ops []op) []hunk {
	var out []hunk
	// Positions of changes.
	var changed []int
	for i, o := range ops {
		if o.kind != ' ' {
			changed = append(changed, i)
		}
	}
	for c := 0; c < len(changed); {
		start := changed[c] - contextLines
		if start < 0 {
			start = 0
		}
		end := changed[c] + contextLines + 1
		c++
		for c < len(changed) && changed[c]-contextLines <= end {
			end = changed[c] + contextLines + 1
			c++
		}
		if end > len(ops) {
			end = len(ops)
		}
		out = append(out, makeHunk(ops[start:end], ops, start))
	}
	return out
}

func makeHunk(part, all []op, start int) hunk {
	h := hunk{ops: part}
	// Line numbers where the hunk starts on each side: count the lines of
	// each side before it.
	aLine, bLine := 0, 0
	for _, o := range all[:start] {
		if o.kind != '+' {
			aLine++
		}
		if o.kind != '-' {
			bLine++
		}
	}
	for _, o := range part {
		if o.kind != '+' {
			h.aLen++
		}
		if o.kind != '-' {
			h.bLen++
		}
	}
	h.aStart, h.bStart = aLine+1, bLine+1
	if h.aLen == 0 {
		h.aStart = aLine // an empty range names the line before it
	}
	if h.bLen == 0 {
		h.bStart = bLine
	}
	return h
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
