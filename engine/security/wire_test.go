package security

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

// vector is one known answer of testdata/wire.json (a copy of
// ../shared/vectors/wire.json, computed with the JDK from DESIGN.md).
type vector struct {
	Name              string  `json:"name"`
	AppID             string  `json:"appId"`
	Timestamp         string  `json:"timestamp"`
	Nonce             string  `json:"nonce"`
	EncryptionType    string  `json:"encryptionType"`
	SignatureType     string  `json:"signatureType"`
	EncryptionKey     string  `json:"encryptionKey"`
	SignatureKey      string  `json:"signatureKey"`
	GCMNonceHex       *string `json:"gcmNonceHex"`
	Query             string  `json:"query"`
	PlainBody         string  `json:"plainBody"`
	SignString        string  `json:"signString"`
	Signature         string  `json:"signature"`
	WireBody          string  `json:"wireBody"`
	Envelope          string  `json:"envelope"`
	EncryptedEnvelope string  `json:"encryptedEnvelope"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/wire.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

// signKey is the key a credential signs with: the signature key, or the
// encryption key when it has none.
func (v vector) signKey() []byte {
	if v.SignatureKey != "" {
		return []byte(v.SignatureKey)
	}
	return []byte(v.EncryptionKey)
}

func (v vector) cipher(t *testing.T) Cipher {
	random := bytes.NewReader(nil)
	if v.GCMNonceHex != nil {
		n, err := hex.DecodeString(*v.GCMNonceHex)
		if err != nil {
			t.Fatal(err)
		}
		// One fixed nonce per encryption: the body and the envelope.
		random = bytes.NewReader(bytes.Repeat(n, 4))
	}
	c, err := NewCipherRand(v.EncryptionType, []byte(v.EncryptionKey), random)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWireVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			q, err := url.ParseQuery(v.Query)
			if err != nil {
				t.Fatal(err)
			}
			s, err := SignString(v.AppID, v.Timestamp, v.Nonce, []byte(v.PlainBody), q)
			if err != nil {
				t.Fatal(err)
			}
			if s != v.SignString {
				t.Fatalf("sign string\n got %s\nwant %s", s, v.SignString)
			}
			sig, err := Sign(v.SignatureType, v.signKey(), s)
			if err != nil {
				t.Fatal(err)
			}
			if sig != v.Signature {
				t.Fatalf("signature %s, want %s", sig, v.Signature)
			}
			if !VerifySignature(v.SignatureType, v.signKey(), s, strings.ToUpper(v.Signature)) {
				t.Error("an upper-case signature must verify")
			}
			c := v.cipher(t)
			if v.PlainBody != "" {
				wire, err := EncryptBody(c, []byte(v.PlainBody))
				if err != nil {
					t.Fatal(err)
				}
				if string(wire) != v.WireBody {
					t.Fatalf("wire body\n got %s\nwant %s", wire, v.WireBody)
				}
			}
			plain, err := DecryptBody(c, []byte(v.WireBody))
			if err != nil {
				t.Fatal(err)
			}
			if v.PlainBody == "" && v.WireBody != "" {
				t.Fatalf("a request without body has wire body %q", v.WireBody)
			}
			if string(plain) != v.PlainBody {
				t.Fatalf("decrypted %q, want %q", plain, v.PlainBody)
			}
			if c == nil {
				return
			}
			env, err := EncryptBody(c, []byte(v.Envelope))
			if err != nil {
				t.Fatal(err)
			}
			if string(env) != v.EncryptedEnvelope {
				t.Fatalf("encrypted envelope\n got %s\nwant %s", env, v.EncryptedEnvelope)
			}
			back, err := DecryptBody(c, []byte(v.EncryptedEnvelope))
			if err != nil || string(back) != v.Envelope {
				t.Fatalf("decrypted envelope %q (%v), want %q", back, err, v.Envelope)
			}
		})
	}
}

func TestSignStringRules(t *testing.T) {
	q := url.Values{"b": {"2"}, "a": {"x", "y"}, "signature": {"zz"}, "B": {"up"}}
	s, err := SignString("app", "1", "nonce-123", nil, q)
	if err != nil {
		t.Fatal(err)
	}
	// Byte order puts upper case first; body is left out when empty.
	if want := "B=up&a=x,y&appId=app&b=2&nonce=nonce-123&timestamp=1"; s != want {
		t.Fatalf("got %s, want %s", s, want)
	}
	for _, k := range []string{"appId", "timestamp", "nonce", "body"} {
		if _, err := SignString("app", "1", "n", nil, url.Values{k: {"x"}}); !errors.Is(err, ErrReservedParam) {
			t.Errorf("query parameter %q: err = %v, want ErrReservedParam", k, err)
		}
	}
}

func TestDecryptRefusesBadInput(t *testing.T) {
	aesC, _ := NewCipher(EncAES, []byte("0123456789abcdef"))
	desC, _ := NewCipher(EncDES, []byte("des-key8"))
	gcmC, _ := NewCipher(EncAESGCM, []byte("0123456789abcdef"))
	other, _ := NewCipher(EncAES, []byte("fedcba9876543210"))
	good, _ := EncryptBody(aesC, []byte(`{"a":1}`))
	for name, tc := range map[string]struct {
		c    Cipher
		wire string
	}{
		"not base64":        {aesC, "%%%not-base64"},
		"url-safe alphabet": {aesC, strings.NewReplacer("+", "-", "/", "_").Replace("++//++//++//++//++//++==")},
		"short block":       {aesC, "AAAA"},
		"wrong key":         {other, string(good)},
		"des bad length":    {desC, "AAAAAAAAAAA="},
		"gcm too short":     {gcmC, "AAECAwQFBgcICQoL"},
		"gcm tampered":      {gcmC, "AAECAwQFBgcICQoLVsfUDr19oOLH/kucIoDjNNQ9MrYOjES7Ef7Gkd7NuAw7UbrjhgUJ5EfEhx=="},
		"plaintext json":    {aesC, `{"orderNo":"1"}`},
		"truncated base64":  {aesC, string(good[:len(good)-3])},
	} {
		if _, err := DecryptBody(tc.c, []byte(tc.wire)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}
}

func TestCipherKeys(t *testing.T) {
	for _, tc := range []struct {
		typ, key string
		ok       bool
	}{
		{EncAES, "0123456789abcdef", true},
		{EncAES, "0123456789abcdef01234567", true},
		{EncAES, "short", false},
		{EncAESGCM, "0123456789abcdef0123456789abcdef", true},
		{EncAESGCM, "x", false},
		{EncDES, "12345678", true},
		{EncDES, "1234567", false},
		{"ROT13", "x", false},
	} {
		_, err := NewCipher(tc.typ, []byte(tc.key))
		if (err == nil) != tc.ok {
			t.Errorf("%s key %q: err = %v", tc.typ, tc.key, err)
		}
	}
	if c, err := NewCipher(EncNone, nil); c != nil || err != nil {
		t.Errorf("NONE: %v %v", c, err)
	}
}

func TestGCMNoncesAreRandom(t *testing.T) {
	c, _ := NewCipher(EncAESGCM, []byte("0123456789abcdef"))
	a, _ := EncryptBody(c, []byte("same"))
	b, _ := EncryptBody(c, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions with AES-GCM must use different nonces")
	}
}

func FuzzDecryptBody(f *testing.F) {
	for _, s := range []string{"", "AAAA", "EPIU6HvWYXTFdBYzUEttDcQ5lrS3ruJl68/jmMA+2/s=", "AAECAwQFBgcICQoL", "=="} {
		f.Add(uint8(0), []byte(s))
	}
	ciphers := []Cipher{}
	for _, tc := range []struct{ typ, key string }{{EncAES, "0123456789abcdef"}, {EncDES, "des-key8"}, {EncAESGCM, "0123456789abcdef"}} {
		c, err := NewCipher(tc.typ, []byte(tc.key))
		if err != nil {
			f.Fatal(err)
		}
		ciphers = append(ciphers, c)
	}
	f.Fuzz(func(t *testing.T, which uint8, wire []byte) {
		c := ciphers[int(which)%len(ciphers)]
		plain, err := DecryptBody(c, wire)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		// What decrypts must round-trip.
		again, err := EncryptBody(c, plain)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecryptBody(c, again)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzSignString(f *testing.F) {
	f.Add("demo-app", "1732070400000", "0c5e2df9a1", []byte(`{"a":1}`), "page=1&tag=a&tag=b%20c")
	f.Add("", "", "", []byte{}, "%zz")
	f.Fuzz(func(t *testing.T, app, ts, nonce string, body []byte, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		s, err := SignString(app, ts, nonce, body, q)
		if err != nil {
			if !errors.Is(err, ErrReservedParam) {
				t.Fatal(err)
			}
			return
		}
		if !strings.Contains(s, "appId="+app) {
			t.Fatalf("sign string %q lacks the appId", s)
		}
		for _, typ := range []string{SignMD5, SignSHA256, SignHMACSHA256} {
			sig, err := Sign(typ, []byte("k"), s)
			if err != nil || !VerifySignature(typ, []byte("k"), s, sig) {
				t.Fatalf("%s: %v", typ, err)
			}
		}
	})
}
