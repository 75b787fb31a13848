package configtest

import (
	"fmt"
	"os"
	"path/filepath"
)

// The generated repository of the scale bench (ci/bench/scale.sh): N APIs,
// each start → http → end with its own jq response transform and its own
// rate-limit policy, and one credential per hundred APIs. Security is on
// (HMAC-SHA256 signatures, AES bodies and answers) and so are rate limits;
// the access log is off, so that the bench measures the loader and the
// request path rather than bbolt writes.
const (
	// MaxScaleAPIs bounds N so that the file names keep their fixed width.
	MaxScaleAPIs = 99999
	// APIsPerCredential is how many APIs share one credential.
	APIsPerCredential = 100
	// ScaleKeyEnv names the environment variable every generated
	// credential's key comes from (a 32-byte AES key): the secret is not in
	// the repository, as in production.
	ScaleKeyEnv = "DATABUS_SCALE_KEY"
)

// ScaleAPI is the code of the i-th generated API (version v1).
func ScaleAPI(i int) string { return fmt.Sprintf("scale.api.%05d", i) }

// ScaleAPIFile is the i-th API's file, relative to the repository
// (slash-separated).
func ScaleAPIFile(i int) string { return "apis/" + ScaleAPI(i) + ".yaml" }

// ScaleApp is the appId of the k-th generated credential.
func ScaleApp(k int) string { return fmt.Sprintf("scale-app-%03d", k) }

// ScaleCredentials is how many credentials a repository of n APIs has.
func ScaleCredentials(n int) int { return (n + APIsPerCredential - 1) / APIsPerCredential }

const scaleSettings = `# Generated for the scale bench (ci/bench/scale.sh).
apiVersion: databus/v1
kind: Settings
apiPortal:
  enableAudit: false
  enableRateLimit: true
  security:
    enabled: true
    requireBodyEncryption: true
    encryptResponse: true
gateway:
  webClient: {connectionPoolEnabled: true, maxIdleConnsPerHost: 256, timeout: 10s}
storage:
  path: data/scale.db
`

func ScalePolicy(i int) string { return fmt.Sprintf("scale-policy-%05d", i) }

func scaleCredentialYAML(k int) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Credential
appId: %s
description: Scale bench client %d
enabled: true
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:%s'}
`, ScaleApp(k), k, ScaleKeyEnv)
}

// scalePolicyYAML is a limit the bench never reaches, so that the counter is
// paid for on every request without refusing one.
func scalePolicyYAML(i int) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: RateLimitPolicy
name: %s
description: Scale bench policy of %s
algorithm: fixed-window
limit: %d
windowSeconds: 60
keyTemplate: '${apiCode}:${version}:${appId}'
`, ScalePolicy(i), ScaleAPI(i), 100000000+i)
}

// scaleAPIYAML is the i-th API. Its jq program names the API, so that no two
// programs are the same text (a cache keyed by content shares nothing).
// The description line is the one the bench's edit reload rewrites.
func scaleAPIYAML(i int, upstream string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %[1]s
version: v1
description: Scale bench API %[2]d
status: online
methods: [POST]
auth:
  credentials: [%[3]s]
policies:
  rateLimit: %[4]s
steps:
  - {id: start, type: start}
  - id: call
    type: http
    http:
      method: POST
      url: 'http://%[5]s/orders/%[2]d'
      timeout: 5s
  - {id: end, type: end}
transforms:
  response: '{api: "%[1]s", orderNo: .steps.call.orderNo, status: .steps.call.status, lines: (.steps.call.items | length)}'
`, ScaleAPI(i), i, ScaleApp(i/APIsPerCredential), ScalePolicy(i), upstream)
}

// ScaleFiles is the scale repository of n APIs (at most MaxScaleAPIs)
// whose http steps call upstream (host:port), by repository-relative path.
func ScaleFiles(n int, upstream string) map[string][]byte {
	files := map[string][]byte{"databus.yaml": []byte(scaleSettings)}
	for k := range ScaleCredentials(n) {
		files["credentials/"+ScaleApp(k)+".yaml"] = []byte(scaleCredentialYAML(k))
	}
	for i := range n {
		files["policies/"+ScalePolicy(i)+".yaml"] = []byte(scalePolicyYAML(i))
		files[ScaleAPIFile(i)] = []byte(scaleAPIYAML(i, upstream))
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
