package view

import (
	"strings"
	"sync"
	"weak"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Secret is a secret reference and whether it resolves — never a value.
type Secret struct {
	SecretRef string `json:"secretRef"`
	Resolved  bool   `json:"resolved"`
}

// Credential is a credential without its secrets.
type Credential struct {
	AppID          string                `json:"appId"`
	Description    string                `json:"description,omitempty"`
	Enabled        bool                  `json:"enabled"`
	SignatureType  string                `json:"signatureType"`
	EncryptionType string                `json:"encryptionType"`
	EncryptionKey  *Secret               `json:"encryptionKey,omitempty"`
	SignatureKey   *Secret               `json:"signatureKey,omitempty"`
	TenantID       string                `json:"tenantId,omitempty"`
	AllowedIPs     []string              `json:"allowedIps"`
	AllowAnonymous bool                  `json:"allowAnonymous"`
	AnonymousUser  *config.AnonymousUser `json:"anonymousUser,omitempty"`
	File           string                `json:"file"`
	Usable         bool                  `json:"usable"`
	Problem        string                `json:"problem,omitempty"` // names references, never values
	UsedBy         []string              `json:"usedBy"`            // APIs whose auth.credentials name it
}

// CredentialOf is the view of c, one of snap's credentials.
func CredentialOf(snap *snapshot.Snapshot, c *config.Credential) Credential {
	v := Credential{
		AppID: c.AppID, Description: c.Description, Enabled: c.IsEnabled(), SignatureType: c.SignatureType,
		EncryptionType: c.EncryptionType, TenantID: c.TenantID, AllowedIPs: nonNil(c.AllowedIPs),
		AllowAnonymous: c.AllowAnonymous, AnonymousUser: c.AnonymousUser, File: c.Source.File, UsedBy: []string{},
	}
	loaded := snap.Credentials[c.AppID]
	if loaded == nil {
		v.Problem = "not loaded"
	} else {
		v.Problem, v.Usable = loaded.KeyProblem, loaded.KeyProblem == ""
	}
	if c.EncryptionKey != nil {
		v.EncryptionKey = &Secret{SecretRef: c.EncryptionKey.Ref, Resolved: secretResolved(snap, loaded, c.EncryptionKey, true)}
	}
	if c.SignatureKey != nil {
		used := c.SignatureType == config.SignHMACSHA256
		v.SignatureKey = &Secret{SecretRef: c.SignatureKey.Ref, Resolved: secretResolved(snap, loaded, c.SignatureKey, used)}
	}
	for _, a := range snap.Repo.APIs {
		if a.Auth != nil {
			for _, id := range a.Auth.Credentials {
				if id == c.AppID {
					v.UsedBy = append(v.UsedBy, a.ID())
				}
			}
		}
	}
	return v
}

// Credentials are snap's credentials whose appId contains appID (every
// one for ""), in repository order.
func Credentials(snap *snapshot.Snapshot, appID string) []Credential {
	list := []Credential{}
	for _, c := range snap.Repo.Credentials {
		if strings.Contains(c.AppID, appID) {
			list = append(list, CredentialOf(snap, c))
		}
	}
	return list
}

// FindCredential is the view of the credential appID.
func FindCredential(snap *snapshot.Snapshot, appID string) (Credential, bool) {
	c := snap.Repo.Credential(appID)
	if c == nil {
		return Credential{}, false
	}
	return CredentialOf(snap, c), true
}

// secretResolved tells whether ref, a secret of the loaded credential,
// resolved for this Snapshot. A credential the Snapshot loaded without a
// KeyProblem resolved every secret it reads (used: the encryption key
// always, the signature key for HMAC-SHA256). What the Snapshot does not
// say — the secrets of a credential whose load stopped at its first
// failing secret, and a signature key an MD5 or SHA256 signature never
// reads — is resolved once per Snapshot (resolvedRefs), never per view.
func secretResolved(snap *snapshot.Snapshot, loaded *snapshot.Credential, ref *config.SecretRef, used bool) bool {
	if loaded != nil && loaded.KeyProblem == "" && used {
		return true
	}
	return resolvedRefs.of(snap, ref)
}

// resolvedRefs remembers, for each Snapshot still alive, whether each
// secret reference asked about resolved. Only the answer is kept, never a
// value; a Snapshot no longer referenced elsewhere drops out.
var resolvedRefs refCache

type refCache struct {
	mu    sync.Mutex
	snaps map[weak.Pointer[snapshot.Snapshot]]map[string]bool
}

func (rc *refCache) of(snap *snapshot.Snapshot, ref *config.SecretRef) bool {
	key := weak.Make(snap)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.snaps == nil {
		rc.snaps = map[weak.Pointer[snapshot.Snapshot]]map[string]bool{}
	}
	refs := rc.snaps[key]
	if refs == nil {
		for k := range rc.snaps {
			if k.Value() == nil {
				delete(rc.snaps, k)
			}
		}
		refs = map[string]bool{}
		rc.snaps[key] = refs
	}
	ok, seen := refs[ref.Ref]
	if !seen {
		_, err := ref.Resolve(snap.Repo.Dir)
		ok = err == nil
		refs[ref.Ref] = ok
	}
	return ok
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
