// Package connlimit keeps one client address from holding an HTTP server.
//
// A server that caps only its total number of connections can be taken by
// one client: a thousand idle keep-alive connections, or hundreds that send
// their request headers a byte at a time (slowloris), fill the cap, and then
// every other client — Prometheus scraping, Alertmanager posting an alert —
// is refused until timeouts drop them. The Limiter caps, per client address,
// the connections open and the connections that have not finished sending a
// request's headers; when the total cap is reached anyway (many addresses),
// it closes an idle or header-less connection of the address that holds the
// most before it refuses a new one. Refusals are counted by reason.
//
// It works through http.Server's ConnState and ConnContext hooks and a
// handler wrapper that marks a connection's headers complete; it holds no
// goroutine and makes no system call but closing a connection.
//
// It imports nothing of this repository.
package connlimit

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits are the caps. Zero means no cap.
type Limits struct {
	// Max is the number of connections open at once, from all clients.
	Max int
	// PerClient is the number of connections one client address may hold.
	PerClient int
	// PerClientUnready is the number of connections one client address may
	// hold that have not finished sending a request's headers.
	PerClientUnready int
}

// Reasons a connection was closed by the Limiter, as in the metric's label.
const (
	ReasonPerClient        = "per_client"         // the address holds PerClient already
	ReasonPerClientUnready = "per_client_unready" // the address holds PerClientUnready header-less ones
	ReasonMax              = "max_connections"    // Max reached and nothing could make room
	ReasonEvicted          = "evicted"            // an idle or header-less connection closed to make room
)

// state is where a connection is in its life.
type state int

const (
	unready state = iota // accepted or reading a request's headers
	serving              // headers read: a handler runs
	idle                 // between requests on a keep-alive connection
)

type conn struct {
	c     net.Conn
	addr  string
	state state
	since time.Time
}

type client struct {
	open, unready int
}

// Limiter tracks the connections of one server. Use it as the server's
// ConnState and ConnContext, and wrap its handler with Handler.
type Limiter struct {
	limits  Limits
	now     func() time.Time
	refused *prometheus.CounterVec

	mu      sync.Mutex // guards conns and clients
	conns   map[net.Conn]*conn
	clients map[string]*client
}

// New returns a limiter with the given caps.
func New(l Limits) *Limiter {
	return &Limiter{
		limits: l,
		now:    time.Now,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "checkpoint_exporter_http_connections_closed_total",
			Help: "HTTP connections closed by the exporter to keep clients from holding the server, by reason: per_client and per_client_unready (one address held its share), max_connections (no room), evicted (an idle or header-less connection closed to make room).",
		}, []string{"reason"}),
		conns:   map[net.Conn]*conn{},
		clients: map[string]*client{},
	}
}

// Describe implements prometheus.Collector.
func (l *Limiter) Describe(ch chan<- *prometheus.Desc) { l.refused.Describe(ch) }

// Collect implements prometheus.Collector.
func (l *Limiter) Collect(ch chan<- prometheus.Metric) { l.refused.Collect(ch) }

// Apply sets srv's ConnState and ConnContext hooks to the limiter's, and
// wraps srv.Handler with Handler.
func (l *Limiter) Apply(srv *http.Server) {
	srv.ConnState = l.ConnState
	srv.ConnContext = l.ConnContext
	srv.Handler = l.Handler(srv.Handler)
}

type connKey struct{}

// ConnContext keeps the connection in its requests' context, for Handler.
func (l *Limiter) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Handler marks a request's connection as having sent its headers.
func (l *Limiter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			l.set(c, serving)
		}
		next.ServeHTTP(rw, r)
	})
}

// ConnState follows the server's connections; it closes a new one past the
// caps, or an older idle or header-less one to make room for it.
func (l *Limiter) ConnState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.accept(c)
	case http.StateActive:
		l.set(c, unready) // reading a request's headers
	case http.StateIdle:
		l.set(c, idle)
	case http.StateClosed, http.StateHijacked:
		l.forget(c)
	}
}

func addrOf(c net.Conn) string {
	a := c.RemoteAddr()
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

func (l *Limiter) accept(c net.Conn) {
	addr := addrOf(c)
	var close []net.Conn
	reason := ""
	l.mu.Lock()
	cl := l.clients[addr]
	if cl == nil {
		cl = &client{}
		l.clients[addr] = cl
	}
	switch {
	case l.limits.PerClient > 0 && cl.open >= l.limits.PerClient:
		reason = ReasonPerClient
	case l.limits.PerClientUnready > 0 && cl.unready >= l.limits.PerClientUnready:
		reason = ReasonPerClientUnready
	case l.limits.Max > 0 && len(l.conns) >= l.limits.Max:
		if v := l.victim(addr); v != nil {
			close = append(close, v.c)
			l.drop(v)
			l.refused.WithLabelValues(ReasonEvicted).Inc()
		} else {
			reason = ReasonMax
		}
	}
	if reason == "" {
		l.conns[c] = &conn{c: c, addr: addr, state: unready, since: l.now()}
		cl.open++
		cl.unready++
	} else {
		if cl.open == 0 {
			delete(l.clients, addr)
		}
		l.refused.WithLabelValues(reason).Inc()
		close = append(close, c)
	}
	l.mu.Unlock()
	// The new connection's serving goroutine sees its conn closed and ends
	// (StateClosed is reported for it too, and finds nothing to forget).
	for _, x := range close {
		x.Close()
	}
}

// victim picks the connection to close to make room for one from addr: an
// idle or header-less one of the address that holds the most connections
// (never addr's own unless it holds the most), the one in that state
// longest. l.mu is held.
func (l *Limiter) victim(addr string) *conn {
	var best *conn
	for _, c := range l.conns {
		if c.state == serving {
			continue
		}
		if best == nil {
			best = c
			continue
		}
		bo, co := l.clients[best.addr].open, l.clients[c.addr].open
		switch {
		case co > bo, co == bo && c.since.Before(best.since):
			best = c
		}
	}
	if best == nil || best.addr == addr && l.clients[addr].open <= 1 {
		return nil
	}
	return best
}

func (l *Limiter) set(c net.Conn, s state) {
	l.mu.Lock()
	defer l.mu.Unlock()
	x, ok := l.conns[c]
	if !ok || x.state == s {
		return
	}
	cl := l.clients[x.addr]
	if x.state == unready {
		cl.unready--
	}
	if s == unready {
		cl.unready++
	}
	x.state, x.since = s, l.now()
}

func (l *Limiter) forget(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if x, ok := l.conns[c]; ok {
		l.drop(x)
	}
}

// drop removes x from the books. l.mu is held.
func (l *Limiter) drop(x *conn) {
	delete(l.conns, x.c)
	cl := l.clients[x.addr]
	cl.open--
	if x.state == unready {
		cl.unready--
	}
	if cl.open == 0 {
		delete(l.clients, x.addr)
	}
}

// Open returns how many connections are open, and how many of them have not
// sent a request's headers, for addr ("" for all clients).
func (l *Limiter) Open(addr string) (open, unready int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr != "" {
		if cl, ok := l.clients[addr]; ok {
			return cl.open, cl.unready
		}
		return 0, 0
	}
	for _, cl := range l.clients {
		open += cl.open
		unready += cl.unready
	}
	return open, unready
}
