// Package registry is the third-party service registry of DESIGN.md section 6:
// servers and the callback services on them, registered at run time in the
// FATE Flow 1.x shapes. This file is the seam the rest of the gateway uses:
// steps and hooks resolve a service by server and name at call time, through
// a Resolver, so re-registering a server moves its services with it.
package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotFound is wrapped by a Resolver's error when the server or the
// service is not registered.
var ErrNotFound = errors.New("not registered")

// Server is a registered server. Names are stored upper-case.
type Server struct {
	Name     string `json:"server_name"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // http or https (grpc targets use host:port)
}

// Address is host:port.
func (s Server) Address() string {
	return s.Host + ":" + strconv.Itoa(s.Port)
}

// Service is a registered callback service on a server.
type Service struct {
	ServerName  string            `json:"server_name"`
	ServiceName string            `json:"service_name"`
	URI         string            `json:"uri"`
	Method      string            `json:"method"`
	Protocol    string            `json:"protocol,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	Data        map[string]any    `json:"data,omitempty"`
}

// Endpoint is a service resolved against the current entry of its server.
type Endpoint struct {
	Server  Server
	Service Service
}

// URL is protocol://host:port + uri, the service's protocol winning over the
// server's.
func (e Endpoint) URL() string {
	proto := e.Service.Protocol
	if proto == "" {
		proto = e.Server.Protocol
	}
	if proto == "" {
		proto = "http"
	}
	return proto + "://" + e.Server.Address() + e.Service.URI
}

// Resolver finds a registered service at call time.
type Resolver interface {
	// Resolve returns the service name on server; server names compare
	// case-insensitively. A missing server or service gives an error
	// wrapping ErrNotFound that names it.
	Resolve(ctx context.Context, server, name string) (Endpoint, error)
}

// NotFound is the error of a Resolver for a missing server or service.
func NotFound(server, name string) error {
	return fmt.Errorf("service %q of server %q: %w", name, strings.ToUpper(server), ErrNotFound)
}
