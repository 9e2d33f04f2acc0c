package layout

import (
	"encoding/binary"
	"fmt"
	"math"
)

// HDF5 is what Keras 2 (.h5), Keras 3's weights (.weights.h5, also inside a
// .keras zip) and h5py users write. The rules are from the HDF5 File Format
// Specification, section II.A "Disk Format: Level 0A - Format Signature and
// Superblock", for superblock versions 0 to 3, and from the library's own
// truncation check (H5Fsuper.c, H5F__super_read: "truncated file").
//
// The signature is at offset 0 or, after a user block, at 512, 1024, 2048...
// The superblock after it records the end-of-file address. The library
// truncates a file to that address when it closes it and refuses to open a
// file shorter than it. So a shorter file is Torn, one exactly as long is
// Whole, and a longer one (not closed by its writer, or appended to) is
// Unknown.
//
// What this cannot see: a save whose data write fails still closes a
// consistent file. h5py stopped by a file size limit drops the dataset and
// closes a smaller file; on a full tmpfs the library closed the file at its
// full end-of-file address with the data never written (a hole). Both are
// Whole here although the save failed.
const (
	hdf5Sig = "\x89HDF\r\n\x1a\n"
	// The largest superblock prefix read: version 1's fields up to its
	// driver information block address are 28+4*8 bytes, version 2/3's
	// whole superblock is 12+4*8+4 bytes.
	hdf5SuperblockRead = 64
)

// findHDF5Signature probes where the specification allows the signature
// after a user block: 512 and each power of two after it, below the size
// (the library's H5FD_locate_signature probes the same offsets).
func findHDF5Signature(f *file) (int64, bool, error) {
	for off := int64(512); off > 0 && off <= f.size-int64(len(hdf5Sig)); off *= 2 {
		b, err := f.readAt(off, len(hdf5Sig))
		if err != nil {
			return 0, false, err
		}
		if string(b) == hdf5Sig {
			return off, true, nil
		}
	}
	return 0, false, nil
}

// checkHDF5 judges the file whose signature is at sigOff.
func checkHDF5(f *file, sigOff int64) (Verdict, error) {
	const format = "hdf5"
	b, err := f.readAt(sigOff, int(min(f.size-sigOff, hdf5SuperblockRead)))
	if err != nil {
		return Verdict{}, err
	}
	cut := func() (Verdict, error) {
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("file ends at %d, inside the HDF5 superblock", f.size)}, nil
	}
	if len(b) < 9 {
		return cut()
	}
	// Field offsets within the superblock (spec, II.A.1 and II.A.2).
	var offSize, baseAt, need int
	switch version := b[8]; version {
	case 0, 1:
		// Signature, then eight one-byte versions and sizes (size of
		// offsets at 13), two 2-byte group K values and 4 bytes of flags;
		// version 1 adds a 2-byte K and 2 reserved bytes. Then the base
		// address, the free-space address and the end-of-file address.
		if len(b) < 14 {
			return cut()
		}
		offSize = int(b[13])
		baseAt = 24
		if version == 1 {
			baseAt = 28
		}
		// Up to the driver information block address.
		need = baseAt + 4*offSize
	case 2, 3:
		// Signature, version, size of offsets (9), size of lengths,
		// flags; then base, extension, end-of-file and root addresses and
		// a checksum over everything before it.
		if len(b) < 10 {
			return cut()
		}
		offSize = int(b[9])
		baseAt = 12
		need = baseAt + 4*offSize + 4
	default:
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("superblock version %d not understood", version)}, nil
	}
	switch offSize {
	case 2, 4, 8:
	default:
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("size of offsets %d not understood", offSize)}, nil
	}
	if len(b) < need {
		return cut()
	}
	if b[8] >= 2 {
		sumAt := baseAt + 4*offSize
		if hdf5Lookup3(b[:sumAt], 0) != binary.LittleEndian.Uint32(b[sumAt:]) {
			// A superblock being rewritten, or not a superblock at all.
			return Verdict{State: Unknown, Format: format, Reason: "superblock checksum does not match"}, nil
		}
	}
	if b[8] >= 2 && b[11] != 0 {
		// Version 3's consistency flags: bit 0 is set while a writer has
		// the file open (bit 2 for an SWMR writer) and cleared when it
		// closes it. A writer that died leaves it set, and with it an
		// end-of-file address from when the file was opened. No end to
		// compare, but no proof of a cut either: the writer may be alive.
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("superblock marks the file open by a writer (flags 0x%02x)", b[11])}, nil
	}
	// A file driver other than the default one (family, multi, split)
	// stores its information in a block the superblock points to (versions
	// 0/1) or in the superblock extension (versions 2/3). With such a
	// driver the end-of-file address covers the whole address space, which
	// may span several files: h5py's family driver writes member 0 with
	// the end of all members in its superblock. So a defined driver block
	// or extension forbids calling a short file torn.
	driverAt := baseAt + 3*offSize // versions 0/1: driver information block
	if b[8] >= 2 {
		driverAt = baseAt + offSize // versions 2/3: superblock extension
	}
	_, otherDriver := hdf5Addr(b[driverAt:], offSize)
	base, ok1 := hdf5Addr(b[baseAt:], offSize)
	eof, ok2 := hdf5Addr(b[baseAt+2*offSize:], offSize)
	if !ok1 || !ok2 {
		// The undefined address (all bits set) has no end to compare.
		return Verdict{State: Unknown, Format: format, Reason: "superblock has an undefined address"}, nil
	}
	// The end-of-file address is absolute: the library writes the
	// relative end plus the base address (H5Fsuper_cache.c) and compares
	// the stored value with the file's physical size. If the superblock
	// has moved since it was written (a user block added by h5jam), the
	// library shifts the stored end by the move, as here.
	if base > math.MaxInt64/2 || eof > math.MaxInt64/2 || uint64(sigOff)+eof < base {
		return Verdict{State: Unknown, Format: format, Reason: "superblock addresses not understood"}, nil
	}
	want := int64(eof) + sigOff - int64(base)
	switch {
	case f.size < want && otherDriver:
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("HDF5 superblock says %d bytes, file has %d, but its file driver may spread them over several files", want, f.size)}, nil
	case f.size < want:
		return Verdict{State: Torn, Format: format, Reason: fmt.Sprintf("HDF5 superblock says %d bytes, file has %d", want, f.size)}, nil
	case f.size > want:
		// The library truncates a file to its end-of-file address when it
		// closes it, so a longer file was not closed: an h5py writer killed
		// part way leaves the address it wrote when it created the file
		// (2048) before megabytes of data. Or bytes were appended. Either
		// way the superblock cannot vouch for the file.
		return Verdict{State: Unknown, Format: format, Reason: fmt.Sprintf("file has %d bytes, %d more than its superblock says (not closed by its writer, or appended to)", f.size, f.size-want)}, nil
	}
	return Verdict{State: Whole, Format: format}, nil
}

// hdf5Addr decodes a little-endian address of n bytes; ok is false for the
// undefined address, all bits set (spec, II.A: "undefined address").
func hdf5Addr(b []byte, n int) (uint64, bool) {
	var v uint64
	undefined := true
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
		undefined = undefined && b[i] == 0xff
	}
	return v, !undefined
}

// hdf5Lookup3 is Bob Jenkins' lookup3 hashlittle, which the specification
// names as the checksum of version 2 and 3 superblocks (HDF5's
// H5_checksum_lookup3, called with an initial value of 0).
func hdf5Lookup3(k []byte, initval uint32) uint32 {
	rot := func(x uint32, n uint) uint32 { return x<<n | x>>(32-n) }
	a := 0xdeadbeef + uint32(len(k)) + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		// mix
		a -= c
		a ^= rot(c, 4)
		c += b
		b -= a
		b ^= rot(a, 6)
		a += c
		c -= b
		c ^= rot(b, 8)
		b += a
		a -= c
		a ^= rot(c, 16)
		c += b
		b -= a
		b ^= rot(a, 19)
		a += c
		c -= b
		c ^= rot(b, 4)
		b += a
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	// The last 1 to 12 bytes, zero-padded, in the same little-endian words.
	var last [12]byte
	copy(last[:], k)
	a += binary.LittleEndian.Uint32(last[:])
	b += binary.LittleEndian.Uint32(last[4:])
	c += binary.LittleEndian.Uint32(last[8:])
	// final
	c ^= b
	c -= rot(b, 14)
	a ^= c
	a -= rot(c, 11)
	b ^= a
	b -= rot(a, 25)
	c ^= b
	c -= rot(b, 16)
	a ^= c
	a -= rot(c, 4)
	b ^= a
	b -= rot(a, 14)
	c ^= b
	c -= rot(b, 24)
	return c
}
