package snapshot

import (
	"fmt"
	"net/netip"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/security"
)

// Credential is a credential with its secrets resolved. Secrets live only
// here, in memory; nothing prints them.
type Credential struct {
	*config.Credential
	Cipher     security.Cipher // nil for encryption type NONE
	SignKey    []byte          // HMAC key (signature key, else encryption key)
	KeyProblem string          // why the credential has no usable key; "" when it has
	AllowedIPs []netip.Prefix
	// Resolved tells, for each secret reference the credential has
	// ("encryptionKey", "signatureKey"), whether it resolved when the
	// Snapshot was built: what the admin view shows, never a value.
	Resolved map[string]bool
}

// resolveCredential resolves the secrets of c. A secret that does not
// resolve leaves the credential known but unusable (KeyProblem set): it
// answers 500 应用未配置加密密钥.
func resolveCredential(dir string, c *config.Credential, resolve func(config.SecretRef, string) ([]byte, error)) *Credential {
	out := &Credential{Credential: c, Resolved: map[string]bool{}}
	// Every reference is tried, so that the view can tell each apart even
	// when the first one fails.
	for name, ref := range map[string]*config.SecretRef{"encryptionKey": c.EncryptionKey, "signatureKey": c.SignatureKey} {
		if ref != nil {
			_, err := resolve(*ref, dir)
			out.Resolved[name] = err == nil
		}
	}
	for _, s := range c.AllowedIPs {
		if p, err := config.ParsePrefix(s); err == nil {
			out.AllowedIPs = append(out.AllowedIPs, p)
		}
	}
	var encKey []byte
	if c.EncryptionKey != nil {
		k, err := resolve(*c.EncryptionKey, dir)
		if err != nil {
			out.KeyProblem = "encryptionKey: " + err.Error()
			return out
		}
		encKey = k
	}
	var signKey []byte
	if c.SignatureType == config.SignHMACSHA256 && c.SignatureKey != nil {
		k, err := resolve(*c.SignatureKey, dir)
		if err != nil {
			out.KeyProblem = "signatureKey: " + err.Error()
			return out
		}
		signKey = k
	}
	return withKeys(out, encKey, signKey)
}

// WithKeys is c with the keys given instead of its own (a sandbox session
// signing with a test's keys); signKey nil: the encryption key signs.
func WithKeys(c *Credential, encKey, signKey []byte) *Credential {
	out := &Credential{Credential: c.Credential, AllowedIPs: c.AllowedIPs, Resolved: map[string]bool{}}
	return withKeys(out, encKey, signKey)
}

func withKeys(out *Credential, encKey, signKey []byte) *Credential {
	c := out.Credential
	if c.EncryptionType != config.EncNone {
		if encKey == nil {
			out.KeyProblem = "encryptionKey is not set"
			return out
		}
		cph, err := security.NewCipher(c.EncryptionType, encKey)
		if err != nil {
			out.KeyProblem = fmt.Sprintf("encryptionKey: %v", err)
			return out
		}
		out.Cipher = cph
	}
	if c.SignatureType == config.SignHMACSHA256 {
		out.SignKey = encKey
		if signKey != nil {
			out.SignKey = signKey
		}
		if len(out.SignKey) == 0 {
			out.KeyProblem = "HMAC-SHA256 needs signatureKey or encryptionKey"
		}
	}
	return out
}
