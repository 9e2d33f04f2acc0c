package pruner

import "testing"

func TestProject(t *testing.T) {
	const mb = 1000 * 1000
	for _, tt := range []struct {
		name                   string
		saveEvery, steps, keep int64
		size, maxBytes         uint64
		files                  int64
		cappedBy               string
	}{
		{"all", 100, 1000, 0, 84 * mb, 0, 10, ""},
		{"keep", 100, 1000, 3, 84 * mb, 0, 3, "keep"},
		{"max_bytes", 100, 1000, 0, 84 * mb, 500 * mb, 5, "max_bytes"},
		{"keep below max_bytes", 100, 1000, 3, 84 * mb, 500 * mb, 3, "keep"},
		{"max_bytes below keep", 100, 1000, 8, 84 * mb, 500 * mb, 5, "max_bytes"},
		{"max_bytes above the run", 100, 1000, 0, 84 * mb, 10000 * mb, 10, ""},
		{"one checkpoint over max_bytes: the newest stays", 100, 1000, 0, 84 * mb, 10 * mb, 1, "max_bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr := Project(tt.saveEvery, tt.steps, tt.keep, tt.size, tt.maxBytes)
			if pr.Files != tt.files || pr.CappedBy != tt.cappedBy || pr.Bytes != uint64(tt.files)*tt.size {
				t.Errorf("Project = %+v, want %d files capped by %q", pr, tt.files, tt.cappedBy)
			}
		})
	}
}
