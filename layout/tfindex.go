package layout

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// TensorFlow's checkpoint ("tensor bundle") metadata, prefix.index, is a
// leveldb-style table (tensorflow/core/util/tensor_bundle/tensor_bundle.cc,
// BundleWriter::Finish and MergeBundles, written through
// tensorflow/core/lib/io/table_builder.cc). The table format is in
// tensorflow/core/lib/io/format.h and format.cc:
//
//	[data blocks][metaindex block][index block][footer]
//	block   = contents, 1-byte compression type, 4-byte masked crc32c
//	footer  = metaindex handle, index handle (each two varint64s: offset,
//	          size), zero padding to 40 bytes, then the 8-byte magic
//	          0xdb4775248b80fb57 as two little-endian fixed32s, low half first
//
// The footer is the builder's last write, so a cut table has no magic at its
// end.
//
// Is a missing magic conclusive? Not for any file named .index: other tools
// (a Faiss index, for one) use the extension too, and a false Torn deletes a
// good file. Even beside .data shards the name alone is weak evidence. So a
// missing footer is Torn only when the head is the one every tensor bundle
// starts with: the table's first entry, stored uncompressed (TensorFlow
// writes bundles with kNoCompression), is the header entry under the empty
// key ("kHeaderEntryKey ... the header is always the first entry"), so the
// file starts with varint shared length 0, varint key length 0, the value's
// varint length, and a serialized BundleHeaderProto (fields 1 num_shards,
// 2 endianness, 3 version). A table whose footer is followed by appended
// bytes is not a cut either, so the tail is searched for an earlier footer
// before the verdict is Torn.
//
// Note that BundleWriter writes the index under a temporary name and renames
// it when done (where the filesystem can rename atomically), so a torn
// .index under its final name comes from MergeBundles, which writes it in
// place, or from a filesystem that cannot rename atomically.
const (
	tfTableMagic   = 0xdb4775248b80fb57 // format.h: kTableMagicNumber
	tfFooterLen    = 48                 // format.h: Footer::kEncodedLength, 2*20 + 8
	tfBlockTrailer = 5                  // format.h: kBlockTrailerSize
)

func checkTFIndex(f *file) (Verdict, error) {
	const format = "tf-index"
	if f.size >= tfFooterLen {
		footer, err := f.readAt(f.size-tfFooterLen, tfFooterLen)
		if err != nil {
			return Verdict{}, err
		}
		if hasTFMagic(footer) {
			if !tfFooterFits(footer, f.size-tfFooterLen) {
				return Verdict{State: Unknown, Format: format, Reason: "table footer's block handles not understood"}, nil
			}
			return Verdict{State: Whole, Format: format}, nil
		}
	}
	head, err := f.readAt(0, int(min(f.size, 16)))
	if err != nil {
		return Verdict{}, err
	}
	if !tfBundleHead(head) {
		return Verdict{State: Unknown, Reason: "no table footer, and not a tensor bundle's head"}, nil
	}
	if f.size < tfFooterLen {
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("file ends at %d, shorter than the %d-byte table footer", f.size, tfFooterLen)}, nil
	}
	tail, off, err := f.tail(tailWindow)
	if err != nil {
		return Verdict{}, err
	}
	var magic [8]byte
	binary.LittleEndian.PutUint64(magic[:], tfTableMagic)
	for end := len(tail); ; {
		i := bytes.LastIndex(tail[:end], magic[:])
		if i < 0 || i+8 < tfFooterLen {
			break
		}
		start := i + 8 - tfFooterLen
		if tfFooterFits(tail[start:i+8], off+int64(start)) {
			return Verdict{State: Unknown, Format: format, Reason: "bytes follow the table footer"}, nil
		}
		end = i + 7
	}
	return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("table footer missing, file ends at %d", f.size)}, nil
}

func hasTFMagic(footer []byte) bool {
	return binary.LittleEndian.Uint64(footer[len(footer)-8:]) == tfTableMagic
}

// tfFooterFits decodes the footer (which starts at footerAt) and checks that
// both blocks it points to, with their trailers, lie before it.
func tfFooterFits(footer []byte, footerAt int64) bool {
	p := footer[:tfFooterLen-8]
	for range 2 {
		off, n := binary.Uvarint(p)
		if n <= 0 {
			return false
		}
		p = p[n:]
		size, n := binary.Uvarint(p)
		if n <= 0 {
			return false
		}
		p = p[n:]
		limit := uint64(footerAt)
		if off > limit || size > limit-off || limit-off-size < tfBlockTrailer {
			return false
		}
	}
	return true
}

// tfBundleHead reports whether head is, as far as it goes, the start of a
// tensor bundle: the header entry under the empty key whose value begins
// with a BundleHeaderProto field tag.
func tfBundleHead(head []byte) bool {
	// Block entry (table/block_builder.cc): varint32 shared, varint32
	// non_shared, varint32 value length, key delta, value.
	for i, want := range []byte{0, 0} {
		if i == len(head) {
			return true
		}
		if head[i] != want {
			return false
		}
	}
	rest := head[2:]
	vlen, n := binary.Uvarint(rest)
	if n == 0 {
		return true // the file ends inside the length
	}
	if n < 0 || vlen == 0 {
		return false
	}
	if len(rest) == n {
		return true
	}
	switch rest[n] {
	case 0x08, 0x10, 0x1a: // field 1 varint, field 2 varint, field 3 bytes
		return true
	}
	return false
}
