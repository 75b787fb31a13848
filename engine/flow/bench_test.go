package flow

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkPassthrough: start → http → end, no transforms: the caller's
// body goes up, the upstream's JSON comes back undecoded.
func BenchmarkPassthrough(b *testing.B) {
	up := newUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"ORD-1","status":"new","items":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}`)
	})
	f := compileFlow(b, testEnv(b), `
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {method: POST, url: '{{up}}/orders'}}
  - {id: end, type: end}
`, up.URL)
	req := jsonReq(`{"orderNo":"A-1","items":[{"sku":"a","qty":1}]}`)
	benchRun(b, f, req)
}

// BenchmarkThreeStepJQ: http + script + http with jq transforms at every
// level and interpolated urls and headers.
func BenchmarkThreeStepJQ(b *testing.B) {
	up := newUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"ORD-1","ok":true,"data":{"price":12.5,"qty":3}}`)
	})
	f := compileFlow(b, testEnv(b), `
input:
  type: object
  required: [orderNo]
transforms:
  request: '.request.body + {channel: "gw"}'
  response: '{orderNo: .steps.create.id, total: .steps.price.total, ok: .steps.confirm.ok}'
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http:
      method: POST
      url: '{{up}}/orders/${.request.body.orderNo}'
      headers: {X-Tenant: '${.request.tenantId}'}
    transforms:
      request: '{no: .request.body.orderNo, channel: .request.body.channel}'
      response: '{id: .body.id, price: .body.data.price, qty: .body.data.qty}'
  - id: price
    type: script
    script: {source: 'function main(ctx) { var c = ctx.steps.create; return {total: c.price * c.qty} }'}
  - id: confirm
    type: http
    http:
      method: PUT
      url: '{{up}}/orders/${.steps.create.id}/confirm'
    transforms:
      request: '{total: .steps.price.total}'
      response: '{ok: .body.ok}'
  - {id: end, type: end}
`, up.URL)
	benchRun(b, f, jsonReq(`{"orderNo":"A-1","items":[{"sku":"a","qty":1}]}`))
}

func benchRun(b *testing.B, f *Flow, req *Request) {
	// One warm-up call checks the flow works and opens the connection.
	res := f.Run(context.Background(), req)
	if res.Err != nil {
		b.Fatal(res.Err)
	}
	res.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := f.Run(context.Background(), req)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		if _, err := res.Output.JSON(); err != nil {
			b.Fatal(err)
		}
		res.Close()
	}
}

// BenchmarkScript: start → script → end; every run gets a fresh runtime.
func BenchmarkScript(b *testing.B) {
	f := compileFlow(b, testEnv(b), `
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script:
      source: |
        var rates = {a: 1.5, b: 2};
        function main(ctx) {
          var total = 0;
          ctx.request.body.items.forEach(function (i) { total += i.qty * (rates[i.sku] || 1); });
          return {total: total, n: ctx.request.body.items.length};
        }
  - {id: end, type: end}
`, "")
	benchRun(b, f, jsonReq(`{"orderNo":"A-1","items":[{"sku":"a","qty":1},{"sku":"b","qty":4}]}`))
}

// BenchmarkResponseJQ: start → http → end with one API response transform,
// the shape of ci/bench's jq target: the upstream's JSON is decoded, the
// program reads three fields of it, and its value is encoded for the
// envelope.
func BenchmarkResponseJQ(b *testing.B) {
	up := newUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orderNo":"A-1001","status":"accepted","createdAt":"2026-01-02T03:04:05Z",`+
			`"items":[{"sku":"SKU-1","qty":2,"price":12.5},{"sku":"SKU-2","qty":1,"price":99.9}],"total":124.9}`)
	})
	f := compileFlow(b, testEnv(b), `
transforms:
  response: '{orderNo: .steps.call.orderNo, status: .steps.call.status, lines: (.steps.call.items | length)}'
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {method: POST, url: '{{up}}/orders'}}
  - {id: end, type: end}
`, up.URL)
	req := jsonReq(`{"orderNo":"A-1001","items":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1}]}`)
	benchRun(b, f, req)
}
