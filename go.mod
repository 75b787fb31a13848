module github.com/databus-gateway/databus

go 1.26.8

require (
	github.com/dop251/goja v0.0.0-20260917113740-793a2a65c13b
	github.com/itchyny/gojq v0.12.20
	github.com/santhosh-tekuri/jsonschema/v5 v5.3.1
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/go-sourcemap/sourcemap v2.1.3+incompatible // indirect
	github.com/itchyny/timefmt-go v0.1.9 // indirect
	golang.org/x/text v0.3.8 // indirect
)
