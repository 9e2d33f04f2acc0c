package layout

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

type stTensor struct {
	name  string
	dtype string
	shape []int
}

// safetensorsOf writes tensors the way the reference writer does
// (safetensors/src/tensor.rs, prepare and serialize): data laid out in
// order with no holes, the JSON header padded with spaces to a multiple of
// 8, its length as a little-endian u64 first.
func safetensorsOf(t testing.TB, metadata map[string]string, tensors ...stTensor) []byte {
	t.Helper()
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var data []byte
	for i, tt := range tensors {
		n := int(safetensorsDtypeSize[tt.dtype])
		for _, d := range tt.shape {
			n *= d
		}
		begin := len(data)
		for j := range n {
			data = append(data, byte(i+j))
		}
		header[tt.name] = map[string]any{"dtype": tt.dtype, "shape": tt.shape, "data_offsets": []int{begin, len(data)}}
	}
	js, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	out = append(out, js...)
	return append(out, data...)
}

// manyTensors is a model-like list: 300 tensors over all the dtypes.
func manyTensors() []stTensor {
	dtypes := make([]string, 0, len(safetensorsDtypeSize))
	for d := range safetensorsDtypeSize {
		dtypes = append(dtypes, d)
	}
	sort.Strings(dtypes)
	var ts []stTensor
	for i := range 300 {
		ts = append(ts, stTensor{name: fmt.Sprintf("model.layers.%d.weight", i), dtype: dtypes[i%len(dtypes)], shape: []int{i%7 + 1, 3}})
	}
	ts = append(ts, stTensor{name: "scalar", dtype: "F32", shape: []int{}}, stTensor{name: "empty", dtype: "F16", shape: []int{0, 4}})
	return ts
}

// rawSafetensors builds a file from a header string and a data length, for
// headers no writer makes.
func rawSafetensors(header string, dataLen int) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, make([]byte, dataLen)...)
}

func TestSafetensorsWhole(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"one tensor", safetensorsOf(t, nil, stTensor{"w", "F32", []int{4, 4}})},
		{"300 tensors of every dtype, with metadata", safetensorsOf(t, map[string]string{"format": "pt"}, manyTensors()...)},
		{"metadata only", safetensorsOf(t, map[string]string{"format": "pt"})},
		{"no tensors", safetensorsOf(t, nil)},
		{"an unknown dtype skips the shape check", rawSafetensors(`{"x":{"dtype":"F4","shape":[16],"data_offsets":[0,8]}}`, 8)},
		{"header followed by padding spaces", rawSafetensors(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}      `, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, tt.name, judge(t, "model.safetensors", tt.data), Verdict{State: Whole, Format: "safetensors"})
		})
	}
}

func TestSafetensorsCutsAreTorn(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"one tensor", safetensorsOf(t, nil, stTensor{"w", "F32", []int{4, 4}})},
		{"300 tensors", safetensorsOf(t, map[string]string{"format": "pt"}, manyTensors()...)},
		{"metadata only", safetensorsOf(t, map[string]string{"format": "pt"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := int(binary.LittleEndian.Uint64(tt.data))
			assertCutsTorn(t, "model-00001-of-00002.safetensors", tt.data, 300, 8, 8+n)
		})
	}
}

func TestSafetensorsCutReason(t *testing.T) {
	d := safetensorsOf(t, nil, stTensor{"w", "U8", []int{1 << 20}})
	n := int64(binary.LittleEndian.Uint64(d))
	tests := []struct {
		name string
		cut  int
		want string
	}{
		{"inside the length", 5, "file ends at 5, inside the 8-byte safetensors header length"},
		{"inside the header", 20, fmt.Sprintf("safetensors header says at least %d bytes, file has 20", 8+n)},
		{"inside the data", 65536, fmt.Sprintf("safetensors header says %d bytes, file has 65536", 8+n+1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, fmt.Sprintf("cut to %d", tt.cut), judge(t, "m.safetensors", d[:tt.cut]), Verdict{State: Torn, Format: "safetensors", Reason: tt.want})
		})
	}
}

func TestSafetensorsAppendedIsNotTorn(t *testing.T) {
	assertAppendedNeverTorn(t, "model.safetensors", safetensorsOf(t, map[string]string{"format": "pt"}, manyTensors()...))
}

func TestSafetensorsNotUnderstood(t *testing.T) {
	big := binary.LittleEndian.AppendUint64(nil, maxSafetensorsHeader+1)
	big = append(big, `{"x":1}`...)
	tests := []struct {
		name string
		data []byte
	}{
		{"header length over the 100 MB limit", big},
		{"no JSON object after the length", rawSafetensors(`["a list"]`, 0)},
		{"a short file that is not safetensors at all", []byte("hello world, not tensors")},
		{"JSON that does not parse", rawSafetensors(`{"x":{"dtype":"F32",`, 100)},
		{"two JSON values", rawSafetensors(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} {}`, 1)},
		{"offsets reversed", rawSafetensors(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}}`, 2)},
		{"one offset", rawSafetensors(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[2]}}`, 2)},
		{"negative offset", rawSafetensors(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[-1,1]}}`, 2)},
		{"shape does not fill the offsets", rawSafetensors(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)},
		{"shape overflows", rawSafetensors(`{"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, 8)},
		{"invalid UTF-8", rawSafetensors("{\"\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1)},
		{"offsets past the largest file", rawSafetensors(`{"x":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,18446744073709551615]}}`, 0)},
		{"longer than declared", append(safetensorsOf(t, nil, stTensor{"w", "F32", []int{2}}), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(t, "x.safetensors", tt.data)
			if got.State != Unknown {
				t.Errorf("%q (%d bytes): got %v, want unknown", truncate(tt.data, 80), len(tt.data), got)
			}
		})
	}
}

func truncate(b []byte, n int) string {
	s := string(b[:min(len(b), n)])
	if len(b) > n {
		s += "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// A header longer than the bytes this check reads is judged by its length
// alone: Torn if the file cannot hold it, Unknown if it can.
func TestSafetensorsHeaderOverReadBound(t *testing.T) {
	n := uint64(headLimit + 8)
	head := binary.LittleEndian.AppendUint64(nil, n)
	head = append(head, '{')
	short := append(bytes.Clone(head), make([]byte, 100)...)
	wantVerdict(t, "cut inside a 8 MiB header", judge(t, "x.safetensors", short), Verdict{State: Torn, Format: "safetensors"})
	long := append(bytes.Clone(head), make([]byte, n)...)
	wantVerdict(t, "a whole 8 MiB header", judge(t, "x.safetensors", long), Verdict{State: Unknown, Format: "safetensors"})
}
