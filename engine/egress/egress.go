// Package egress decides where http steps may connect: the allow-list of
// upstream hosts a templated URL authority may name, and the guard that
// keeps steps off the gateway's own admin listener.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
)

// AllowList is gateway.webClient.allowedHosts: the hosts a URL whose
// authority is built at run time may name. An entry is a host name
// (orders.internal, exact, case-insensitive), a wildcard (*.svc.cluster.local:
// any name below the suffix, not the suffix itself), an IP or a CIDR
// (10.0.0.0/8). IP and CIDR entries match IP literals in the URL; a name is
// never resolved to decide. Ports are not restricted.
type AllowList struct {
	names    map[string]bool
	suffixes []string // ".svc.cluster.local"
	prefixes []netip.Prefix
}

// ParseAllowList parses the entries; an error names the first bad one.
func ParseAllowList(entries []string) (*AllowList, error) {
	a := &AllowList{names: map[string]bool{}}
	for i, e := range entries {
		if err := a.add(e); err != nil {
			return nil, fmt.Errorf("allowedHosts[%d]: %w", i, err)
		}
	}
	return a, nil
}

// CheckEntry reports why e is not a valid allow-list entry, or nil.
func CheckEntry(e string) error { return (&AllowList{names: map[string]bool{}}).add(e) }

func (a *AllowList) add(e string) error {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return badEntry(e)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(e); err == nil {
		ip = ip.Unmap()
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(e), ".")
	wild := strings.HasPrefix(name, "*.")
	if wild {
		name = name[2:]
	}
	if !validName(name) {
		return badEntry(e)
	}
	if wild {
		a.suffixes = append(a.suffixes, "."+name)
	} else {
		a.names[name] = true
	}
	return nil
}

func badEntry(e string) error {
	return fmt.Errorf("bad host %q: expected a host name (orders.internal), *.suffix, an IP or a CIDR (10.0.0.0/8); no scheme, port or path", e)
}

// validName reports whether s is a DNS name: dot-separated labels of
// letters, digits, '-' and '_'.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Empty reports whether the list allows nothing.
func (a *AllowList) Empty() bool {
	return a == nil || len(a.names) == 0 && len(a.suffixes) == 0 && len(a.prefixes) == 0
}

// Allows reports whether host (a URL's Hostname: a name or an IP literal,
// without brackets or port) is on the list.
func (a *AllowList) Allows(host string) bool {
	if a == nil || host == "" {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		for _, p := range a.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if !validName(name) {
		return false
	}
	if a.names[name] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// ErrAdminListener is the refusal of a connection to the gateway's own
// admin listener.
var ErrAdminListener = errors.New("the gateway's admin listener is not an upstream (gateway.webClient.allowAdminListener allows it)")

// Guard holds the addresses of the gateway's own admin listener and
// refuses upstream connections to them. It checks the address the dialer
// is about to connect to, after name resolution, so neither an IP spelling
// nor a name that resolves (or rebinds) to the listener gets through.
// The zero value refuses nothing; Set may be called at any time.
type Guard struct {
	addrs atomic.Pointer[[]netip.AddrPort]
}

// Set replaces the guarded addresses with those of addrs ("host:port" or
// a net.Addr's String); an unparsable address or port 0 is skipped. A
// listener on an unspecified address (0.0.0.0:8081, [::]:8081) guards
// that port on every local address.
func (g *Guard) Set(addrs ...string) {
	var out []netip.AddrPort
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		var p uint16
		if _, err := fmt.Sscan(port, &p); err != nil || p == 0 {
			continue
		}
		if host == "" || host == "localhost" {
			if host == "" {
				out = append(out, netip.AddrPortFrom(netip.IPv4Unspecified(), p))
			} else {
				out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), p), netip.AddrPortFrom(netip.IPv6Loopback(), p))
			}
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip.Unmap().WithZone(""), p))
	}
	g.addrs.Store(&out)
}

// Refuses reports whether a connection to dst reaches a guarded listener.
func (g *Guard) Refuses(dst netip.AddrPort) bool {
	if g == nil {
		return false
	}
	list := g.addrs.Load()
	if list == nil {
		return false
	}
	ip := dst.Addr().Unmap().WithZone("")
	for _, a := range *list {
		if a.Port() != dst.Port() {
			continue
		}
		if a.Addr() == ip {
			return true
		}
		if a.Addr().IsUnspecified() && local(ip) {
			return true
		}
	}
	return false
}

// local reports whether ip is one of this host's addresses.
func local(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: refuse rather than let it through
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// Control is a net.Dialer Control function: it refuses a connection to a
// guarded address. It runs for every address the dialer tries.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	dst, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
	}
	if g.Refuses(dst) {
		return ErrAdminListener // the dialer names the address
	}
	return nil
}
