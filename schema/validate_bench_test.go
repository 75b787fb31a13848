package schema

import (
	"encoding/json"
	"testing"
)

// BenchmarkValidateAPI validates one API document of the scale
// repository's shape: the schema's share of a cold load.
func BenchmarkValidateAPI(b *testing.B) {
	var doc any
	json.Unmarshal([]byte(`{"apiVersion":"databus/v1","kind":"Api","code":"scale.svc1","version":"v1","description":"x","status":"online","methods":["POST"],
"auth":{"credentials":["app-01"]},"policies":{"rateLimit":"p00001"},"transforms":{"response":"{id: .steps.call.body.id}"},
"steps":[{"id":"start","type":"start"},{"id":"call","type":"http","http":{"method":"POST","url":"http://127.0.0.1:9/orders/1","timeout":"5s"}},{"id":"end","type":"end"}]}`), &doc)
	if vs := Validate(KindApi, doc); len(vs) != 0 {
		b.Fatal(vs)
	}
	b.ReportAllocs()
	for b.Loop() {
		Validate(KindApi, doc)
	}
}
