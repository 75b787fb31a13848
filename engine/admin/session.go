package admin

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/snapshot"
)

// Sign-in sessions of the pages. The session cookie holds a random id,
// never the token: the server keeps which token signed in, and the session
// ends on sign-out, after SessionTTL, when MaxSessions newer ones push it
// out, or when a reload removes or changes its token.

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// MaxSessions bounds the sessions held at once; a sign-in beyond it ends
// the oldest session.
const MaxSessions = 1000

// Sessions is the store of signed-in browsers. It outlives reloads; it is
// safe for concurrent use.
type Sessions struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	byID  map[string]*list.Element // of *session
	order *list.List               // oldest first (all live for ttl)
}

type session struct {
	id      string
	token   string   // the token's name
	secret  [32]byte // SHA-256 of the token's secret: a changed secret ends the session
	expires time.Time
}

// NewSessions returns an empty store: sessions last ttl, at most max are
// held. Zero values take SessionTTL and MaxSessions; now nil is time.Now.
func NewSessions(ttl time.Duration, max int, now func() time.Time) *Sessions {
	if ttl <= 0 {
		ttl = SessionTTL
	}
	if max <= 0 {
		max = MaxSessions
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{ttl: ttl, max: max, now: now, byID: map[string]*list.Element{}, order: list.New()}
}

// Start opens a session for t and returns its id and expiry.
func (s *Sessions) Start(t *snapshot.AdminToken) (id string, expires time.Time) {
	b := make([]byte, 32)
	rand.Read(b)
	id = hex.EncodeToString(b)
	expires = s.now().Add(s.ttl)
	ss := &session{id: id, token: t.Name, secret: sha256.Sum256(t.Secret), expires: expires}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.order.Len() >= s.max {
		s.remove(s.order.Front())
	}
	s.byID[id] = s.order.PushBack(ss)
	return id, expires
}

// Lookup is the token of the live session id in snap: nil when the id is
// unknown, expired, or its token is no longer in snap with the same secret
// (the session then ends).
func (s *Sessions) Lookup(snap *snapshot.Snapshot, id string) *snapshot.AdminToken {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byID[id]
	if e == nil {
		return nil
	}
	ss := e.Value.(*session)
	if !s.now().Before(ss.expires) {
		s.remove(e)
		return nil
	}
	for i := range snap.AdminTokens {
		t := &snap.AdminTokens[i]
		if t.Name != ss.token || len(t.Secret) == 0 {
			continue
		}
		if h := sha256.Sum256(t.Secret); subtle.ConstantTimeCompare(h[:], ss.secret[:]) == 1 {
			return t
		}
	}
	s.remove(e)
	return nil
}

// End ends the session id (sign-out); an unknown id is ignored.
func (s *Sessions) End(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byID[id]; e != nil {
		s.remove(e)
	}
}

// Len is the number of sessions held (expired ones included until they
// are looked up or pushed out).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

func (s *Sessions) remove(e *list.Element) {
	delete(s.byID, e.Value.(*session).id)
	s.order.Remove(e)
}

// Via is how a request authenticated.
type Via int

// Ways a request authenticates.
const (
	ViaNone    Via = iota // no admin.tokens: nothing asked for
	ViaBearer             // an Authorization: Bearer token
	ViaSession            // the session cookie of a signed-in browser
)

// Authenticate checks r for role: its bearer token when it sends an
// Authorization header, else its session cookie. It answers as Authorize
// does (nil, nil without admin.tokens), and says which way was used.
func (s *Sessions) Authenticate(snap *snapshot.Snapshot, r *http.Request, role string) (*snapshot.AdminToken, Via, error) {
	if len(snap.Settings.Admin.Tokens) == 0 {
		return nil, ViaNone, nil
	}
	if tok := bearer(r.Header.Get("Authorization")); tok != "" {
		t, err := Authorize(snap, tok, role)
		return t, ViaBearer, err
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, ViaNone, ErrNoToken
	}
	t := s.Lookup(snap, c.Value)
	if t == nil {
		return nil, ViaSession, ErrNoToken
	}
	if !allowed(t.Role, role) {
		return t, ViaSession, &RoleError{Token: t.Name, Has: t.Role, Needs: role}
	}
	return t, ViaSession, nil
}
