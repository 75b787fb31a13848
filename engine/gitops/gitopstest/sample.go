package gitopstest

import "testing"

// The files of the sample history.
const (
	Settings = `
apiVersion: databus/v1
kind: Settings
apiPortal:
  basePath: /api
  security:
    enabled: false
`
	ShopV1 = `
apiVersion: databus/v1
kind: Credential
appId: shop
description: The shop front end
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:SHOP_KEY'}
allowedIps: [10.0.0.0/8]
`
	ShopV2 = `
apiVersion: databus/v1
kind: Credential
appId: shop
description: The shop front end
signatureType: SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:SHOP_KEY'}
allowedIps: [10.0.0.0/8, 192.168.0.0/16]
`
	StandardV1 = `
apiVersion: databus/v1
kind: RateLimitPolicy
name: standard
algorithm: fixed-window
limit: 100
windowSeconds: 60
`
	StandardV2 = `
apiVersion: databus/v1
kind: RateLimitPolicy
name: standard
algorithm: fixed-window
limit: 50
windowSeconds: 60
`
	Burst = `
apiVersion: databus/v1
kind: RateLimitPolicy
name: burst
algorithm: token-bucket
limit: 10
windowSeconds: 1
`
	// OrderV1 is order.create:v1 as first written: a draft with one step.
	OrderV1 = `
apiVersion: databus/v1
kind: Api
code: order.create
version: v1
description: Create an order
status: draft
methods: [POST]
auth:
  credentials: [shop]
policies:
  rateLimit: standard
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http:
      method: POST
      url: 'http://127.0.0.1:9001/orders'
      timeout: 5s
  - {id: end, type: end}
`
	// OrderV2 publishes it, adds a scoring step, moves the upstream and
	// shapes the answer.
	OrderV2 = `
apiVersion: databus/v1
kind: Api
code: order.create
version: v1
description: Create an order
status: online
methods: [POST]
auth:
  credentials: [shop]
policies:
  rateLimit: standard
transforms:
  response: '{orderNo: .steps.create.id}'
steps:
  - {id: start, type: start}
  - id: score
    type: script
    script: {lang: javascript, timeout: 50ms, source: 'function main(ctx) { return {score: 1} }'}
  - id: create
    type: http
    http:
      method: POST
      url: 'http://orders.internal:9001/orders'
      timeout: 5s
  - {id: end, type: end}
`
	// OrderV3 is OrderV2 with a new description, committed under a new
	// name (a rename with a small edit).
	OrderV3 = `
apiVersion: databus/v1
kind: Api
code: order.create
version: v1
description: Create an order in the order service
status: online
methods: [POST]
auth:
  credentials: [shop]
policies:
  rateLimit: standard
transforms:
  response: '{orderNo: .steps.create.id}'
steps:
  - {id: start, type: start}
  - id: score
    type: script
    script: {lang: javascript, timeout: 50ms, source: 'function main(ctx) { return {score: 1} }'}
  - id: create
    type: http
    http:
      method: POST
      url: 'http://orders.internal:9001/orders'
      timeout: 5s
  - {id: end, type: end}
`
	// Stock is stock.reserve:v1; it uses the burst policy, and both go
	// away together.
	Stock = `
apiVersion: databus/v1
kind: Api
code: stock.reserve
version: v1
description: Reserve stock
status: online
methods: [POST]
policies:
  rateLimit: burst
steps:
  - {id: start, type: start}
  - {id: end, type: end}
`
	// OrderNextV2 is order.create:v2, on the feature branch.
	OrderNextV2 = `
apiVersion: databus/v1
kind: Api
code: order.create
version: v2
description: Create an order (next)
status: draft
methods: [POST, PUT]
steps:
  - {id: start, type: start}
  - {id: end, type: end}
`
	// OrderBroken names a policy that does not exist.
	OrderBroken = `
apiVersion: databus/v1
kind: Api
code: order.create
version: v1
description: Create an order in the order service
status: online
methods: [POST]
policies:
  rateLimit: nosuch
steps:
  - {id: start, type: start}
  - {id: end, type: end}
`
)

// SampleRepo is the sample history. On main:
//
//	C1  Alice  add order.create (apis/order.yaml), shop, standard, README
//	C2  Bob    publish order.create (status, score step, url, transforms);
//	           add stock.reserve (apis/stock.yaml) and policy burst   tag v0.9
//	C3  Alice  move apis/order.yaml to apis/orders/create.yaml, new
//	           description                                            tag v1.0 (annotated)
//	C4  Bob    delete stock.reserve and burst; standard limit 50; shop
//	           signatureType and allowedIps; README edit              HEAD
//
// Branch feature (C4 + Feature) adds apis/order-v2.yaml (order.create:v2);
// branch broken (C4 + Broken) points order.create:v1 at a missing policy.
// main is checked out.
type SampleRepo struct {
	*Builder
	C1, C2, C3, C4  string
	Feature, Broken string
}

// Sample builds the sample history; sub is the config folder inside the
// work tree ("" for the root).
func Sample(t testing.TB, sub string) *SampleRepo {
	t.Helper()
	b := New(t, sub)
	s := &SampleRepo{Builder: b}

	b.Write("databus.yaml", Settings)
	b.Write("apis/order.yaml", OrderV1)
	b.Write("credentials/shop.yaml", ShopV1)
	b.Write("policies/standard.yaml", StandardV1)
	b.Write("README.md", "# Config\n")
	s.C1 = b.Commit("Add order.create, the shop credential and the standard policy")

	b.Author, b.Email = "Bob Builder", "bob@example.com"
	b.Write("apis/order.yaml", OrderV2)
	b.Write("apis/stock.yaml", Stock)
	b.Write("policies/burst.yaml", Burst)
	s.C2 = b.Commit("Publish order.create with a scoring step\n\nAlso adds stock.reserve.")
	b.Tag("v0.9", s.C2, "")

	b.Author, b.Email = "Alice Admin", "alice@example.com"
	b.Remove("apis/order.yaml")
	b.Write("apis/orders/create.yaml", OrderV3)
	s.C3 = b.Commit("Move order.create to apis/orders/")
	b.Tag("v1.0", s.C3, "Release 1.0")

	b.Author, b.Email = "Bob Builder", "bob@example.com"
	b.Remove("apis/stock.yaml")
	b.Remove("policies/burst.yaml")
	b.Write("policies/standard.yaml", StandardV2)
	b.Write("credentials/shop.yaml", ShopV2)
	b.Write("README.md", "# Config\n\nThe gateway's APIs.\n")
	s.C4 = b.Commit("Retire stock.reserve; tighten the standard policy")

	b.Branch("feature")
	b.Write("apis/order-v2.yaml", OrderNextV2)
	s.Feature = b.Commit("Draft order.create v2")

	b.Checkout("main")
	b.Branch("broken")
	b.Write("apis/orders/create.yaml", OrderBroken)
	s.Broken = b.Commit("Point order.create at a missing policy")

	b.Checkout("main")
	b.Author, b.Email = "Alice Admin", "alice@example.com"
	return s
}
