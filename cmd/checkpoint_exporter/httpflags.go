package main

import (
	"github.com/alecthomas/kingpin/v2"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/httpserve"
)

// addHTTPLimits adds the flags of the server's limits to cmd.
func addHTTPLimits(cmd *kingpin.CmdClause) *httpserve.Limits {
	l := &httpserve.Limits{}
	cmd.Flag("web.read-timeout", "Longest time a client may take to send a whole request, headers and body.").Default("30s").DurationVar(&l.ReadTimeout)
	cmd.Flag("web.write-timeout", "Longest time from the end of a request's headers to the end of its answer (raised to --webhook.timeout plus 10s if shorter).").Default("60s").DurationVar(&l.WriteTimeout)
	cmd.Flag("web.idle-timeout", "How long an idle keep-alive connection stays open.").Default("2m").DurationVar(&l.IdleTimeout)
	cmd.Flag("web.max-requests", "Maximum number of requests served at once; more are answered 503 at once. 0 means no limit.").Default("40").IntVar(&l.MaxRequests)
	cmd.Flag("web.max-connections", "Maximum number of open client connections; past it an idle or header-less connection of the client address holding the most is closed to make room, or the new one is. Capped at half the open-file limit, so scans keep descriptors. 0 means half the open-file limit.").Default("512").IntVar(&l.MaxConnections)
	cmd.Flag("web.max-connections-per-client", "Maximum number of open connections from one client address; more are closed as soon as they are accepted, so one client cannot hold the server. 0 means no per-client limit.").Default("64").IntVar(&l.PerClient)
	cmd.Flag("web.max-pending-per-client", "Maximum number of connections from one client address that have not finished sending a request's headers (slowloris). 0 means no limit.").Default("16").IntVar(&l.PerClientPending)
	cmd.Flag("web.header-timeout", "Longest time a client may take to send a request's headers (and, with TLS, to finish its handshake).").Default("5s").DurationVar(&l.HeaderTimeout)
	return l
}
