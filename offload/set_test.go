package offload

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/checkpoint-exporter/checkpoint_exporter/checkpoint"
)

func spec(name string, command ...string) Spec {
	return Spec{Target: checkpoint.Target{Name: name, Path: "/ckpt/" + name}, Config: Config{Command: command, Concurrency: 1}}
}

// A reload keeps the offloader of an unchanged target, replaces a changed
// one and drops a removed one; the metrics follow.
func TestSetAttachKeepsUnchanged(t *testing.T) {
	s := NewSet(log.NewNopLogger())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx, prometheus.NewRegistry())
	first := s.Attach([]Spec{spec("a", "cp", "{path}", "/r/"), spec("b", "cp", "{path}", "/r/")})
	if len(first) != 2 || first["a"] == nil || first["b"] == nil {
		t.Fatalf("attached %v", first)
	}
	second := s.Attach([]Spec{spec("a", "cp", "{path}", "/r/"), spec("b", "cp", "{path}", "/elsewhere/")})
	if second["a"] != first["a"] {
		t.Error("unchanged target a got a new offloader")
	}
	if second["b"] == first["b"] {
		t.Error("target b kept its offloader after its command changed")
	}
	third := s.Attach([]Spec{spec("a", "cp", "{path}", "/r/")})
	if s.Get("b") != nil || third["b"] != nil {
		t.Error("removed target b still has an offloader")
	}
	if _, ok := s.Status("b", checkpoint.Checkpoint{}); ok {
		t.Error("status of a removed target")
	}
	if _, ok := s.Status("a", checkpoint.Checkpoint{}); !ok {
		t.Error("no status for a")
	}
}

// equal covers every field of Config and Target: a field added to either
// without a comparison here would let a reload keep an offloader built from
// old settings.
func TestSpecEqualSeesEveryField(t *testing.T) {
	base := spec("a", "cp", "{path}", "/r/")
	for _, part := range []string{"Target", "Config"} {
		typ := reflect.ValueOf(base).FieldByName(part).Type()
		for i := range typ.NumField() {
			changed := base
			changed.Config.Command = append([]string(nil), base.Config.Command...)
			f := reflect.ValueOf(&changed).Elem().FieldByName(part).Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(f.String() + "x")
			case reflect.Int, reflect.Int64:
				f.SetInt(f.Int() + int64(time.Second))
			case reflect.Uint64:
				f.SetUint(f.Uint() + 1)
			case reflect.Bool:
				f.SetBool(!f.Bool())
			case reflect.Slice:
				f.Set(reflect.Append(f, reflect.ValueOf("x")))
			default:
				t.Fatalf("%s.%s: kind %s not covered by this test", part, typ.Field(i).Name, f.Kind())
			}
			if base.equal(changed) {
				t.Errorf("%s.%s changed, but the specs are equal", part, typ.Field(i).Name)
			}
		}
	}
}
