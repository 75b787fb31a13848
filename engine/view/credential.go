package view

import (
	"strings"

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
		v.EncryptionKey = &Secret{SecretRef: c.EncryptionKey.Ref, Resolved: secretResolved(loaded, "encryptionKey")}
	}
	if c.SignatureKey != nil {
		v.SignatureKey = &Secret{SecretRef: c.SignatureKey.Ref, Resolved: secretResolved(loaded, "signatureKey")}
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

// secretResolved tells whether the secret called name of the credential
// resolved when snap was built (snapshot.Credential.Resolved).
func secretResolved(loaded *snapshot.Credential, name string) bool {
	return loaded != nil && loaded.Resolved[name]
}

// nonNil makes a nil list marshal as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
