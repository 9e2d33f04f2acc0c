package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/connlimit"
)

// httpLimits bound what clients can hold of the server: how long a request
// may take to arrive and to be answered, how long an idle connection stays
// open, and how many requests and connections there are at once. Without
// them a slow or idle client holds a descriptor forever, and enough of them
// leave the scans none ("too many open files").
type httpLimits struct {
	readTimeout, writeTimeout, idleTimeout, headerTimeout time.Duration
	maxRequests, maxConnections                           int
	perClient, perClientPending                           int
}

func addHTTPLimits(cmd *kingpin.CmdClause) *httpLimits {
	l := &httpLimits{}
	cmd.Flag("web.read-timeout", "Longest time a client may take to send a whole request, headers and body.").Default("30s").DurationVar(&l.readTimeout)
	cmd.Flag("web.write-timeout", "Longest time from the end of a request's headers to the end of its answer (raised to --webhook.timeout plus 10s if shorter).").Default("60s").DurationVar(&l.writeTimeout)
	cmd.Flag("web.idle-timeout", "How long an idle keep-alive connection stays open.").Default("2m").DurationVar(&l.idleTimeout)
	cmd.Flag("web.max-requests", "Maximum number of requests served at once; more are answered 503 at once. 0 means no limit.").Default("40").IntVar(&l.maxRequests)
	cmd.Flag("web.max-connections", "Maximum number of open client connections; past it an idle or header-less connection of the client address holding the most is closed to make room, or the new one is. Capped at half the open-file limit, so scans keep descriptors. 0 means half the open-file limit.").Default("512").IntVar(&l.maxConnections)
	cmd.Flag("web.max-connections-per-client", "Maximum number of open connections from one client address; more are closed as soon as they are accepted, so one client cannot hold the server. 0 means no per-client limit.").Default("64").IntVar(&l.perClient)
	cmd.Flag("web.max-pending-per-client", "Maximum number of connections from one client address that have not finished sending a request's headers (slowloris). 0 means no limit.").Default("16").IntVar(&l.perClientPending)
	cmd.Flag("web.header-timeout", "Longest time a client may take to send a request's headers (and, with TLS, to finish its handshake).").Default("5s").DurationVar(&l.headerTimeout)
	return l
}

// server returns an http.Server for handler with the limits applied, and
// registers the connection limiter's metric in reg. webhookTimeout is how
// long the webhook may wait before answering.
func (l *httpLimits) server(logger log.Logger, reg prometheus.Registerer, handler http.Handler, webhookTimeout time.Duration) *http.Server {
	write := max(l.writeTimeout, webhookTimeout+10*time.Second)
	conns := l.connectionCap(logger)
	level.Info(logger).Log("msg", "http limits", "read_timeout", l.readTimeout, "header_timeout", l.headerTimeout, "write_timeout", write,
		"idle_timeout", l.idleTimeout, "max_requests", l.maxRequests, "max_connections", conns,
		"max_connections_per_client", l.perClient, "max_pending_per_client", l.perClientPending)
	if l.maxRequests > 0 {
		handler = limitRequests(handler, l.maxRequests)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(l.headerTimeout, l.readTimeout),
		ReadTimeout:       l.readTimeout,
		WriteTimeout:      write,
		IdleTimeout:       l.idleTimeout,
	}
	cl := connlimit.New(connlimit.Limits{Max: conns, PerClient: l.perClient, PerClientUnready: l.perClientPending})
	cl.Apply(srv)
	reg.MustRegister(cl)
	return srv
}

// connectionCap is the connection limit: the flag, but never more than half
// the open-file limit (Go raises the soft limit to the hard one at start).
func (l *httpLimits) connectionCap(logger log.Logger) int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		if l.maxConnections > 0 {
			return l.maxConnections
		}
		return 512
	}
	half := int(min(rl.Cur/2, 1<<30))
	if l.maxConnections > 0 && l.maxConnections <= half {
		return l.maxConnections
	}
	if l.maxConnections > 0 {
		level.Warn(logger).Log("msg", "--web.max-connections lowered to half the open-file limit, to keep descriptors for scanning",
			"requested", l.maxConnections, "open_file_limit", rl.Cur, "max_connections", half)
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
