package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
)

// callFlags are the flags `call` and `sign` share.
type callFlags struct {
	dir, url, app, key, keyFile, signKey, signKeyFile string
	signType, encType, body, bodyFile, method, tenant string
	query                                             multiFlag
	timeout                                           time.Duration
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (f *callFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", ".", "config repository: the credential of --app and the base path are read from it unless given")
	fs.StringVar(&f.url, "url", "", "portal base URL (default http://127.0.0.1:8080 + apiPortal.basePath of --dir)")
	fs.StringVar(&f.app, "app", "", "appId (ZT-App-Id)")
	fs.StringVar(&f.key, "key", "", "encryption key (default: the credential's key in --dir)")
	fs.StringVar(&f.keyFile, "key-file", "", "file holding the encryption key")
	fs.StringVar(&f.signKey, "sign-key", "", "HMAC signature key (default: the encryption key)")
	fs.StringVar(&f.signKeyFile, "sign-key-file", "", "file holding the HMAC signature key")
	fs.StringVar(&f.signType, "sign-type", "", "MD5, SHA256 or HMAC-SHA256 (default: the credential's, else HMAC-SHA256)")
	fs.StringVar(&f.encType, "enc-type", "", "AES, DES, AES-GCM or NONE (default: the credential's, else AES)")
	fs.StringVar(&f.body, "body", "", "JSON body")
	fs.StringVar(&f.bodyFile, "body-file", "", "file holding the body (- for standard input)")
	fs.StringVar(&f.method, "method", "POST", "HTTP method: GET, POST, PUT, DELETE or PATCH")
	fs.StringVar(&f.tenant, "tenant", "", "tenant id (ZT-Tenant-Id)")
	fs.Var(&f.query, "query", "query parameter k=v (repeatable)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "request timeout")
}

// client builds the portal client from the flags and the repository.
func (f *callFlags) client() (*client.Client, error) {
	if f.app == "" {
		return nil, fmt.Errorf("--app is required")
	}
	cred := client.Credential{AppID: f.app, SignatureType: f.signType, EncryptionType: f.encType}
	repo := f.repo()
	base := f.baseURL(repo)
	var repoCred *config.Credential
	var repoDir string
	if repo != nil {
		repoDir = repo.Dir
		repoCred = repo.Credential(f.app)
	}
	if repoCred != nil {
		if cred.SignatureType == "" {
			cred.SignatureType = repoCred.SignatureType
		}
		if cred.EncryptionType == "" {
			cred.EncryptionType = repoCred.EncryptionType
		}
	}
	var err error
	if cred.EncryptionKey, err = secretFlag(f.key, f.keyFile); err != nil {
		return nil, err
	}
	if cred.SignatureKey, err = secretFlag(f.signKey, f.signKeyFile); err != nil {
		return nil, err
	}
	if cred.EncryptionKey == nil && repoCred != nil && repoCred.EncryptionKey != nil {
		if cred.EncryptionKey, err = repoCred.EncryptionKey.Resolve(repoDir); err != nil {
			return nil, fmt.Errorf("credential %s: %w (or pass --key)", f.app, err)
		}
	}
	if cred.SignatureKey == nil && repoCred != nil && repoCred.SignatureKey != nil {
		if cred.SignatureKey, err = repoCred.SignatureKey.Resolve(repoDir); err != nil {
			return nil, fmt.Errorf("credential %s: %w (or pass --sign-key)", f.app, err)
		}
	}
	return &client.Client{BaseURL: base, Credential: cred, TenantID: f.tenant, HTTP: &http.Client{Timeout: f.timeout}}, nil
}

// repo is the repository of --dir, or nil when it does not load.
func (f *callFlags) repo() *config.Repository {
	repo, _, err := config.Load(f.dir)
	if err != nil {
		return nil
	}
	return repo
}

// baseURL is --url, else the portal of repo (nil: the default base path)
// on 127.0.0.1:8080.
func (f *callFlags) baseURL(repo *config.Repository) string {
	if f.url != "" {
		return f.url
	}
	if repo != nil {
		return client.DefaultPortal + repo.Settings.APIPortal.BasePath
	}
	return client.DefaultPortal + config.DefaultSettings().APIPortal.BasePath
}

func secretFlag(value, file string) ([]byte, error) {
	switch {
	case value != "" && file != "":
		return nil, fmt.Errorf("give a key or a key file, not both")
	case value != "":
		return []byte(value), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		// Trimmed as the gateway trims a file: secret: one trailing newline.
		return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r")), nil
	}
	return nil, nil
}

func (f *callFlags) bodyBytes(stdin io.Reader) ([]byte, error) {
	switch {
	case f.body != "" && f.bodyFile != "":
		return nil, fmt.Errorf("give --body or --body-file, not both")
	case f.bodyFile == "-":
		return io.ReadAll(stdin)
	case f.bodyFile != "":
		return os.ReadFile(f.bodyFile)
	}
	return []byte(f.body), nil
}

func (f *callFlags) values() (url.Values, error) {
	if len(f.query) == 0 {
		return nil, nil
	}
	q := url.Values{}
	for _, kv := range f.query {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--query %q: expected k=v", kv)
		}
		q.Add(k, v)
	}
	return q, nil
}

func (f *callFlags) prepare(cmd string, pos []string, stderr io.Writer) (*client.Client, *client.Request, int) {
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "databus %s: name one API (code or code:version)\n", cmd)
		return nil, nil, exitUsage
	}
	c, err := f.client()
	if err != nil {
		fmt.Fprintf(stderr, "databus %s: %v\n", cmd, err)
		return nil, nil, exitUsage
	}
	body, err := f.bodyBytes(os.Stdin)
	if err != nil {
		fmt.Fprintf(stderr, "databus %s: %v\n", cmd, err)
		return nil, nil, exitUsage
	}
	q, err := f.values()
	if err != nil {
		fmt.Fprintf(stderr, "databus %s: %v\n", cmd, err)
		return nil, nil, exitUsage
	}
	req, err := c.Prepare(strings.ToUpper(f.method), pos[0], q, body)
	if err != nil {
		fmt.Fprintf(stderr, "databus %s: %v\n", cmd, err)
		return nil, nil, exitUsage
	}
	return c, req, exitOK
}

func runCall(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("call", "API [--url URL] [--app ID] [--key ...] [--body JSON]", "sign, encrypt, send and decrypt one call; prints the envelope", stderr)
	var f callFlags
	f.register(fs)
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	c, req, code := f.prepare("call", pos, stderr)
	if code != exitOK {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	resp, err := c.Send(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "databus call: %v\n", err)
		return exitInvalid
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, resp.Raw, "", "  ") != nil {
		pretty.Write(resp.Raw)
	}
	fmt.Fprintln(stdout, pretty.String())
	if resp.Envelope.Code != http.StatusOK {
		return exitInvalid
	}
	return exitOK
}

func runSign(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign", "API [--app ID] [--key ...] [--body JSON]", "print the signed headers, the encrypted body and a ready curl line", stderr)
	var f callFlags
	f.register(fs)
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	_, req, code := f.prepare("sign", pos, stderr)
	if code != exitOK {
		return code
	}
	fmt.Fprintf(stdout, "# sign string: %s\n", req.SignString)
	for _, k := range client.SignedHeaders {
		if v := req.Header.Get(k); v != "" {
			fmt.Fprintf(stdout, "%s: %s\n", k, v)
		}
	}
	if len(req.Body) > 0 {
		fmt.Fprintf(stdout, "\n%s\n", req.Body)
	}
	fmt.Fprintf(stdout, "\n%s\n", req.Curl())
	return exitOK
}
