package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/databus-gateway/databus/internal/safefile"
)

// ErrSecretUnresolved is wrapped by Resolve when a reference cannot be read.
var ErrSecretUnresolved = errors.New("secret not resolved")

// MaxSecretBytes bounds a secret file: a key, a token or a password is
// far smaller, and a reference to something else (a device, a log) must not
// be read whole.
const MaxSecretBytes = 64 << 10

// MaxFileBytes bounds one file of a repository: a YAML document or a
// descriptor set. A repository under review may hold anything: a file
// beyond it, a device, a named pipe or a socket is refused, never read
// whole or waited on (internal/safefile).
const MaxFileBytes = 16 << 20

// Resolve reads the secret a reference points at: an environment variable
// (env:NAME) or a file (file:PATH, relative to repoDir unless absolute; one
// trailing newline is dropped). Errors name the reference, never a value.
func (r SecretRef) Resolve(repoDir string) ([]byte, error) {
	return r.resolve(repoDir, false)
}

// ResolveInRepo is Resolve for an untrusted repository (the sandbox of
// databus test and databus replay, which CI runs on pull requests): only a
// file inside repoDir is read, never the environment or a file elsewhere,
// so a change cannot make the machine that checks it read its secrets.
func (r SecretRef) ResolveInRepo(repoDir string) ([]byte, error) {
	return r.resolve(repoDir, true)
}

func (r SecretRef) resolve(repoDir string, inRepo bool) ([]byte, error) {
	switch {
	case strings.HasPrefix(r.Ref, "env:"):
		name := strings.TrimPrefix(r.Ref, "env:")
		if inRepo {
			return nil, fmt.Errorf("%w: %s is not read here (only files inside the repository are)", ErrSecretUnresolved, r.Ref)
		}
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
		if inRepo && !insideDir(repoDir, p) {
			return nil, fmt.Errorf("%w: %s is not read here (only files inside the repository are)", ErrSecretUnresolved, r.Ref)
		}
		b, err := readSecretFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrSecretUnresolved, r.Ref, err)
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

// readSecretFile reads a regular file of at most MaxSecretBytes.
func readSecretFile(p string) ([]byte, error) {
	b, err := safefile.Read(p, MaxSecretBytes)
	var tl *safefile.TooLargeError
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, errors.New("not a regular file")
	case errors.As(err, &tl):
		return nil, fmt.Errorf("larger than %d bytes: not a secret", MaxSecretBytes)
	case err != nil:
		return nil, errors.New("cannot read the file")
	}
	return b, nil
}

// insideDir reports whether p, its symlinks resolved, lies inside dir.
func insideDir(dir, p string) bool {
	rd, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	rp, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(rd, rp)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
