package layout

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
)

// No TensorFlow package is installed here, so the tests write tensor bundle
// metadata themselves, laid out as TensorFlow's writers lay it out:
// BundleWriter::Finish adds the header entry under "" and one
// BundleEntryProto per tensor to a table::TableBuilder with kNoCompression
// (tensor_bundle.cc); the builder cuts data blocks at the options' block
// size with a restart point every 16 keys (block_builder.cc,
// table_builder.cc), writes each block with its 5-byte trailer (a type byte
// and a masked crc32c, format.cc), then the metaindex block, the index
// block, and the 48-byte footer (format.h: Footer).

type tableEntry struct{ key, value []byte }

// tableBlock encodes entries as block_builder.cc does.
func tableBlock(entries []tableEntry) []byte {
	var b []byte
	restarts := []uint32{0}
	var last []byte
	for i, e := range entries {
		shared := 0
		if i%16 == 0 {
			if i > 0 {
				restarts = append(restarts, uint32(len(b)))
			}
		} else {
			for shared < len(last) && shared < len(e.key) && last[shared] == e.key[shared] {
				shared++
			}
		}
		b = binary.AppendUvarint(b, uint64(shared))
		b = binary.AppendUvarint(b, uint64(len(e.key)-shared))
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = append(b, e.key[shared:]...)
		b = append(b, e.value...)
		last = e.key
	}
	for _, r := range restarts {
		b = binary.LittleEndian.AppendUint32(b, r)
	}
	return binary.LittleEndian.AppendUint32(b, uint32(len(restarts)))
}

// appendTableBlock writes a block with its trailer (format.cc) and returns
// the block's handle: offset and size without the trailer.
func appendTableBlock(out, contents []byte) ([]byte, [2]uint64) {
	h := [2]uint64{uint64(len(out)), uint64(len(contents))}
	out = append(out, contents...)
	out = append(out, 0) // kNoCompression
	crc := crc32.Update(crc32.Checksum(contents, crc32.MakeTable(crc32.Castagnoli)), crc32.MakeTable(crc32.Castagnoli), []byte{0})
	masked := (crc>>15 | crc<<17) + 0xa282ead8 // crc32c::Mask
	return binary.LittleEndian.AppendUint32(out, masked), h
}

// tableOf writes a whole table of sorted entries.
func tableOf(entries []tableEntry, blockSize int) []byte {
	var out []byte
	var index []tableEntry
	for start := 0; start < len(entries); {
		end, size := start, 0
		for end < len(entries) && (end == start || size < blockSize) {
			size += len(entries[end].key) + len(entries[end].value) + 3
			end++
		}
		var h [2]uint64
		out, h = appendTableBlock(out, tableBlock(entries[start:end]))
		handle := binary.AppendUvarint(binary.AppendUvarint(nil, h[0]), h[1])
		// Any key at or after the block's last key and before the next
		// block's first separates them; the last key itself does.
		index = append(index, tableEntry{key: entries[end-1].key, value: handle})
		start = end
	}
	out, meta := appendTableBlock(out, tableBlock(nil))
	out, idx := appendTableBlock(out, tableBlock(index))
	var footer []byte
	for _, h := range [][2]uint64{meta, idx} {
		footer = binary.AppendUvarint(footer, h[0])
		footer = binary.AppendUvarint(footer, h[1])
	}
	footer = append(footer, make([]byte, 40-len(footer))...)
	footer = binary.LittleEndian.AppendUint32(footer, uint32(tfTableMagic&0xffffffff))
	footer = binary.LittleEndian.AppendUint32(footer, uint32(tfTableMagic>>32))
	return append(out, footer...)
}

// protoField appends a protobuf field: varint for wire type 0, bytes for 2.
func protoField(b []byte, field int, v any) []byte {
	switch v := v.(type) {
	case uint64:
		b = binary.AppendUvarint(b, uint64(field<<3))
		return binary.AppendUvarint(b, v)
	case []byte:
		b = binary.AppendUvarint(b, uint64(field<<3|2))
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	panic(fmt.Sprintf("protoField %T", v))
}

// tfBundle writes a bundle index of n float tensors, as BundleWriter does.
func tfBundle(n, blockSize int) []byte {
	// BundleHeaderProto: num_shards 1, endianness LITTLE (0, omitted),
	// version {producer 1}.
	header := protoField(nil, 1, uint64(1))
	header = protoField(header, 3, protoField(nil, 1, uint64(1)))
	entries := []tableEntry{{key: nil, value: header}}
	var offset uint64
	for i := range n {
		// BundleEntryProto: dtype DT_FLOAT, shape {dim {size}}, shard_id 0,
		// offset, size, crc32c (fixed32, field 6).
		size := uint64(4 * (i%50 + 1))
		dim := protoField(nil, 2, protoField(nil, 1, uint64(i%50+1)))
		e := protoField(nil, 1, uint64(1))
		e = protoField(e, 2, dim)
		e = protoField(e, 4, offset)
		e = protoField(e, 5, size)
		e = binary.LittleEndian.AppendUint32(append(e, 6<<3|5), uint32(i)*2654435761)
		entries = append(entries, tableEntry{key: fmt.Appendf(nil, "model/layer_%05d/kernel/.ATTRIBUTES/VARIABLE_VALUE", i), value: e})
		offset += size
	}
	return tableOf(entries, blockSize)
}

func TestTFIndexWhole(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"three tensors", tfBundle(3, 262144)},
		{"3000 tensors in 4 KiB blocks", tfBundle(3000, 4096)},
		{"header entry only", tfBundle(0, 262144)},
		// Any table with its footer is whole, bundle or not.
		{"a table that is not a bundle", tableOf([]tableEntry{{[]byte("a"), []byte("1")}, {[]byte("b"), []byte("2")}}, 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, tt.name, judge(t, "model.ckpt-1000.index", tt.data), Verdict{State: Whole, Format: "tf-index"})
		})
	}
}

func TestTFIndexCutsAreTorn(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"three tensors", tfBundle(3, 262144)},
		{"3000 tensors in 4 KiB blocks", tfBundle(3000, 4096)},
		{"header entry only", tfBundle(0, 262144)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.data
			assertCutsTorn(t, "ckpt-7.index", d, 300, tfFooterLen, len(d)-tfFooterLen, len(d)-8)
		})
	}
}

func TestTFIndexCutReason(t *testing.T) {
	d := tfBundle(100, 4096)
	wantVerdict(t, "cut to 40", judge(t, "x.index", d[:40]), Verdict{State: Torn, Format: "tf-index", Reason: "file ends at 40, shorter than the 48-byte table footer"})
	wantVerdict(t, "cut to 4096", judge(t, "x.index", d[:4096]), Verdict{State: Torn, Format: "tf-index", Reason: "table footer missing, file ends at 4096"})
}

func TestTFIndexAppendedIsNotTorn(t *testing.T) {
	assertAppendedNeverTorn(t, "model.ckpt-1000.index", tfBundle(300, 4096))
	assertAppendedNeverTorn(t, "model.ckpt-1000.index", tfBundle(0, 4096))
}

// Without its footer, a file named .index is Torn only when its head is a
// tensor bundle's: other programs name files .index too.
func TestTFIndexNotABundle(t *testing.T) {
	otherTable := tableOf([]tableEntry{{[]byte("a"), []byte("1")}, {[]byte("b"), []byte("2")}}, 4096)
	bundle := tfBundle(3, 4096)
	tests := []struct {
		name string
		data []byte
	}{
		{"a Faiss-like index", append([]byte("IxFI\x80\x00\x00\x00"), bytes.Repeat([]byte{7}, 2000)...)},
		{"another program's table, cut", otherTable[:len(otherTable)-10]},
		{"zeros, as a crash may leave", make([]byte, 8192)},
		{"text", []byte("index of /checkpoints\n")},
		{"a whole bundle whose footer points past itself", patched(bundle, len(bundle)-tfFooterLen, []byte{0xff, 0xff, 0x03})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(t, "faiss.index", tt.data)
			if got.State != Unknown {
				t.Errorf("%q (%d bytes): got %v, want unknown", truncate(tt.data, 40), len(tt.data), got)
			}
		})
	}
}
