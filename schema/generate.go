package schema

// The configuration reference is generated from the schemas by
// schema/internal/refdoc, a package of its own so that the gateway, which
// links this one, does not carry the generator.

//go:generate go run ./internal/gendoc -o ../docs/config-reference.md
