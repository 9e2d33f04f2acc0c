package httpserve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/connlimit"
)

// Limits bound what clients can hold of the server: how long a request may
// take to arrive and to be answered, how long an idle connection stays
// open, and how many requests and connections there are at once. Without
// them a slow or idle client holds a descriptor forever, and enough of them
// leave the scans none ("too many open files"). The exporter's --web.*
// flags set them.
type Limits struct {
	ReadTimeout, WriteTimeout, IdleTimeout, HeaderTimeout time.Duration
	// MaxRequests: more at once are answered 503 (0: no limit).
	MaxRequests int
	// MaxConnections is capped at half the open-file limit (0: that half).
	MaxConnections int
	// PerClient and PerClientPending bound one client address's open
	// connections and those still sending headers (0: no limit).
	PerClient, PerClientPending int
}

// Server returns an http.Server for handler with the limits applied, and
// registers the connection limiter's metric in reg. longest is how long a
// handler may take before answering (the webhook's timeout): the write
// timeout is raised to it plus 10s.
func (l Limits) Server(logger log.Logger, reg prometheus.Registerer, handler http.Handler, longest time.Duration) *http.Server {
	write := max(l.WriteTimeout, longest+10*time.Second)
	conns := l.connectionCap(logger)
	level.Info(logger).Log("msg", "http limits", "read_timeout", l.ReadTimeout, "header_timeout", l.HeaderTimeout, "write_timeout", write,
		"idle_timeout", l.IdleTimeout, "max_requests", l.MaxRequests, "max_connections", conns,
		"max_connections_per_client", l.PerClient, "max_pending_per_client", l.PerClientPending)
	if l.MaxRequests > 0 {
		handler = limitRequests(handler, l.MaxRequests)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(l.HeaderTimeout, l.ReadTimeout),
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      write,
		IdleTimeout:       l.IdleTimeout,
	}
	cl := connlimit.New(connlimit.Limits{Max: conns, PerClient: l.PerClient, PerClientUnready: l.PerClientPending})
	cl.Apply(srv)
	reg.MustRegister(cl)
	return srv
}

// connectionCap is the connection limit: the flag, but never more than half
// the open-file limit (Go raises the soft limit to the hard one at start).
func (l Limits) connectionCap(logger log.Logger) int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		if l.MaxConnections > 0 {
			return l.MaxConnections
		}
		return 512
	}
	half := int(min(rl.Cur/2, 1<<30))
	if l.MaxConnections > 0 && l.MaxConnections <= half {
		return l.MaxConnections
	}
	if l.MaxConnections > 0 {
		level.Warn(logger).Log("msg", "--web.max-connections lowered to half the open-file limit, to keep descriptors for scanning",
			"requested", l.MaxConnections, "open_file_limit", rl.Cur, "max_connections", half)
	}
	return max(half, 1)
}

// limitRequests answers 503 to requests past n at once, as node_exporter's
// --web.max-requests does.
func limitRequests(next http.Handler, n int) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			next.ServeHTTP(rw, r)
		default:
			// Refused without reading the body: drop the connection rather
			// than wait for a slow client's body.
			rw.Header().Set("Connection", "close")
			_ = http.NewResponseController(rw).SetReadDeadline(time.Now())
			rw.Header().Set("Retry-After", "1")
			http.Error(rw, "too many concurrent requests (limit "+strconv.Itoa(n)+", --web.max-requests)", http.StatusServiceUnavailable)
		}
	})
}
