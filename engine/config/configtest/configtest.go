// Package configtest generates config repositories for benchmarks and
// tests of the packages that load them.
package configtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// WriteLargeRepo generates a repository of apis APIs, creds credentials and
// pols policies, each API with a realistic flow: input schema, transforms,
// an http step with interpolations, a script step.
func WriteLargeRepo(tb testing.TB, dir string, apis, creds, pols int) {
	tb.Helper()
	for _, sub := range []string{"apis", "credentials", "policies"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write := func(rel, body string) {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  basePath: /api\n  security: {enabled: true}\n")
	for i := 0; i < pols; i++ {
		write(fmt.Sprintf("policies/p%03d.yaml", i), fmt.Sprintf(`apiVersion: databus/v1
kind: RateLimitPolicy
name: p%03d
algorithm: sliding-window
limit: %d
windowSeconds: 60
keyTemplate: '${apiCode}:${version}:${appId}:${header.X-Client-Id}'
`, i, 100+i))
	}
	for i := 0; i < creds; i++ {
		write(fmt.Sprintf("credentials/c%03d.yaml", i), fmt.Sprintf(`apiVersion: databus/v1
kind: Credential
appId: app-%03d
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:APP_%03d_KEY'}
allowedIps: [10.0.0.0/8, "fd00::/8"]
`, i, i))
	}
	for i := 0; i < apis; i++ {
		write(fmt.Sprintf("apis/a%04d.yaml", i), fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: svc%d.order
version: v%d
status: online
methods: [POST]
auth: {credentials: [app-%03d, app-%03d]}
policies: {rateLimit: p%03d}
input:
  type: object
  required: [orderNo]
  properties:
    orderNo: {type: string, minLength: 1}
    items: {type: array, items: {type: object, properties: {qty: {type: integer}}}}
transforms:
  response: '{orderNo: .request.body.orderNo, total: .steps.price.total, id: .steps.create.id}'
steps:
  - {id: start, type: start}
  - id: price
    type: script
    script:
      source: |
        function main(ctx) {
          var t = 0;
          (ctx.request.body.items || []).forEach(function (it) { t += it.qty; });
          return {total: t};
        }
  - id: create
    type: http
    when: '.steps.price.total > 0'
    http:
      method: POST
      url: 'http://127.0.0.1:9001/orders/${.request.body.orderNo}'
      headers: {X-Trace: '${.traceId}', X-App: '${.request.appId}'}
      query: {total: '${.steps.price.total}'}
      timeout: 5s
      retry: {attempts: 2, backoff: 100ms, force: true}
    transforms:
      request: '{orderNo: .request.body.orderNo, items: .request.body.items}'
      response: '.body.data'
      error: '{reason: .body.message}'
  - {id: end, type: end}
`, i/10, i%10+1, i%creds, (i+1)%creds, i%pols))
	}
}
