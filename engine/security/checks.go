package security

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientIP is the peer address or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not itself a trusted proxy. A
// malformed hop stops the walk: nothing beyond the peer is trusted then.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if len(trusted) == 0 || !Contains(trusted, peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer
			}
			a = a.Unmap()
			if !Contains(trusted, a) {
				return a
			}
		}
	}
	return peer
}

// Contains reports whether a lies in any of the prefixes.
func Contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IPAllowed applies a deny list, then an allow list (empty allows all).
func IPAllowed(a netip.Addr, allowed, denied []netip.Prefix) bool {
	if len(denied) > 0 && Contains(denied, a) {
		return false
	}
	return len(allowed) == 0 || Contains(allowed, a)
}

// Claims of the internal JWT issued for anonymous callers.
type Claims struct {
	Name     string `json:"name,omitempty"`
	AppID    string `json:"appId,omitempty"`
	TenantID string `json:"tenantId,omitempty"`
	jwt.RegisteredClaims
}

// Issuer is the iss claim of internal JWTs.
const Issuer = "databus"

// IssueJWT signs an HS256 token for the anonymous user of a credential.
func IssueJWT(key []byte, ttl time.Duration, userID, userName, appID, tenantID, traceID string, now time.Time) (string, error) {
	claims := Claims{
		Name:     userName,
		AppID:    appID,
		TenantID: tenantID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        traceID,
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}

// ParseJWT verifies an internal JWT (upstream services do the same with the
// shared key) and returns its claims.
func ParseJWT(key []byte, token string) (*Claims, error) {
	c := &Claims{}
	_, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(Issuer), jwt.WithExpirationRequired())
	if err != nil {
		return nil, err
	}
	return c, nil
}
