package egress

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestAllowList(t *testing.T) {
	a, err := ParseAllowList([]string{"orders.internal", "*.svc.cluster.local", "10.0.0.0/8", "::1", "Upper.Example."})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want bool
	}{
		{"orders.internal", true},
		{"ORDERS.internal.", true},
		{"upper.example", true},
		{"x.orders.internal", false},
		{"a.svc.cluster.local", true},
		{"a.b.svc.cluster.local", true},
		{"svc.cluster.local", false},
		{"evilsvc.cluster.local", false},
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"11.0.0.1", false},
		{"127.0.0.1", false},
		{"::1", true},
		{"", false},
		{"orders.internal@127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := a.Allows(tt.host); got != tt.want {
			t.Errorf("Allows(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if (*AllowList)(nil).Allows("orders.internal") || !(*AllowList)(nil).Empty() {
		t.Error("a nil list allows something")
	}
	for _, bad := range []string{"http://x", "x:80", "10.0.0.0/40", "a..b", "*", "*.", "x/y", ""} {
		if CheckEntry(bad) == nil {
			t.Errorf("CheckEntry(%q) accepted", bad)
		}
	}
}

func TestGuard(t *testing.T) {
	var g Guard
	dst := netip.MustParseAddrPort("127.0.0.1:8081")
	if g.Refuses(dst) {
		t.Fatal("the zero Guard refuses")
	}
	g.Set("127.0.0.1:8081", "bad", "127.0.0.1:0")
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8081", true},
		{"[::ffff:127.0.0.1]:8081", true},
		{"127.0.0.1:8082", false},
		{"127.0.0.2:8081", false},
	} {
		if got := g.Refuses(netip.MustParseAddrPort(tt.addr)); got != tt.want {
			t.Errorf("Refuses(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if err := g.Control("tcp", "127.0.0.1:8081", nil); !errors.Is(err, ErrAdminListener) {
		t.Errorf("Control = %v, want ErrAdminListener", err)
	}
	// An admin listener on every address guards its port on each local one.
	g.Set("0.0.0.0:8081")
	for _, addr := range []string{"127.0.0.1:8081", "127.9.9.9:8081", "[::1]:8081", "0.0.0.0:8081"} {
		if !g.Refuses(netip.MustParseAddrPort(addr)) {
			t.Errorf("listener on 0.0.0.0: %s not refused", addr)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(n.IP)
				if !g.Refuses(netip.AddrPortFrom(ip.Unmap(), 8081)) {
					t.Errorf("listener on 0.0.0.0: interface address %s not refused", ip)
				}
			}
		}
	}
	if g.Refuses(netip.MustParseAddrPort("192.0.2.1:8081")) {
		t.Error("listener on 0.0.0.0: a remote address is refused")
	}
}
