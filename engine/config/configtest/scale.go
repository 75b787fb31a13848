package configtest

import (
	"fmt"
	"os"
	"path/filepath"
)

// ScaleFiles is the repository of the scale benchmarks: n APIs, each
// start → http → end with a jq response transform and its own rate-limit
// policy, callable by one of 20 HMAC credentials, with security on. The
// http steps call upstream (host:port). It returns the files by
// repository-relative path.
func ScaleFiles(n int, upstream string) map[string][]byte {
	const creds = 20
	files := map[string][]byte{
		"databus.yaml": []byte("apiVersion: databus/v1\nkind: Settings\napiPortal:\n  basePath: /api\n  security: {enabled: true}\n"),
	}
	for i := 0; i < creds; i++ {
		files[fmt.Sprintf("credentials/app-%02d.yaml", i)] = fmt.Appendf(nil, `apiVersion: databus/v1
kind: Credential
appId: app-%02d
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:DATABUS_SCALE_KEY'}
`, i)
	}
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("policies/p%05d.yaml", i)] = fmt.Appendf(nil, `apiVersion: databus/v1
kind: RateLimitPolicy
name: p%05d
limit: %d
windowSeconds: 60
`, i, 1000+i%100)
		files[fmt.Sprintf("apis/a%05d.yaml", i)] = fmt.Appendf(nil, `apiVersion: databus/v1
kind: Api
code: scale.svc%d
version: v%d
description: Scale API %d
status: online
methods: [POST]
auth: {credentials: [app-%02d]}
policies: {rateLimit: p%05d}
transforms:
  response: '{id: .steps.call.body.id, total: (.steps.call.body.items // [] | length), api: %d}'
steps:
  - {id: start, type: start}
  - id: call
    type: http
    http:
      method: POST
      url: 'http://%s/orders/%d'
      timeout: 5s
  - {id: end, type: end}
`, i/10, i%10+1, i, i%creds, i, i, upstream, i)
	}
	return files
}

// WriteFiles writes files (by repository-relative path) under dir.
func WriteFiles(dir string, files map[string][]byte) error {
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
