package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestCheckedInDashboardIsCurrent(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(File)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale or edited by hand: run `go generate ./dashboards`", File)
	}
}

var rangeFunc = regexp.MustCompile(`\b(rate|irate|increase|deriv|delta)\(`)

func TestDashboardIsWellFormed(t *testing.T) {
	data, err := os.ReadFile(File)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		SchemaVersion int `json:"schemaVersion"`
		Panels        []struct {
			ID          int             `json:"id"`
			Type        string          `json:"type"`
			Title       string          `json:"title"`
			Description string          `json:"description"`
			Datasource  json.RawMessage `json:"datasource"`
			FieldConfig struct {
				Defaults struct {
					Unit string `json:"unit"`
				} `json:"defaults"`
			} `json:"fieldConfig"`
			Targets []struct {
				Expr       string          `json:"expr"`
				Datasource json.RawMessage `json:"datasource"`
			} `json:"targets"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard JSON does not parse: %v", err)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d is not a current Grafana schema", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" || vars["target"] != "query" {
		t.Errorf("variables %v: want datasource, instance and target", vars)
	}
	ids := map[int]bool{}
	panels := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		panels++
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q has no unit", p.Title)
		}
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("panel %q has no description", p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q does not use the datasource variable: %s", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !strings.Contains(string(q.Datasource), "${datasource}") {
				t.Errorf("panel %q query does not use the datasource variable", p.Title)
			}
			if rangeFunc.MatchString(q.Expr) && !strings.Contains(q.Expr, "$__rate_interval") {
				t.Errorf("panel %q: %s does not use $__rate_interval", p.Title, q.Expr)
			}
			if !strings.Contains(q.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %s ignores the instance variable", p.Title, q.Expr)
			}
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q has a bad gridPos %+v", p.Title, p.GridPos)
		}
	}
	if panels < 15 {
		t.Errorf("only %d panels", panels)
	}
	qs, err := Queries(data)
	if err != nil || len(qs) < panels {
		t.Errorf("Queries: %d, %v", len(qs), err)
	}
}
