// Package security holds the wire protocol of the portal (DESIGN.md section
// 4) — the signature string, the signature algorithms, body encryption —
// and the stores and checks of the security chain: nonces, IP filters,
// internal JWTs. The gateway and the Go client share this code, so both
// sides of a call sign and encrypt the same way.
package security

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"sort"
	"strings"
)

// Headers of a signed request.
const (
	HeaderAppID     = "ZT-App-Id"
	HeaderTimestamp = "ZT-Timestamp"
	HeaderNonce     = "ZT-Nonce"
	HeaderSignature = "ZT-Signature"
)

// Signature and encryption types (Credential.signatureType / encryptionType).
const (
	SignMD5        = "MD5"
	SignSHA256     = "SHA256"
	SignHMACSHA256 = "HMAC-SHA256"
	EncAES         = "AES"
	EncDES         = "DES"
	EncAESGCM      = "AES-GCM"
	EncNone        = "NONE"
)

// ErrReservedParam is returned when a query parameter would collide with a
// field of the signature string.
var ErrReservedParam = errors.New("query parameter name is reserved by the signature (appId, timestamp, nonce, body)")

// SignString builds the string to sign: appId, timestamp, nonce, body (the
// plaintext, left out when empty) and every query parameter except
// "signature" (the values of a repeated key joined with ","), sorted by key
// in byte order and joined as key=value with &. Values are used decoded, as
// they were before URL encoding.
func SignString(appID, timestamp, nonce string, body []byte, query url.Values) (string, error) {
	keys := make([]string, 0, 4+len(query))
	keys = append(keys, "appId", "timestamp", "nonce")
	if len(body) > 0 {
		keys = append(keys, "body")
	}
	for k := range query {
		if k == "signature" {
			continue
		}
		switch k {
		case "appId", "timestamp", "nonce", "body":
			return "", fmt.Errorf("%w: %q", ErrReservedParam, k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(64 + len(body))
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch k {
		case "appId":
			b.WriteString(appID)
		case "timestamp":
			b.WriteString(timestamp)
		case "nonce":
			b.WriteString(nonce)
		case "body":
			b.Write(body)
		default:
			b.WriteString(strings.Join(query[k], ","))
		}
	}
	return b.String(), nil
}

// Sign returns the lowercase hex signature of s: MD5 or SHA256 of s, or
// HMAC-SHA256 of s keyed with key.
func Sign(sigType string, key []byte, s string) (string, error) {
	var h hash.Hash
	switch sigType {
	case SignMD5:
		h = md5.New()
	case SignSHA256:
		h = sha256.New()
	case SignHMACSHA256:
		if len(key) == 0 {
			return "", errors.New("HMAC-SHA256 needs a key")
		}
		h = hmac.New(sha256.New, key)
	default:
		return "", fmt.Errorf("unknown signature type %q", sigType)
	}
	io.WriteString(h, s)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifySignature compares got with the signature of s, case-insensitively
// and in constant time.
func VerifySignature(sigType string, key []byte, s, got string) bool {
	want, err := Sign(sigType, key, s)
	if err != nil || len(got) != len(want) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(got)), []byte(want)) == 1
}

// Cipher encrypts and decrypts bodies. A nil Cipher is encryption type NONE.
type Cipher interface {
	Encrypt(plain []byte) ([]byte, error)
	Decrypt(ct []byte) ([]byte, error)
}

// ErrDecrypt is returned for any ciphertext that does not decrypt: bad
// Base64, bad length, bad padding, failed authentication.
var ErrDecrypt = errors.New("body does not decrypt")

// NewCipher returns the cipher of encType keyed with the UTF-8 bytes of key:
// AES (16, 24 or 32 bytes) and DES (the first 8 bytes) in ECB mode with
// PKCS5 padding, or AES-GCM with a 12-byte random nonce prepended to the
// ciphertext and tag. NONE returns nil.
func NewCipher(encType string, key []byte) (Cipher, error) {
	return NewCipherRand(encType, key, rand.Reader)
}

// NewCipherRand is NewCipher with the source of AES-GCM nonces given (tests
// use a fixed one to reproduce known answers).
func NewCipherRand(encType string, key []byte, random io.Reader) (Cipher, error) {
	switch encType {
	case EncNone, "":
		return nil, nil
	case EncAES:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("AES key must be 16, 24 or 32 bytes, got %d", len(key))
		}
		return ecb{b}, nil
	case EncDES:
		if len(key) < 8 {
			return nil, fmt.Errorf("DES key must be at least 8 bytes, got %d", len(key))
		}
		b, err := des.NewCipher(key[:8])
		if err != nil {
			return nil, err
		}
		return ecb{b}, nil
	case EncAESGCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("AES-GCM key must be 16, 24 or 32 bytes, got %d", len(key))
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			return nil, err
		}
		return gcm{g, random}, nil
	}
	return nil, fmt.Errorf("unknown encryption type %q", encType)
}

// ecb is ECB mode with PKCS5 padding, as javax.crypto's
// "AES/ECB/PKCS5Padding" and "DES/ECB/PKCS5Padding".
type ecb struct{ b cipher.Block }

func (e ecb) Encrypt(plain []byte) ([]byte, error) {
	bs := e.b.BlockSize()
	pad := bs - len(plain)%bs
	out := make([]byte, len(plain)+pad)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(pad)
	}
	for i := 0; i < len(out); i += bs {
		e.b.Encrypt(out[i:i+bs], out[i:i+bs])
	}
	return out, nil
}

func (e ecb) Decrypt(ct []byte) ([]byte, error) {
	bs := e.b.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, ErrDecrypt
	}
	out := make([]byte, len(ct))
	for i := 0; i < len(ct); i += bs {
		e.b.Decrypt(out[i:i+bs], ct[i:i+bs])
	}
	pad := int(out[len(out)-1])
	if pad < 1 || pad > bs {
		return nil, ErrDecrypt
	}
	for _, c := range out[len(out)-pad:] {
		if int(c) != pad {
			return nil, ErrDecrypt
		}
	}
	return out[:len(out)-pad], nil
}

type gcm struct {
	a      cipher.AEAD
	random io.Reader
}

func (g gcm) Encrypt(plain []byte) ([]byte, error) {
	ns := g.a.NonceSize()
	out := make([]byte, ns, ns+len(plain)+g.a.Overhead())
	if _, err := io.ReadFull(g.random, out); err != nil {
		return nil, err
	}
	return g.a.Seal(out, out[:ns], plain, nil), nil
}

func (g gcm) Decrypt(ct []byte) ([]byte, error) {
	ns := g.a.NonceSize()
	if len(ct) < ns+g.a.Overhead() {
		return nil, ErrDecrypt
	}
	out, err := g.a.Open(nil, ct[:ns], ct[ns:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// EncryptBody encrypts plain and encodes it as standard Base64 (the wire
// form). A nil cipher returns plain unchanged.
func EncryptBody(c Cipher, plain []byte) ([]byte, error) {
	if c == nil {
		return plain, nil
	}
	ct, err := c.Encrypt(plain)
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(ct)))
	base64.StdEncoding.Encode(out, ct)
	return out, nil
}

// DecryptBody decodes standard Base64 (surrounding white space ignored)
// and decrypts. A nil cipher returns wire unchanged; an empty body is no
// body and stays empty.
func DecryptBody(c Cipher, wire []byte) ([]byte, error) {
	if c == nil {
		return wire, nil
	}
	wire = bytes.TrimSpace(wire)
	if len(wire) == 0 {
		return nil, nil
	}
	ct := make([]byte, base64.StdEncoding.DecodedLen(len(wire)))
	n, err := base64.StdEncoding.Decode(ct, wire)
	if err != nil {
		return nil, ErrDecrypt
	}
	return c.Decrypt(ct[:n])
}
