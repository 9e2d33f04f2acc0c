package layout

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"testing"
)

// pk writes protocol 2 pickles by hand: the opcodes CPython's pickler emits
// for torch's legacy format (see Lib/pickletools.py for each opcode).
type pk struct{ b []byte }

func (p *pk) op(ops ...byte) *pk { p.b = append(p.b, ops...); return p }
func (p *pk) proto() *pk         { return p.op(0x80, 2) }
func (p *pk) stop() *pk          { return p.op('.') }
func (p *pk) str(s string) *pk {
	p.op('X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}
func (p *pk) global(module, name string) *pk {
	return p.op('c').op([]byte(module + "\n" + name + "\n")...)
}
func (p *pk) int(v int64) *pk {
	switch {
	case v >= 0 && v < 256:
		return p.op('K', byte(v))
	case v >= 0 && v < 65536:
		return p.op('M', byte(v), byte(v>>8))
	case v >= -1<<31 && v < 1<<31:
		p.op('J')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(v))
		return p
	}
	p.op(0x8a, 8) // LONG1, 8 bytes
	p.b = binary.LittleEndian.AppendUint64(p.b, uint64(v))
	return p
}

type legacyTensor struct {
	name   string
	module string // "" for "torch"
	class  string
	key    string
	numel  int64
}

// legacyOptions changes what legacyTorch writes, for files no torch writes.
type legacyOptions struct {
	version      int64
	bigEndian    bool
	keys         []string // nil: the sorted keys of the tensors
	countDelta   int64    // added to every storage's 8-byte count
	objectSuffix []byte   // extra opcodes in the object pickle before its dict's SETITEMS
	pidTypename  string   // "" for "storage"
	countsOnly   bool     // write the storages' counts but not their bytes
}

// legacyTorch writes a legacy torch.save file the way _legacy_save does.
func legacyTorch(tensors []legacyTensor, o legacyOptions) []byte {
	var out pk
	out.op([]byte(legacyMagicPickle)...)
	version := o.version
	if version == 0 {
		version = legacyProtocolVersion
	}
	out.proto().int(version).stop()
	le := byte(0x88) // NEWTRUE
	if o.bigEndian {
		le = 0x89
	}
	out.proto().op('}', '(').str("protocol_version").int(legacyProtocolVersion).str("little_endian").op(le).
		str("type_sizes").op('}', '(').str("short").int(2).str("int").int(4).str("long").int(4).op('u', 'u').stop()

	storages := map[string]legacyTensor{}
	typename := o.pidTypename
	if typename == "" {
		typename = "storage"
	}
	out.proto().op('}', '(')
	for _, t := range tensors {
		module := t.module
		if module == "" {
			module = "torch"
		}
		out.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op('(')
		out.op('(').str(typename).global(module, t.class).str(t.key).str("cpu").int(t.numel).op('N', 't', 'Q')
		out.int(0).int(t.numel).op(0x85).int(1).op(0x85, 0x89).global("collections", "OrderedDict").op(')', 'R', 't', 'R')
		if _, ok := storages[t.key]; !ok {
			storages[t.key] = t
		}
	}
	out.op(o.objectSuffix...)
	out.op('u').stop()

	keys := o.keys
	if keys == nil {
		for k := range storages {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	out.proto().op(']', '(')
	for _, k := range keys {
		out.str(k)
	}
	out.op('e').stop()

	for _, k := range keys {
		t := storages[k]
		out.b = binary.LittleEndian.AppendUint64(out.b, uint64(t.numel+o.countDelta))
		n := t.numel * int64(legacyElementSize[t.class])
		if o.countsOnly {
			n = 0
		}
		for i := range n {
			out.b = append(out.b, byte(i))
		}
	}
	return out.b
}

// modelTensors is a small model's state dict over every storage class.
func modelTensors(n int) []legacyTensor {
	classes := make([]string, 0, len(legacyElementSize))
	for c := range legacyElementSize {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var ts []legacyTensor
	for i := range n {
		c := classes[i%len(classes)]
		module := ""
		if c == "UntypedStorage" {
			module = "torch.storage"
		}
		ts = append(ts, legacyTensor{name: fmt.Sprintf("layers.%d.weight", i), module: module, class: c, key: fmt.Sprint(94000000 + i*16), numel: int64(i%37 + 1)})
	}
	return ts
}

func TestTorchLegacyWhole(t *testing.T) {
	shared := []legacyTensor{
		{name: "w", class: "FloatStorage", key: "1", numel: 24},
		{name: "w_view", class: "FloatStorage", key: "1", numel: 24},
		{name: "b", class: "HalfStorage", key: "2", numel: 3},
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"one tensor", legacyTorch([]legacyTensor{{name: "w", class: "FloatStorage", key: "140000", numel: 16}}, legacyOptions{})},
		{"500 tensors of every storage class", legacyTorch(modelTensors(500), legacyOptions{})},
		{"two tensors sharing a storage", legacyTorch(shared, legacyOptions{})},
		{"an empty storage", legacyTorch([]legacyTensor{{name: "e", class: "FloatStorage", key: "9", numel: 0}}, legacyOptions{})},
		{"CUDA storage class of old torch", legacyTorch([]legacyTensor{{name: "w", module: "torch.cuda", class: "FloatStorage", key: "5", numel: 4}}, legacyOptions{})},
		{"no tensors", legacyTorch(nil, legacyOptions{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, tt.name, judge(t, "model.pt", tt.data), Verdict{State: Whole, Format: "torch-legacy"})
		})
	}
}

func TestTorchLegacyCutsAreTorn(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"one tensor", legacyTorch([]legacyTensor{{name: "w", class: "FloatStorage", key: "140000", numel: 16}}, legacyOptions{})},
		{"500 tensors", legacyTorch(modelTensors(500), legacyOptions{})},
		{"no tensors", legacyTorch(nil, legacyOptions{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCutsTorn(t, "model.pth", tt.data, 400, len(legacyMagicPickle), len(legacyMagicPickle)+5)
		})
	}
}

func TestTorchLegacyCutReason(t *testing.T) {
	d := legacyTorch([]legacyTensor{{name: "w", class: "FloatStorage", key: "140000", numel: 1000}}, legacyOptions{})
	tests := []struct {
		cut  int
		want string
	}{
		{9, "file ends at 9, inside torch's magic number"},
		{15, "file ends at 15, inside the pickled protocol version"},
		{60, "file ends at 60, inside the pickled system info"},
		{200, "file ends at 200, inside the pickled object"},
		{len(d) - 100, fmt.Sprintf("torch legacy storages end at %d, file has %d", len(d), len(d)-100)},
	}
	for _, tt := range tests {
		wantVerdict(t, fmt.Sprintf("cut to %d", tt.cut), judge(t, "model.pt", d[:tt.cut]), Verdict{State: Torn, Format: "torch-legacy", Reason: tt.want})
	}
}

func TestTorchLegacyAppendedIsNotTorn(t *testing.T) {
	assertAppendedNeverTorn(t, "model.pt", legacyTorch(modelTensors(50), legacyOptions{}))
}

func TestTorchLegacyNoEndMarker(t *testing.T) {
	one := []legacyTensor{{name: "w", class: "FloatStorage", key: "1", numel: 4}}
	hugeString := (&pk{}).op('X').op(le32(headLimit)...).op(make([]byte, headLimit)...).op('0').b
	tests := []struct {
		name string
		data []byte
	}{
		{"unknown storage class", legacyTorch([]legacyTensor{{name: "w", class: "Float8Storage", key: "1", numel: 4}}, legacyOptions{})},
		{"storage class from another module", legacyTorch([]legacyTensor{{name: "w", module: "numpy", class: "FloatStorage", key: "1", numel: 4}}, legacyOptions{})},
		{"storage count disagrees with its pickle", legacyTorch(one, legacyOptions{countDelta: 1})},
		{"saved on a big-endian host", legacyTorch(one, legacyOptions{bigEndian: true})},
		{"another protocol version", legacyTorch(one, legacyOptions{version: 1000})},
		{"key list missing a storage", legacyTorch(append(one, legacyTensor{name: "b", class: "FloatStorage", key: "2", numel: 1}), legacyOptions{keys: []string{"1"}})},
		{"key list not sorted", legacyTorch(append(one, legacyTensor{name: "b", class: "FloatStorage", key: "2", numel: 1}), legacyOptions{keys: []string{"2", "1"}})},
		{"unknown persistent id", legacyTorch(one, legacyOptions{pidTypename: "tensor"})},
		{"unknown opcode in the object", legacyTorch(one, legacyOptions{objectSuffix: []byte{0xff}})},
		{"out-of-band buffer", legacyTorch(one, legacyOptions{objectSuffix: []byte{0x97}})},
		{"object pickle past the read bound", legacyTorch(one, legacyOptions{objectSuffix: hugeString})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(t, "model.pt", tt.data)
			if got.State != NoEndMarker || got.Format != "torch-legacy" {
				t.Errorf("%s (%d bytes): got %v, want no-end-marker torch-legacy", tt.name, len(tt.data), got)
			}
		})
	}
}

func TestTorchLegacyNotLegacy(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"a plain pickle", (&pk{}).proto().op('}', '(').str("epoch").int(3).op('u').stop().b},
		{"a pickle of another long", (&pk{}).proto().op(0x8a, 2, 1, 2).stop().b},
		{"a broken pickle", append([]byte{0x80, 2, 0xff}, make([]byte, 100)...)},
		{"protocol 2 then a cut", []byte{0x80, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(t, "model.bin", tt.data)
			wantVerdict(t, fmt.Sprintf("%q", tt.data), got, Verdict{State: Unknown})
		})
	}
}

// sparseReader is a file of size bytes, zero but for its segments.
type sparseReader struct {
	size     int64
	segments map[int64][]byte
	read     int64
}

func (s *sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.size {
		return 0, fmt.Errorf("read past the end of a sparse file: %d+%d > %d", off, len(p), s.size)
	}
	s.read += int64(len(p))
	clear(p)
	for at, seg := range s.segments {
		lo, hi := max(at, off), min(at+int64(len(seg)), off+int64(len(p)))
		if lo < hi {
			copy(p[lo-off:hi-off], seg[lo-at:hi-at])
		}
	}
	return len(p), nil
}

// A storage bigger than 2**31 elements is pickled as LONG1 and its data
// is never read: only its 8-byte count is.
func TestTorchLegacyHugeStorage(t *testing.T) {
	const numel = 3 << 30 // 12 GiB of floats
	head := legacyTorch([]legacyTensor{{name: "w", class: "FloatStorage", key: "1", numel: numel}}, legacyOptions{countsOnly: true})
	size := int64(len(head)) + 4*numel
	for _, tt := range []struct {
		name string
		size int64
		want State
	}{
		{"whole", size, Whole},
		{"cut a byte short", size - 1, Torn},
		{"cut after the count", int64(len(head)) + 1000, Torn},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &sparseReader{size: tt.size, segments: map[int64][]byte{0: head}}
			got, err := CheckFile("big.pt", tt.size, r)
			if err != nil || got.State != tt.want {
				t.Fatalf("CheckFile(%d bytes) = %v, %v; want %v", tt.size, got, err, tt.want)
			}
			if r.read > 1<<20 {
				t.Errorf("read %d bytes of a %d-byte file", r.read, tt.size)
			}
		})
	}
}

func TestDecodeLong(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", "0"},
		{"\x01", "1"},
		{"\xff", "-1"},
		{"\x00\x80", "-32768"},
		{"\x00\x80\x00", "32768"},
		{"\x00\x80\xff", "-32768"},
		{"\xff\xff\xff\xff\xff\xff\xff\x7f", "9223372036854775807"},
		{"\x00\x00\x00\x00\x00\x00\x00\x80", "-9223372036854775808"},
		{"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", "119547037146038801333356"},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\xff", "-18446744073709551616"},
	}
	for _, tt := range tests {
		got := fmt.Sprint(decodeLong([]byte(tt.in)))
		if got != tt.want {
			t.Errorf("decodeLong(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if legacyMagic.Cmp(decodeLong([]byte(legacyMagicPickle[4:14])).(*big.Int)) != 0 {
		t.Errorf("the magic pickle does not decode to the magic number")
	}
}

// The machine must end each pickle where Python's pickle.load ends it. The
// pickles here cover the opcodes of protocols 0 to 5 that CPython's pickler
// emits; TestRealWriters checks a corpus pickled by Python itself.
func TestPickleMachineOpcodes(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // fmt.Sprint of the value, "" to skip
	}{
		{"protocol 0 text", "(lp0\nI1\naI01\naL12345678901234567890L\naF1.5\naS'abc'\np1\nag1\na.", ""},
		{"protocol 0 dict and inst", "(dp0\nVkey\np1\n(i__main__\nC\np2\n(dp3\nbs.", ""},
		{"protocol 1 binary", "]q\x00(K\x01M\x00\x01J\x00\x00\x00\x80U\x03abcq\x01h\x01e.", ""},
		{"protocol 2 tuples and bools", "\x80\x02K\x01K\x02\x86q\x00\x88\x89\x87N\x85).", ""},
		{"protocol 3 bytes", "\x80\x03C\x03abcB\x02\x00\x00\x00xy\x86.", ""},
		{"protocol 4 frame and memoize", "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x8c\x01b\x94\x93\x94)\x81\x94.", ""},
		{"protocol 4 sets", "\x80\x04\x8f(K\x01K\x02\x90(K\x03\x91\x86.", ""},
		{"protocol 5 bytearray", "\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00hi.", ""},
		{"pop and pop mark", "K\x01K\x020(K\x031.", "1"},
		{"dup", "K\x072\x86.", "[7 7]"},
		{"list of strings", "\x80\x02]q\x00(X\x01\x00\x00\x00aX\x01\x00\x00\x00be.", "&{[a b]}"},
		{"EXT1 and NEWOBJ_EX", "\x80\x04\x82\x01)}\x92.", ""},
		{"BUILD and REDUCE", "\x80\x02c__main__\nC\n)R}b.", ""},
		{"binfloat", "G?\xf8\x00\x00\x00\x00\x00\x00.", "1.5"},
		{"obj", "(c__main__\nC\no.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data + "trailing")
			m := newPickleMachine(&file{r: bytes.NewReader(data), size: int64(len(data))})
			v, err := m.load()
			if err != nil {
				t.Fatalf("load(%q): %v", tt.data, err)
			}
			if m.pos != int64(len(tt.data)) {
				t.Errorf("load(%q) stopped at %d, want %d", tt.data, m.pos, len(tt.data))
			}
			if tt.want != "" && fmt.Sprint(v) != tt.want {
				t.Errorf("load(%q) = %v, want %s", tt.data, v, tt.want)
			}
		})
	}
}

func TestPickleMachineRejects(t *testing.T) {
	tests := []struct {
		name string
		data string
		cut  bool // the error must be errPickleCut
	}{
		{"empty stack at stop", ".", false},
		{"pop below the mark", "(0a.", false},
		{"append to a string", "X\x01\x00\x00\x00aK\x01a.", false},
		{"setitem on a list", "]K\x01K\x02s.", false},
		{"odd setitems", "}(K\x01u.", false},
		{"memo get before put", "h\x05.", false},
		{"protocol 6", "\x80\x06.", false},
		{"negative BINSTRING", "T\xff\xff\xff\xff.", false},
		{"negative LONG4", "\x8b\xff\xff\xff\xff.", false},
		{"STACK_GLOBAL of ints", "K\x01K\x02\x93.", false},
		{"persistent id in a pickle without one", "K\x01Q.", false},
		{"string longer than the file", "X\x00\x01\x00\x00abc", true},
		{"no stop", "K\x01K\x02", true},
		{"unterminated text line", "I123", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data)
			m := newPickleMachine(&file{r: bytes.NewReader(data), size: int64(len(data))})
			_, err := m.load()
			if err == nil {
				t.Fatalf("load(%q) succeeded, want an error", tt.data)
			}
			if isReadErr(err) {
				t.Errorf("load(%q) = %v, a read error", tt.data, err)
			}
			if tt.cut != (err == errPickleCut) {
				t.Errorf("load(%q) = %v, want cut %v", tt.data, err, tt.cut)
			}
		})
	}
}
