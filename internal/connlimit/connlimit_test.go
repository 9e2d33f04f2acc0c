package connlimit

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeConn is a connection from addr that records being closed.
type fakeConn struct {
	net.Conn
	addr   net.Addr
	closed bool
}

func (f *fakeConn) RemoteAddr() net.Addr { return f.addr }
func (f *fakeConn) Close() error         { f.closed = true; return nil }

func from(ip string, port int) *fakeConn {
	return &fakeConn{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
}

func TestLimits(t *testing.T) {
	type step struct {
		conn  string // "ip#n": the n-th connection from ip
		state http.ConnState
		ready bool // headers complete (the handler ran)
	}
	tests := []struct {
		name        string
		limits      Limits
		steps       []step
		wantClosed  []string
		wantReasons map[string]float64
	}{
		{
			name:   "one address's share",
			limits: Limits{Max: 100, PerClient: 2},
			steps: []step{
				{conn: "10.0.0.1#1", state: http.StateNew}, {conn: "10.0.0.1#2", state: http.StateNew},
				{conn: "10.0.0.1#3", state: http.StateNew}, {conn: "10.0.0.2#1", state: http.StateNew},
			},
			wantClosed:  []string{"10.0.0.1#3"},
			wantReasons: map[string]float64{ReasonPerClient: 1},
		},
		{
			name:   "header-less ones have a smaller share; one that sent its headers frees its place",
			limits: Limits{Max: 100, PerClient: 10, PerClientUnready: 2},
			steps: []step{
				{conn: "10.0.0.1#1", state: http.StateNew}, {conn: "10.0.0.1#2", state: http.StateNew}, {conn: "10.0.0.1#2", state: http.StateActive},
				{conn: "10.0.0.1#3", state: http.StateNew},
				{conn: "10.0.0.1#1", ready: true},
				{conn: "10.0.0.1#4", state: http.StateNew},
				{conn: "10.0.0.1#5", state: http.StateNew},
			},
			wantClosed:  []string{"10.0.0.1#3", "10.0.0.1#5"},
			wantReasons: map[string]float64{ReasonPerClientUnready: 2},
		},
		{
			name:   "at the total cap an idle connection of the busiest address makes room",
			limits: Limits{Max: 3},
			steps: []step{
				{conn: "10.0.0.1#1", state: http.StateNew}, {conn: "10.0.0.1#1", ready: true}, {conn: "10.0.0.1#1", state: http.StateIdle},
				{conn: "10.0.0.1#2", state: http.StateNew}, {conn: "10.0.0.1#2", ready: true},
				{conn: "10.0.0.2#1", state: http.StateNew}, {conn: "10.0.0.2#1", ready: true},
				{conn: "10.0.0.3#1", state: http.StateNew},
			},
			wantClosed:  []string{"10.0.0.1#1"},
			wantReasons: map[string]float64{ReasonEvicted: 1},
		},
		{
			name:   "at the total cap with every connection serving, the new one is refused",
			limits: Limits{Max: 2},
			steps: []step{
				{conn: "10.0.0.1#1", state: http.StateNew}, {conn: "10.0.0.1#1", ready: true},
				{conn: "10.0.0.2#1", state: http.StateNew}, {conn: "10.0.0.2#1", ready: true},
				{conn: "10.0.0.3#1", state: http.StateNew},
			},
			wantClosed:  []string{"10.0.0.3#1"},
			wantReasons: map[string]float64{ReasonMax: 1},
		},
		{
			name:   "closed connections give their place back",
			limits: Limits{Max: 100, PerClient: 1},
			steps: []step{
				{conn: "10.0.0.1#1", state: http.StateNew}, {conn: "10.0.0.1#1", state: http.StateClosed},
				{conn: "10.0.0.1#2", state: http.StateNew},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.limits)
			conns := map[string]*fakeConn{}
			for _, s := range tt.steps {
				c := conns[s.conn]
				if c == nil {
					ip, n, _ := strings.Cut(s.conn, "#")
					port, _ := strconv.Atoi(n)
					c = from(ip, 1000+port)
					conns[s.conn] = c
				}
				if s.ready {
					l.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(nil,
						(&http.Request{}).WithContext(l.ConnContext(t.Context(), c)))
					continue
				}
				l.ConnState(c, s.state)
				if c.closed && s.state == http.StateNew {
					l.ConnState(c, http.StateClosed) // as the server reports it
				}
			}
			var closed []string
			for name, c := range conns {
				if c.closed {
					closed = append(closed, name)
				}
			}
			if fmt.Sprint(sorted(closed)) != fmt.Sprint(sorted(tt.wantClosed)) {
				t.Errorf("closed %v, want %v", sorted(closed), sorted(tt.wantClosed))
			}
			for _, r := range []string{ReasonPerClient, ReasonPerClientUnready, ReasonMax, ReasonEvicted} {
				if got := testutil.ToFloat64(l.refused.WithLabelValues(r)); got != tt.wantReasons[r] {
					t.Errorf("%s: %v, want %v", r, got, tt.wantReasons[r])
				}
			}
		})
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// The books balance: whatever the order of events, every connection that
// closed is gone from the counts.
func TestBooksBalance(t *testing.T) {
	l := New(Limits{Max: 5, PerClient: 3, PerClientUnready: 2})
	l.now = func() time.Time { return time.Unix(0, 0) }
	var all []*fakeConn
	for i := range 40 {
		c := from(fmt.Sprintf("10.0.0.%d", i%4), i)
		all = append(all, c)
		l.ConnState(c, http.StateNew)
		if c.closed {
			l.ConnState(c, http.StateClosed)
			continue
		}
		switch i % 3 {
		case 0:
			l.ConnState(c, http.StateActive)
		case 1:
			l.ConnState(c, http.StateIdle)
		}
	}
	for _, c := range all {
		l.ConnState(c, http.StateClosed)
	}
	if open, unready := l.Open(""); open != 0 || unready != 0 || len(l.clients) != 0 {
		t.Errorf("after every connection closed: %d open, %d unready, %d clients", open, unready, len(l.clients))
	}
}
