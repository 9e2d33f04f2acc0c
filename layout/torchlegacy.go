package layout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
)

// torch's legacy format: what torch.save wrote before 1.6, and still writes
// with _use_new_zipfile_serialization=False. From torch/serialization.py,
// _legacy_save and _legacy_load (torch 1.13):
//
//	pickle(MAGIC_NUMBER)       0x1950a86a20f9469cfc6c
//	pickle(PROTOCOL_VERSION)   1001
//	pickle(sys_info)           {"protocol_version", "little_endian", "type_sizes"}
//	pickle(obj)                storages replaced by persistent ids
//	                           ("storage", storage_type, key, location, numel, view_metadata)
//	pickle(sorted(keys))       the storage keys, in the order their data follows
//	for each key: 8-byte little-endian element count, then count*element_size bytes
//	                           (storage._write_file; the loader checks the count)
//
// The pickles use protocol 2 unless the caller asked for another. The format
// has no end marker, but the storages' element counts and types in the
// pickles say exactly where the file must end, so a cut file is one shorter
// than that. When the pickles cannot be followed the verdict is NoEndMarker:
// recognised, with nothing to check.

// legacyMagicPickle is pickle.dumps(MAGIC_NUMBER, protocol=2): PROTO 2,
// LONG1 of 10 bytes, STOP. A file cut inside it, or inside the magic
// pickled with another protocol torch.save's pickle_protocol allows (4 and
// 5 put a 13-byte FRAME first), is recognised by its prefix.
const legacyMagicPickle = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."

var legacyMagicPickles = []string{
	legacyMagicPickle,
	"\x80\x03" + legacyMagicPickle[2:],
	"\x80\x04\x95\x0d\x00\x00\x00\x00\x00\x00\x00" + legacyMagicPickle[2:],
	"\x80\x05\x95\x0d\x00\x00\x00\x00\x00\x00\x00" + legacyMagicPickle[2:],
}

var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const (
	legacyProtocolVersion = 1001
	// maxLegacyStorages bounds the 8-byte storage headers read; a state
	// dict of a large model has a few thousand storages.
	maxLegacyStorages = 1 << 16
)

// legacyElementSize is torch._utils._element_size of the dtype behind each
// storage class that _legacy_save pickles (torch/storage.py,
// _dtype_to_storage_type_map), and 1 for UntypedStorage, whose numel is its
// byte count.
var legacyElementSize = map[string]uint64{
	"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2,
	"LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1,
	"ByteStorage": 1, "BoolStorage": 1,
	"ComplexDoubleStorage": 16, "ComplexFloatStorage": 8,
	"QInt8Storage": 1, "QUInt8Storage": 1, "QInt32Storage": 4,
	"QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
	"UntypedStorage": 1,
}

// legacyStorageModules are the modules the storage classes are pickled
// from: torch.FloatStorage, torch.cuda.FloatStorage (older torch pickled a
// CUDA tensor's storage by its CUDA class; 1.13 pickles the CPU class and
// keeps the device in the location), torch.storage.UntypedStorage.
var legacyStorageModules = map[string]bool{"torch": true, "torch.cuda": true, "torch.storage": true}

type legacyStorage struct {
	numel, elemSize uint64
}

func checkTorchLegacy(f *file, head []byte) (Verdict, error) {
	const format = "torch-legacy"
	// head is the whole file when it is shorter than a magic pickle.
	for _, magic := range legacyMagicPickles {
		if f.size < int64(len(magic)) && len(head) >= minPrefix && bytes.HasPrefix([]byte(magic), head) {
			return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("file ends at %d, inside torch's magic number", f.size)}, nil
		}
	}
	m := newPickleMachine(f)
	magic, err := m.load()
	if err != nil {
		if isReadErr(err) {
			return Verdict{}, err
		}
		// Some other pickle, or not a pickle: not this format.
		return Verdict{}, nil
	}
	if v, ok := magic.(*big.Int); !ok || v.Cmp(legacyMagic) != 0 {
		return Verdict{}, nil
	}

	// From here the file is torch's legacy format.
	verdictFor := func(err error, where string) (Verdict, error) {
		var nu *pickleNotUnderstood
		switch {
		case errors.Is(err, errPickleCut):
			return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("file ends at %d, inside the pickled %s", f.size, where)}, nil
		case errors.Is(err, errPickleBound):
			return Verdict{State: NoEndMarker, Format: format, Reason: fmt.Sprintf("pickled %s runs past the first %d bytes", where, headLimit)}, nil
		case errors.As(err, &nu):
			return Verdict{State: NoEndMarker, Format: format, Reason: fmt.Sprintf("pickled %s: %v", where, err)}, nil
		}
		return Verdict{}, err
	}
	noEnd := func(why string) (Verdict, error) {
		return Verdict{State: NoEndMarker, Format: format, Reason: why}, nil
	}

	version, err := m.load()
	if err != nil {
		return verdictFor(err, "protocol version")
	}
	if version != int64(legacyProtocolVersion) {
		return noEnd(fmt.Sprintf("protocol version %s not understood", pyDescribe(version)))
	}
	sysInfo, err := m.load()
	if err != nil {
		return verdictFor(err, "system info")
	}
	// A file saved on a big-endian host may hold its counts and storages in
	// that host's order (older torch wrote them natively): left alone.
	if le, ok := dictGet(sysInfo, "little_endian"); !ok || le != true {
		return noEnd("saved on a big-endian host, or system info not understood")
	}

	storages := map[string]legacyStorage{}
	var pidErr error
	m.persid = func(pid any) (any, error) {
		s, key, err := legacyPersistentID(pid)
		if err != nil {
			pidErr = err
			return nil, err
		}
		// _legacy_save keeps the first storage seen under a key.
		if _, seen := storages[key]; !seen && key != "" {
			if len(storages) == maxLegacyStorages {
				pidErr = notUnderstood("more than %d storages", maxLegacyStorages)
				return nil, pidErr
			}
			storages[key] = s
		}
		return pyOpaque{}, nil
	}
	if _, err := m.load(); err != nil {
		if pidErr != nil {
			return noEnd(pidErr.Error())
		}
		return verdictFor(err, "object")
	}
	m.persid = nil

	keysVal, err := m.load()
	if err != nil {
		return verdictFor(err, "storage keys")
	}
	keys, ok := stringList(keysVal)
	if !ok || len(keys) != len(storages) || !slices.IsSorted(keys) {
		return noEnd("storage key list not understood")
	}

	// Where the storages must end, computed from the pickles alone.
	off := m.pos
	end := uint64(off)
	for i, k := range keys {
		s, ok := storages[k]
		if !ok || (i > 0 && keys[i-1] == k) {
			return noEnd("storage key list does not match the object's storages")
		}
		n, overflow := mulAdd(s.numel, s.elemSize, 8)
		if overflow || n > math.MaxInt64-end {
			return noEnd("storage sizes overflow")
		}
		end += n
	}

	// Cross-check every storage header the file holds against its pickle.
	at := off
	for _, k := range keys {
		if at+8 > f.size {
			break
		}
		var count uint64
		if at+8 <= int64(len(m.buf)) {
			count = binary.LittleEndian.Uint64(m.buf[at:])
		} else {
			b, err := f.readAt(at, 8)
			if err != nil {
				return Verdict{}, err
			}
			count = binary.LittleEndian.Uint64(b)
		}
		s := storages[k]
		if count != s.numel {
			return noEnd(fmt.Sprintf("storage %s at %d holds %d elements, its pickle says %d", k, at, count, s.numel))
		}
		at += 8 + int64(s.numel*s.elemSize)
	}

	switch want := int64(end); {
	case f.size < want:
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("torch legacy storages end at %d, file has %d", want, f.size)}, nil
	case f.size > want:
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("file has %d bytes, %d more than its storages need", f.size, f.size-want)}, nil
	}
	return Verdict{State: Whole, Format: format}, nil
}

// legacyPersistentID reads one persistent id of _legacy_save. A module id
// (a whole nn.Module saved with its source) stores no data; its key is "".
func legacyPersistentID(pid any) (legacyStorage, string, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) == 0 {
		return legacyStorage{}, "", notUnderstood("persistent id %T", pid)
	}
	switch t[0] {
	case "module":
		return legacyStorage{}, "", nil
	case "storage":
	default:
		return legacyStorage{}, "", notUnderstood("persistent id %s", pyDescribe(t[0]))
	}
	// ("storage", storage_type, key, location, numel[, view_metadata]);
	// view_metadata came with torch 0.4 and is None since 1.x.
	if len(t) != 5 && len(t) != 6 {
		return legacyStorage{}, "", notUnderstood("storage id of %d fields", len(t))
	}
	typ, ok1 := t[1].(pyGlobal)
	key, ok2 := t[2].(string)
	numel, ok3 := t[4].(int64)
	if !ok1 || !ok2 || !ok3 || numel < 0 || key == "" {
		return legacyStorage{}, "", notUnderstood("storage id fields")
	}
	size, known := legacyElementSize[typ.name]
	if !known || !legacyStorageModules[typ.module] {
		return legacyStorage{}, "", notUnderstood("storage type %s.%s", typ.module, typ.name)
	}
	return legacyStorage{numel: uint64(numel), elemSize: size}, key, nil
}

// pyDescribe names a pickled value for a reason: plain values as they are,
// containers and objects by their kind (their contents would make reasons
// long, and pointers would make them differ from run to run).
func pyDescribe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case int64, bool, float64, string, *big.Int:
		return fmt.Sprintf("%q", fmt.Sprint(v))
	case pyGlobal:
		return v.module + "." + v.name
	case pyTuple:
		return "a tuple"
	case *pyList:
		return "a list"
	case *pyDict:
		return "a dict"
	}
	return "an object"
}

func dictGet(d any, key string) (any, bool) {
	dict, ok := d.(*pyDict)
	if !ok {
		return nil, false
	}
	for i := 0; i+1 < len(dict.items); i += 2 {
		if dict.items[i] == key {
			return dict.items[i+1], true
		}
	}
	return nil, false
}

func stringList(v any) ([]string, bool) {
	l, ok := v.(*pyList)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l.items))
	for i, it := range l.items {
		if out[i], ok = it.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

// mulAdd returns a*b+c and whether it overflowed.
func mulAdd(a, b, c uint64) (uint64, bool) {
	if b != 0 && a > (math.MaxUint64-c)/b {
		return 0, true
	}
	return a*b + c, false
}

// isReadErr reports whether err is a failed read rather than the machine's
// judgement of the bytes.
func isReadErr(err error) bool {
	var nu *pickleNotUnderstood
	return !errors.Is(err, errPickleCut) && !errors.Is(err, errPickleBound) && !errors.As(err, &nu)
}
