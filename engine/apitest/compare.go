package apitest

import (
	"bytes"
	"encoding/json"
	"strings"
)

// normalize turns a JSON-shaped value (json.Number numbers, as the loader
// reads the files and answers are decoded) into what jq programs take:
// int when the number is a whole one that fits, else float64.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && int64(int(i)) == i {
			return int(i)
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int64:
		return int(x)
	}
	return v
}

// roundTrip turns any Go value into its JSON-shaped form.
func roundTrip(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return decodeJSON(b)
}

// decodeJSON decodes b with numbers normalized; nil when b is not JSON.
func decodeJSON(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return normalize(v)
}

// decodeJSONOrText is a body as assertions see it: parsed when it is
// JSON, else its text ("" for none).
func decodeJSONOrText(b []byte) any {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return string(b)
	}
	return normalize(v)
}

func isComposite(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// pretty renders v as indented JSON with sorted keys.
func pretty(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "<not JSON>"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// compact renders v as one line of JSON.
func compact(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "<not JSON>"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// maxDiffLines bounds the lines a diff compares (the longest common
// subsequence is quadratic): beyond it the two values are shown whole.
const maxDiffLines = 2000

// Diff renders a line diff of expected and actual: lines only in expected
// start with "- ", lines only in actual with "+ ", common ones with "  ".
func Diff(expected, actual string) string {
	a, b := strings.Split(expected, "\n"), strings.Split(actual, "\n")
	var out strings.Builder
	if len(a) > maxDiffLines || len(b) > maxDiffLines {
		for _, l := range a {
			out.WriteString("- " + l + "\n")
		}
		for _, l := range b {
			out.WriteString("+ " + l + "\n")
		}
		return out.String()
	}
	// lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out.WriteString("  " + a[i] + "\n")
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] > lcs[i+1][j]):
			out.WriteString("+ " + b[j] + "\n")
			j++
		default:
			out.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return out.String()
}
