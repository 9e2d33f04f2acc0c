//go:build release

package release

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/testenv"
)

// buildah runs Debian's buildah on a store of the test's own (vfs: no
// overlay mounts, works inside containers), so nothing leaks into the host's.
type buildah struct{ root, runroot string }

func newBuildah(t *testing.T) buildah {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "building and running images needs root")
	}
	testenv.Need(t, "buildah")
	testenv.Need(t, "runc")
	dir := t.TempDir()
	return buildah{root: filepath.Join(dir, "storage"), runroot: filepath.Join(dir, "run")}
}

func (b buildah) command(args ...string) *exec.Cmd {
	return exec.Command("buildah", append([]string{"--root", b.root, "--runroot", b.runroot, "--storage-driver", "vfs"}, args...)...)
}

func (b buildah) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := b.command(args...)
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("buildah %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

// imageConfig is the part of an OCI image config the test checks.
type imageConfig struct {
	Architecture string `json:"architecture"`
	Config       struct {
		User         string              `json:"User"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
	} `json:"config"`
}

func TestImage(t *testing.T) {
	b := newBuildah(t)
	var amd64 imageConfig
	for _, arch := range []string{"amd64", "arm64"} {
		image := "localhost/checkpoint-exporter:" + arch
		b.run(t, "bud", "--quiet", "--arch", arch, "--build-arg", "ARCH="+arch, "-t", image, repo)
		var cfg imageConfig
		if err := json.Unmarshal([]byte(b.run(t, "inspect", "--type", "image", "--format", "{{.OCIv1}}", image)), &cfg); err != nil {
			// Older buildah prints Go syntax for a struct: read the JSON form.
			var full struct {
				OCIv1 imageConfig `json:"OCIv1"`
			}
			if err := json.Unmarshal([]byte(b.run(t, "inspect", "--type", "image", image)), &full); err != nil {
				t.Fatal(err)
			}
			cfg = full.OCIv1
		}
		if cfg.Architecture != arch {
			t.Errorf("%s: architecture %q", image, cfg.Architecture)
		}
		if cfg.Config.User != "65534:65534" {
			t.Errorf("%s: user %q, want the numeric non-root 65534:65534", image, cfg.Config.User)
		}
		if _, ok := cfg.Config.ExposedPorts["9866/tcp"]; !ok {
			t.Errorf("%s: exposes %v, want 9866/tcp", image, cfg.Config.ExposedPorts)
		}
		if len(cfg.Config.Entrypoint) == 0 {
			t.Fatalf("%s: no entrypoint", image)
		}
		// The binary inside is the one for the image's architecture.
		ctr := b.run(t, "from", "--quiet", image)
		mnt := b.run(t, "mount", ctr)
		out, err := exec.Command("go", "version", "-m", filepath.Join(mnt, cfg.Config.Entrypoint[0])).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "GOARCH="+arch) {
			t.Errorf("%s: binary is not for %s: %v\n%s", image, arch, err, out)
		}
		b.run(t, "umount", ctr)
		b.run(t, "rm", ctr)
		if arch == "amd64" {
			amd64 = cfg
		}
	}
	if t.Failed() {
		return
	}

	// A training job's directory: owned by UID 1000, private to it.
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if err := os.Mkdir(ckpt, 0o700); err != nil {
		t.Fatal(err)
	}
	for step := 1; step <= 3; step++ {
		f := filepath.Join(ckpt, fmt.Sprintf("checkpoint_step_%d.keras", step))
		if err := os.WriteFile(f, make([]byte, 64<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(ckpt, 1000, 1000); err != nil {
		t.Fatal(err)
	}

	command := append(append([]string{}, amd64.Config.Entrypoint...), amd64.Config.Cmd...)
	t.Run("as the owner", func(t *testing.T) {
		metrics := b.scrape(t, ckpt, command, "--user", "1000:1000")
		for _, want := range []string{
			`checkpoint_dir_up{target="checkpoints"} 1`,
			`checkpoint_dir_checkpoints{target="checkpoints"} 3`,
			`checkpoint_dir_latest_step{target="checkpoints"} 3`,
		} {
			if !strings.Contains(metrics, want+"\n") {
				t.Errorf("/metrics lacks %q:\n%s", want, grepTarget(metrics))
			}
		}
	})
	t.Run("as the image's default user", func(t *testing.T) {
		// Not root: the owner's private directory is unreadable.
		metrics := b.scrape(t, ckpt, command)
		if want := `checkpoint_dir_up{target="checkpoints"} 0`; !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q (is the image running as root?):\n%s", want, grepTarget(metrics))
		}
	})
}

// scrape runs the amd64 image with runc, the checkpoint directory mounted
// at /checkpoints, listening on loopback only, and returns its first /metrics
// that has scanned the target.
func (b buildah) scrape(t *testing.T, ckpt string, command []string, runArgs ...string) string {
	t.Helper()
	ctr := b.run(t, "from", "--quiet", "localhost/checkpoint-exporter:amd64")
	defer b.run(t, "rm", ctr)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"run", "--runtime", "runc", "--network", "host", "--volume", ckpt + ":/checkpoints"}, runArgs...)
	args = append(append(append(args, ctr, "--"), command...), "--web.listen-address="+addr)
	cmd := b.command(args...)
	logs, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("the container did not stop on SIGTERM")
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logs.Name())
			exited <- err
			t.Fatalf("container exited: %v\n%s", err, out)
		default:
		}
		if body, err := get("http://" + addr + "/metrics"); err == nil && strings.Contains(body, `checkpoint_dir_up{target="checkpoints"}`) {
			return body
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logs.Name())
			t.Fatalf("no scan of the target on http://%s/metrics within a minute; container log:\n%s", addr, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(body), err
}

func grepTarget(metrics string) string {
	var b strings.Builder
	for _, line := range strings.Split(metrics, "\n") {
		if strings.Contains(line, `target="checkpoints"`) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
