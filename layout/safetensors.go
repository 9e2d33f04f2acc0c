package layout

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"unicode/utf8"
)

// safetensors, from the format section of huggingface/safetensors' README
// and its reader (safetensors/src/tensor.rs, read_metadata and validate):
//
//	8 bytes  N, little-endian u64: the header's length
//	N bytes  JSON object {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
//	         "__metadata__": {str: str}}, padded with spaces to a multiple of 8
//	rest     the byte buffer; data_offsets are relative to its start, and the
//	         reader requires the last end to be the end of the file
//	         (MetadataIncompleteBuffer otherwise)
//
// The writer (serialize_to_file) writes those three parts in that order, so
// a cut file is shorter than 8 + N + the largest end.
const (
	// tensor.rs: MAX_HEADER_SIZE. A larger N is not a header this format's
	// reader would read; such a file is not judged.
	maxSafetensorsHeader = 100_000_000
)

// safetensorsDtypeSize is the element size of the dtypes in tensor.rs's
// Dtype enum, for the shape check. Dtypes not listed (newer sub-byte types)
// skip that check rather than make the header not understood.
var safetensorsDtypeSize = map[string]uint64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

func checkSafetensors(f *file) (Verdict, error) {
	const format = "safetensors"
	if f.size < 8 {
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("file ends at %d, inside the 8-byte safetensors header length", f.size)}, nil
	}
	// One read covers the length and, for most files, the whole header.
	head, err := f.readAt(0, int(min(f.size, 64<<10)))
	if err != nil {
		return Verdict{}, err
	}
	n := binary.LittleEndian.Uint64(head)
	if n > maxSafetensorsHeader {
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("header length %d is over safetensors' limit of %d", n, maxSafetensorsHeader)}, nil
	}
	if len(head) > 8 && head[8] != '{' {
		// Every writer's header is a JSON object; bytes that are not one
		// are some other file named .safetensors, not a cut one.
		return Verdict{State: Unknown, Format: format, Reason: "no JSON object after the header length"}, nil
	}
	headerEnd := 8 + int64(n)
	if f.size < headerEnd {
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("safetensors header says at least %d bytes, file has %d", headerEnd, f.size)}, nil
	}
	if n > headLimit {
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("header of %d bytes is over the %d this check reads", n, headLimit)}, nil
	}
	header := head[8:min(int64(len(head)), headerEnd)]
	if int64(len(header)) < int64(n) {
		if header, err = f.readAt(8, int(n)); err != nil {
			return Verdict{}, err
		}
	}
	dataLen, ok := safetensorsDataLen(header)
	if !ok {
		return Verdict{State: Unknown, Format: format, Reason: "header not understood"}, nil
	}
	if dataLen > math.MaxInt64-uint64(headerEnd) {
		return Verdict{State: Unknown, Format: format, Reason: "header's offsets overflow"}, nil
	}
	want := headerEnd + int64(dataLen)
	switch {
	case f.size < want:
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("safetensors header says %d bytes, file has %d", want, f.size)}, nil
	case f.size > want:
		// The reader refuses this file too, but no cut makes a file
		// longer: something appended to it or rewrote it in place.
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("file has %d bytes, %d more than its header says", f.size, f.size-want)}, nil
	}
	return Verdict{State: Whole, Format: format}, nil
}

// safetensorsDataLen returns the byte buffer's length that header declares:
// the largest data_offsets end. It fails on anything tensor.rs's validate
// would reject for reasons other than the buffer's length: bad JSON, a
// tensor entry without two ordered offsets, a dtype and shape that do not
// fill their offsets.
func safetensorsDataLen(header []byte) (uint64, bool) {
	if !utf8.Valid(header) {
		// tensor.rs: InvalidHeader.
		return 0, false
	}
	// One pass into typed entries: __metadata__ (an object of strings)
	// decodes into an entry with no fields and is skipped; a negative,
	// fractional or oversized number fails the whole header, as it does
	// tensor.rs's.
	var entries map[string]struct {
		Dtype       string   `json:"dtype"`
		Shape       []uint64 `json:"shape"`
		DataOffsets []uint64 `json:"data_offsets"`
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if err := dec.Decode(&entries); err != nil || entries == nil {
		return 0, false
	}
	if dec.More() {
		// Anything but the spaces the writer pads with after the object.
		return 0, false
	}
	var end uint64
	for name, t := range entries {
		if name == "__metadata__" {
			continue
		}
		if len(t.DataOffsets) != 2 || t.DataOffsets[1] < t.DataOffsets[0] {
			return 0, false
		}
		begin, stop := t.DataOffsets[0], t.DataOffsets[1]
		if size, known := safetensorsDtypeSize[t.Dtype]; known {
			n := size
			for _, dim := range t.Shape {
				hi, lo := bits.Mul64(n, dim)
				if hi != 0 {
					return 0, false
				}
				n = lo
			}
			if n != stop-begin {
				return 0, false
			}
		}
		end = max(end, stop)
	}
	return end, true
}
