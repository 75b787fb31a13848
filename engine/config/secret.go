package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrSecretUnresolved is wrapped by Resolve when a reference cannot be read.
var ErrSecretUnresolved = errors.New("secret not resolved")

// Resolve reads the secret a reference points at: an environment variable
// (env:NAME) or a file (file:PATH, relative to repoDir unless absolute; one
// trailing newline is dropped). Errors name the reference, never a value.
func (r SecretRef) Resolve(repoDir string) ([]byte, error) {
	switch {
	case strings.HasPrefix(r.Ref, "env:"):
		name := strings.TrimPrefix(r.Ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: environment variable %s is not set", ErrSecretUnresolved, name)
		}
		return []byte(v), nil
	case strings.HasPrefix(r.Ref, "file:"):
		p := strings.TrimPrefix(r.Ref, "file:")
		if !filepath.IsAbs(p) {
			p = filepath.Join(repoDir, filepath.FromSlash(p))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: cannot read the file", ErrSecretUnresolved, r.Ref)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: %s is empty", ErrSecretUnresolved, r.Ref)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: %q is neither env:NAME nor file:PATH", ErrSecretUnresolved, r.Ref)
}
