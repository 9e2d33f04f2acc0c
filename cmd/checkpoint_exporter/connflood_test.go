package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "checkpoint_exporter test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	must(t, err)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	must(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	c, err := x509.ParseCertificate(der)
	must(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// Issue #23 item 1: one client address cannot take the server. 1 000
// connections that never send a byte and 600 that send their headers a
// byte at a time (slowloris), all from 127.0.0.1 and reopened as soon as the
// server closes them, while a scraper on 127.0.0.2 scrapes every 100 ms for
// 40 s: every scrape succeeds, the 99th percentile under a second, and the
// flood's connections are closed and counted. Before, once 512 were held,
// every scrape from anyone was refused. With plain HTTP and with TLS.
func TestConnectionFloodFromOneAddress(t *testing.T) {
	for _, mode := range []string{"http", "tls"} {
		t.Run(mode, func(t *testing.T) {
			cfg, _ := limitsSetup(t)
			addr := freePort(t)
			args := []string{"--config.file=" + cfg, "--web.listen-address=" + addr}
			scheme, client := "http", &http.Client{Timeout: 5 * time.Second}
			var tlsConf *tls.Config
			if mode == "tls" {
				dir := t.TempDir()
				cert, key, pool := selfSigned(t, dir)
				webCfg := filepath.Join(dir, "web.yml")
				must(t, os.WriteFile(webCfg, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert, key)), 0o644))
				args = append(args, "--web.config.file="+webCfg)
				scheme = "https"
				tlsConf = &tls.Config{RootCAs: pool}
			}
			// The scraper's connections come from 127.0.0.2.
			client.Transport = &http.Transport{
				DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}).DialContext,
				TLSClientConfig: tlsConf,
			}
			cmd := exec.Command(binary, args...)
			logs := &syncBuffer{}
			cmd.Stderr = logs
			must(t, cmd.Start())
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			base := scheme + "://" + addr
			up := time.Now().Add(15 * time.Second)
			for {
				resp, err := client.Get(base + "/metrics")
				if err == nil {
					resp.Body.Close()
					break
				}
				if time.Now().After(up) {
					t.Fatalf("exporter did not come up: %v\n%s", err, logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}

			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var opened, closedByServer atomic.Int64
			flood := func(slow bool) {
				defer wg.Done()
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
				for ctx.Err() == nil {
					c, err := d.DialContext(ctx, "tcp", addr)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					opened.Add(1)
					go func() { <-ctx.Done(); c.Close() }()
					header := "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200)
					for i := 0; ctx.Err() == nil; i++ {
						if slow {
							if _, err := c.Write([]byte{header[i%len(header)]}); err != nil {
								break
							}
							time.Sleep(time.Second)
							continue
						}
						c.SetReadDeadline(time.Now().Add(time.Second))
						if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
							break // closed by the server
						}
					}
					c.Close()
					if ctx.Err() == nil {
						closedByServer.Add(1)
					}
					time.Sleep(time.Second) // and again
				}
			}
			for i := range 1600 {
				wg.Add(1)
				go flood(i >= 1000)
			}

			var latencies []time.Duration
			var failures []string
			for end := time.Now().Add(40 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				start := time.Now()
				resp, err := client.Get(base + "/metrics")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				latencies = append(latencies, time.Since(start))
				if err != nil {
					failures = append(failures, err.Error())
				}
			}
			stop()
			wg.Wait()
			if len(failures) > 0 {
				t.Errorf("%d of %d scrapes from 127.0.0.2 failed during the flood, first: %s", len(failures), len(latencies), failures[0])
			}
			slices.Sort(latencies)
			p99 := latencies[len(latencies)*99/100]
			t.Logf("%d scrapes, p50 %s, p99 %s, max %s; flood: %d connections opened, %d closed by the server",
				len(latencies), latencies[len(latencies)/2], p99, latencies[len(latencies)-1], opened.Load(), closedByServer.Load())
			if p99 >= time.Second {
				t.Errorf("p99 of scrapes during the flood %s, want under 1s", p99)
			}
			if closedByServer.Load() < 1000 {
				t.Errorf("the server closed %d of the flood's connections, want the flood kept out", closedByServer.Load())
			}
			resp, err := client.Get(base + "/metrics")
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			counted := 0.0
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "checkpoint_exporter_http_connections_closed_total{") {
					var v float64
					fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
					counted += v
					t.Log(line)
				}
			}
			if counted < 1000 {
				t.Errorf("checkpoint_exporter_http_connections_closed_total adds up to %v, want the flood counted", counted)
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
