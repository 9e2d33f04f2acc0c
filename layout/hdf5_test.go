package layout

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// hdf5Spec describes a hand-built HDF5 file: a superblock laid out per the
// File Format Specification (II.A.1 versions 0/1, II.A.2 versions 2/3),
// after userBlock bytes, and zeros up to the end-of-file address.
type hdf5Spec struct {
	version   byte
	offSize   int
	userBlock int64
	// base is the stored base address; -1 means the signature's offset,
	// as the library writes it.
	base  int64
	eof   uint64 // stored end-of-file address (absolute)
	flags byte   // version 2/3 consistency flags
	// driver is the driver information block address (versions 0/1) or
	// the superblock extension address (versions 2/3); 0 for undefined.
	driver uint64
}

func (s hdf5Spec) bytes() []byte { return s.build(1 << 62) }

// build returns at most the first limit bytes of the file.
func (s hdf5Spec) build(limit int64) []byte {
	base := uint64(s.userBlock)
	if s.base >= 0 {
		base = uint64(s.base)
	}
	size := int64(s.eof) + s.userBlock - int64(base)
	out := make([]byte, max(min(size, limit), s.userBlock+64))
	for i := range s.userBlock {
		out[i] = "user block "[i%11]
	}
	sb := out[s.userBlock:]
	copy(sb, hdf5Sig)
	sb[8] = s.version
	o := s.offSize
	undefined := ^uint64(0)
	driver := undefined
	if s.driver != 0 {
		driver = s.driver
	}
	put := func(at int, v uint64) {
		for i := range o {
			sb[at+i] = byte(v >> (8 * i))
		}
	}
	switch s.version {
	case 0, 1:
		// versions: free-space 0, root symbol table entry 0, shared header 0
		sb[13], sb[14] = byte(o), byte(o)          // sizes of offsets and lengths
		binary.LittleEndian.PutUint16(sb[16:], 4)  // group leaf node K
		binary.LittleEndian.PutUint16(sb[18:], 16) // group internal node K
		at := 24
		if s.version == 1 {
			binary.LittleEndian.PutUint16(sb[24:], 32) // indexed storage internal node K
			at = 28
		}
		put(at, base)
		put(at+o, undefined) // free-space info
		put(at+2*o, s.eof)
		put(at+3*o, driver) // driver information block
		// The root group symbol table entry follows; zeros will do.
	case 2, 3:
		sb[9], sb[10], sb[11] = byte(o), byte(o), s.flags
		put(12, base)
		put(12+o, driver) // superblock extension
		put(12+2*o, s.eof)
		put(12+3*o, 48) // root group object header
		binary.LittleEndian.PutUint32(sb[12+4*o:], hdf5Lookup3(sb[:12+4*o], 0))
	}
	return out[:min(size, limit)]
}

func TestHDF5Lookup3(t *testing.T) {
	// The values lookup3.c's own driver prints for hashlittle.
	tests := []struct {
		in   string
		init uint32
		want uint32
	}{
		{"", 0, 0xdeadbeef},
		{"Four score and seven years ago", 0, 0x17770551},
		{"Four score and seven years ago", 1, 0xcd628161},
	}
	for _, tt := range tests {
		if got := hdf5Lookup3([]byte(tt.in), tt.init); got != tt.want {
			t.Errorf("hdf5Lookup3(%q, %d) = %#08x, want %#08x", tt.in, tt.init, got, tt.want)
		}
	}
}

func hdf5Specs() []struct {
	name string
	spec hdf5Spec
} {
	return []struct {
		name string
		spec hdf5Spec
	}{
		{"version 0", hdf5Spec{version: 0, offSize: 8, base: -1, eof: 4096}},
		{"version 1", hdf5Spec{version: 1, offSize: 8, base: -1, eof: 3000}},
		{"version 2", hdf5Spec{version: 2, offSize: 8, base: -1, eof: 2500}},
		{"version 3", hdf5Spec{version: 3, offSize: 8, base: -1, eof: 2500}},
		{"version 0, 4-byte offsets", hdf5Spec{version: 0, offSize: 4, base: -1, eof: 1000}},
		{"version 2, 2-byte offsets", hdf5Spec{version: 2, offSize: 2, base: -1, eof: 900}},
		{"version 0 after a 512-byte user block", hdf5Spec{version: 0, offSize: 8, userBlock: 512, base: -1, eof: 5000}},
		{"version 3 after a 2048-byte user block", hdf5Spec{version: 3, offSize: 8, userBlock: 2048, base: -1, eof: 6000}},
		// h5jam added a user block to a file written without one: the
		// stored base (0) and end no longer count it; the library shifts
		// the end by the move.
		{"version 0 moved by a user block added later", hdf5Spec{version: 0, offSize: 8, userBlock: 1024, base: 0, eof: 3000}},
	}
}

// hdf5DriverSpecs name a file driver's information (family, multi) or a
// superblock extension that may hold it: whole when as long as their end,
// but never torn for being shorter (see checkHDF5).
func hdf5DriverSpecs() []struct {
	name string
	spec hdf5Spec
} {
	return []struct {
		name string
		spec hdf5Spec
	}{
		{"version 0 with a driver information block", hdf5Spec{version: 0, offSize: 8, base: -1, eof: 3000, driver: 96}},
		{"version 3 with a superblock extension", hdf5Spec{version: 3, offSize: 8, base: -1, eof: 3000, driver: 48}},
	}
}

func TestHDF5Whole(t *testing.T) {
	for _, tt := range append(hdf5Specs(), hdf5DriverSpecs()...) {
		for _, name := range []string{"model.h5", "weights.hdf5", "model.weights.h5"} {
			t.Run(tt.name+" "+name, func(t *testing.T) {
				d := tt.spec.bytes()
				wantVerdict(t, fmt.Sprintf("%s %+v", name, tt.spec), judge(t, name, d), Verdict{State: Whole, Format: "hdf5"})
			})
		}
	}
	// A .keras or .ckpt is judged as HDF5 by its signature at 0, not by
	// its name; a signature after a user block is looked for only in HDF5's
	// own extensions.
	d := hdf5Spec{version: 0, offSize: 8, base: -1, eof: 2000}.bytes()
	for _, name := range []string{"model.keras", "model.ckpt", "weights.bin"} {
		wantVerdict(t, name, judge(t, name, d), Verdict{State: Whole, Format: "hdf5"})
	}
	ub := hdf5Spec{version: 0, offSize: 8, userBlock: 512, base: -1, eof: 2000}.bytes()
	wantVerdict(t, "user block in a .keras", judge(t, "model.keras", ub), Verdict{State: Unknown})
}

func TestHDF5CutsAreTorn(t *testing.T) {
	for _, tt := range hdf5Specs() {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.spec.bytes()
			sb := int(tt.spec.userBlock)
			// Cuts inside a user block or the signature after it are
			// Unknown (see ambiguousCut), the rest Torn.
			assertCutsTorn(t, "model.h5", d, 200, sb+8, sb+24, sb+28, sb+60)
		})
	}
}

func TestHDF5DriverCuts(t *testing.T) {
	for _, tt := range hdf5DriverSpecs() {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.spec.bytes()
			// The bytes read of the superblock: up to the driver block
			// address for version 0, the checksum for version 3.
			sbLen := 24 + 4*8
			if tt.spec.version >= 2 {
				sbLen = 12 + 4*8 + 4
			}
			for _, n := range cutPoints(len(d), 100, sbLen) {
				want := Unknown
				if n >= minPrefix && n < sbLen {
					want = Torn // inside the signature or superblock
				}
				if got := judge(t, "fam0.h5", d[:n]); got.State != want && n > 0 {
					t.Errorf("%s cut to %d of %d bytes: got %v, want %v", tt.name, n, len(d), got, want)
				}
			}
		})
	}
}

func TestHDF5CutReason(t *testing.T) {
	d := hdf5Spec{version: 0, offSize: 8, base: -1, eof: 4096}.bytes()
	tests := []struct {
		cut  int
		want string
	}{
		{6, "file ends at 6, inside the HDF5 signature"},
		{30, "file ends at 30, inside the HDF5 superblock"},
		{4095, "HDF5 superblock says 4096 bytes, file has 4095"},
	}
	for _, tt := range tests {
		wantVerdict(t, fmt.Sprintf("cut to %d", tt.cut), judge(t, "model.h5", d[:tt.cut]), Verdict{State: Torn, Format: "hdf5", Reason: tt.want})
	}
}

func TestHDF5AppendedIsNotTorn(t *testing.T) {
	for _, tt := range hdf5Specs() {
		t.Run(tt.name, func(t *testing.T) {
			assertAppendedNeverTorn(t, "model.h5", tt.spec.bytes())
		})
	}
}

func TestHDF5NotUnderstood(t *testing.T) {
	v0 := hdf5Spec{version: 0, offSize: 8, base: -1, eof: 2000}
	tests := []struct {
		name string
		data []byte
	}{
		{"superblock version 4", patched(v0.bytes(), 8, []byte{4})},
		{"3-byte offsets", patched(v0.bytes(), 13, []byte{3})},
		{"undefined end-of-file address", patched(v0.bytes(), 24+16, le64(^uint64(0)))},
		{"undefined base address", patched(v0.bytes(), 24, le64(^uint64(0)))},
		{"base address past the end", patched(v0.bytes(), 24, le64(1<<40))},
		{"version 2 checksum does not match", patched(hdf5Spec{version: 2, offSize: 8, base: -1, eof: 2000}.bytes(), 12+16, le64(1999))},
		{"version 3 open by a writer", hdf5Spec{version: 3, offSize: 8, base: -1, eof: 2000, flags: 0x01}.bytes()},
		{"version 3 open by an SWMR writer", hdf5Spec{version: 3, offSize: 8, base: -1, eof: 2000, flags: 0x05}.bytes()},
		// A writer killed part way leaves the end-of-file address it
		// wrote when it created the file, far before the data it wrote.
		{"longer than its superblock says", append(v0.bytes(), make([]byte, 1<<20)...)},
		{"signature only in a .h5 too short to hold a user block", []byte("not hdf5 at all")},
		// The family driver writes member 0 with the end of all members.
		{"version 0 with a driver block, shorter than its end", hdf5Spec{version: 0, offSize: 8, base: -1, eof: 1 << 20, driver: 96}.build(65536)},
		{"version 2 with an extension, shorter than its end", hdf5Spec{version: 2, offSize: 8, base: -1, eof: 1 << 20, driver: 48}.build(65536)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(t, "model.h5", tt.data)
			if got.State != Unknown {
				t.Errorf("%s (%d bytes): got %v, want unknown", tt.name, len(tt.data), got)
			}
		})
	}
}
