package portal

import (
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/client"
)

// TestHostileBodies sends correctly signed and encrypted calls whose
// plaintext is hostile: invalid UTF-8, deep nesting, truncated JSON, huge
// numbers. Each gets a documented answer in the envelope; none crashes the
// gateway or answers 5xx, and a normal call still works afterwards.
func TestHostileBodies(t *testing.T) {
	f := newSecureFixture(t)
	aes := f.client("app-aes")
	// sec.typed declares an input schema (a JSON object), so its body must
	// be JSON; sec.who has none and takes a body that is not JSON as text.
	tests := []struct {
		name   string
		api    string
		body   string
		status int
	}{
		{"invalid UTF-8 outside strings", "sec.typed", "\xff\xfe{\"a\":1}", 400},
		{"invalid UTF-8 inside a string", "sec.typed", "{\"name\":\"\xff\xfe\"}", 200},
		{"nested arrays, 100k deep", "sec.typed", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), 400},
		{"nested objects, 20k deep", "sec.typed", strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000), 400},
		{"unclosed nesting", "sec.typed", strings.Repeat("[", 50000), 400},
		{"truncated JSON", "sec.typed", `{"orderNo":"SO1","items":[`, 400},
		{"number beyond float64 (valid JSON)", "sec.typed", `{"n":1e400}`, 200},
		{"NUL bytes", "sec.typed", "{\"a\":\"\x00\x00\"}", 400},
		{"many keys", "sec.typed", "{" + strings.Repeat(`"k":1,`, 50000) + `"k":2}`, 200},
		{"not JSON, as text", "sec.who", "\xff\xfe" + strings.Repeat("[", 100000), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.send(t, aes, "POST", tt.api, nil, tt.body, nil)
			if resp.StatusCode >= 500 || resp.Envelope.Code != resp.StatusCode || resp.Envelope.TraceID == "" {
				t.Fatalf("HTTP %d, envelope %+v", resp.StatusCode, resp.Envelope)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("HTTP %d %q, want %d", resp.StatusCode, resp.Envelope.Message, tt.status)
			}
		})
	}
	t.Run("duplicated security headers", func(t *testing.T) {
		for _, h := range []string{"ZT-App-Id", "ZT-Nonce", "ZT-Timestamp"} {
			resp := f.send(t, aes, "POST", "sec.who", nil, `{}`, func(r *client.Request) { r.Header.Add(h, r.Header.Get(h)) })
			if resp.StatusCode != 401 {
				t.Errorf("two %s headers: HTTP %d %q, want 401", h, resp.StatusCode, resp.Envelope.Message)
			}
		}
	})
	resp := f.send(t, aes, "POST", "sec.who", nil, `{"x":1}`, nil)
	expect(t, "normal call afterwards", resp, 200, MsgOK, true)
}
