package layout

import (
	"encoding/binary"
	"fmt"
)

// Zip is what torch.save (torch >= 1.6), Lightning's .ckpt, Keras 3's .keras
// and numpy's .npz are written as. The structures and their order are from
// PKWARE's APPNOTE.TXT (6.3.x):
//
//	[local file header 1][file data 1] ... [local file header n][file data n]
//	[central directory header 1] ... [central directory header n]
//	[zip64 end of central directory record]    (zip64 only)
//	[zip64 end of central directory locator]   (zip64 only)
//	[end of central directory record][.ZIP file comment]
//
// Every writer here (Python's zipfile, miniz inside torch, Go's archive/zip)
// writes the central directory and the end records last, after all data, so
// a save cut anywhere before its last bytes has no end record at the end.
const (
	localHeaderSig = "PK\x03\x04" // APPNOTE 4.3.7
	cdHeaderSig    = "PK\x01\x02" // APPNOTE 4.3.12
	eocdSig        = "PK\x05\x06" // APPNOTE 4.3.16
	z64LocSig      = "PK\x06\x07" // APPNOTE 4.3.15
	z64RecSig      = "PK\x06\x06" // APPNOTE 4.3.14

	// APPNOTE 4.3.16: the end record is 22 bytes before its comment, whose
	// length is a 2-byte field, so the record starts at most 22+65535
	// bytes before the end of a zip that ends where its comment does.
	eocdLen       = 22
	maxZipComment = 65535
	// APPNOTE 4.3.15: the zip64 locator is 20 bytes and sits right before
	// the end record.
	z64LocLen = 20
	// APPNOTE 4.3.14: the zip64 end record is at least 56 bytes; its size
	// field counts the bytes after the first 12.
	z64RecMinLen = 56

	// Most zips end in a record with no comment, so a small tail read
	// decides them; only the rest pay for the full 64 KiB window.
	zipQuickTail = 4096
)

// candidate is what one "PK\x05\x06" found in the tail turns out to be.
type candidate int

const (
	// broken: conclusively not the end record of a whole zip: its comment
	// or its central directory runs past where they would have to end.
	broken candidate = iota
	// unclear: a record this check does not understand (multi-disk, fields
	// saturated without zip64 records, no central directory where it
	// points). Never evidence of a cut.
	unclear
	// trailing: a consistent end record followed by bytes that are not
	// its comment: data appended to a zip, not a cut.
	trailing
	// ends: a consistent end record whose comment ends the file.
	ends
)

func checkZip(f *file) (Verdict, error) {
	if f.size < eocdLen {
		// The magic says zip and the smallest zip (an empty archive) is one
		// 22-byte end record.
		return Verdict{State: Torn, Format: "zip", Reason: fmt.Sprintf("file ends at %d, shorter than the smallest zip (%d bytes)", f.size, eocdLen)}, nil
	}
	if f.size > zipQuickTail {
		tail, off, err := f.tail(zipQuickTail)
		if err != nil {
			return Verdict{}, err
		}
		v, err := judgeZipTail(f, tail, off)
		if err != nil || v.State == Whole {
			return v, err
		}
	}
	tail, off, err := f.tail(tailWindow)
	if err != nil {
		return Verdict{}, err
	}
	return judgeZipTail(f, tail, off)
}

// judgeZipTail looks at every end-record signature in tail (which starts at
// offset off), from the last to the first, as Python's zipfile and Go's
// archive/zip look for the last one. Looking at all of them keeps a comment
// or appended bytes that happen to contain the signature from deciding.
func judgeZipTail(f *file, tail []byte, off int64) (Verdict, error) {
	var sawTrailing, sawUnclear bool
	var brokenWhy string
	for i := len(tail) - eocdLen; i >= 0; i-- {
		if string(tail[i:i+4]) != eocdSig {
			continue
		}
		c, format, why, err := judgeEOCD(f, tail, off, off+int64(i))
		if err != nil {
			return Verdict{}, err
		}
		switch c {
		case ends:
			return Verdict{State: Whole, Format: format}, nil
		case trailing:
			sawTrailing = true
		case unclear:
			sawUnclear = true
		case broken:
			if brokenWhy == "" {
				brokenWhy = why
			}
		}
	}
	switch {
	case sawTrailing:
		// Readers (zipfile, archive/zip, unzip) accept bytes after the end
		// record; something appended them after a whole save.
		return Verdict{State: Unknown, Format: "zip", Reason: "bytes follow the zip end record"}, nil
	case sawUnclear:
		return Verdict{State: Unknown, Format: "zip", Reason: "zip end record not understood"}, nil
	case brokenWhy != "":
		return Verdict{State: Torn, Format: "zip", Reason: brokenWhy}, nil
	}
	return Verdict{State: Torn, Format: "zip", Reason: fmt.Sprintf("zip end record missing, file ends at %d", f.size)}, nil
}

// judgeEOCD judges the end record at offset p. A zip64 archive is judged by
// its zip64 records and, failing that, by the 32-bit fields if they are not
// saturated; the better of the two answers counts, so a stray locator
// signature in the last central directory entry cannot make a whole zip torn.
func judgeEOCD(f *file, tail []byte, tailOff, p int64) (candidate, string, string, error) {
	rec, err := bytesAt(f, tail, tailOff, p, eocdLen)
	if err != nil {
		return 0, "", "", err
	}
	le := binary.LittleEndian
	// APPNOTE 4.3.16 field order.
	disk := le.Uint16(rec[4:])
	cdDisk := le.Uint16(rec[6:])
	entriesHere := le.Uint16(rec[8:])
	entries := le.Uint16(rec[10:])
	cdSize := le.Uint32(rec[12:])
	cdOff := le.Uint32(rec[16:])
	commentLen := int64(le.Uint16(rec[20:]))

	end := p + eocdLen + commentLen
	if end > f.size {
		return broken, "", fmt.Sprintf("zip end record's comment runs past the end of the file at %d", f.size), nil
	}
	// Every path below considers at least once; the best answer wins.
	best, format, why, considered := broken, "zip", "", false
	consider := func(c candidate, fm, w string) {
		if !considered || c > best {
			best, format, why, considered = c, fm, w, true
		}
	}

	hasLocator := false
	if p >= z64LocLen {
		loc, err := bytesAt(f, tail, tailOff, p-z64LocLen, z64LocLen)
		if err != nil {
			return 0, "", "", err
		}
		if string(loc[:4]) == z64LocSig {
			hasLocator = true
			c, w, err := judgeZip64(f, tail, tailOff, p, loc)
			if err != nil {
				return 0, "", "", err
			}
			consider(c, "zip64", w)
		}
	}

	// APPNOTE 4.4.1.4: a field saturated at 0xFFFF or 0xFFFFFFFF means the
	// value is in the zip64 record. Exactly 65535 entries is also written
	// as 0xFFFF without zip64 by Python's zipfile, so only the size and
	// offset fields count as saturated.
	saturated := cdSize == 0xFFFFFFFF || cdOff == 0xFFFFFFFF
	switch {
	case saturated && !hasLocator:
		consider(unclear, "zip", "")
	case saturated:
		// The zip64 records decided.
	case disk != 0 || cdDisk != 0 || entriesHere != entries:
		// A disk of a spanned archive: its central directory is elsewhere.
		consider(unclear, "zip", "")
	default:
		c, w, err := judgeCentralDir(f, tail, tailOff, p, uint64(cdOff), uint64(cdSize), uint64(entries), "end record")
		if err != nil {
			return 0, "", "", err
		}
		consider(c, "zip", w)
	}
	if best == ends && end != f.size {
		best = trailing
	}
	return best, format, why, nil
}

// judgeZip64 follows the zip64 locator (APPNOTE 4.3.15) that sits right
// before the end record at p to the zip64 end record (APPNOTE 4.3.14).
func judgeZip64(f *file, tail []byte, tailOff, p int64, loc []byte) (candidate, string, error) {
	le := binary.LittleEndian
	recDisk := le.Uint32(loc[4:])
	recOff := le.Uint64(loc[8:])
	disks := le.Uint32(loc[16:])
	if recDisk != 0 || disks > 1 {
		return unclear, "", nil
	}
	locPos := uint64(p - z64LocLen)
	if recOff > locPos || locPos-recOff < z64RecMinLen {
		return broken, "zip64 end record runs past its locator", nil
	}
	rec, err := bytesAt(f, tail, tailOff, int64(recOff), z64RecMinLen)
	if err != nil {
		return 0, "", err
	}
	if string(rec[:4]) != z64RecSig {
		// The locator's offset is relative to the start of the archive;
		// with bytes prepended to the archive the record is elsewhere.
		return unclear, "", nil
	}
	recSize := le.Uint64(rec[4:])
	if recSize > locPos || recOff+12 > locPos-recSize {
		return broken, "zip64 end record runs past its locator", nil
	}
	disk := le.Uint32(rec[16:])
	cdDisk := le.Uint32(rec[20:])
	entriesHere := le.Uint64(rec[24:])
	entries := le.Uint64(rec[32:])
	cdSize := le.Uint64(rec[40:])
	cdOff := le.Uint64(rec[48:])
	if disk != 0 || cdDisk != 0 || entriesHere != entries {
		return unclear, "", nil
	}
	return judgeCentralDir(f, tail, tailOff, int64(recOff), cdOff, cdSize, entries, "zip64 end record")
}

// judgeCentralDir checks that the central directory of cdSize bytes, which
// the record at recPos says starts at cdOff, ends at or before that record.
// It may end before it at the distance by which the archive was prepended
// to (a self-extracting stub), which is no cut. The directory's first
// header must be where it ends up; otherwise the record is not understood.
func judgeCentralDir(f *file, tail []byte, tailOff, recPos int64, cdOff, cdSize, entries uint64, what string) (candidate, string, error) {
	end := uint64(recPos)
	if cdSize > end || cdOff > end-cdSize {
		return broken, fmt.Sprintf("central directory runs past the %s", what), nil
	}
	if cdSize == 0 {
		if entries != 0 {
			return unclear, "", nil
		}
		return ends, "", nil
	}
	// APPNOTE 4.3.6: the central directory comes right before the end
	// records, so it starts cdSize bytes before the record.
	sig, err := bytesAt(f, tail, tailOff, recPos-int64(cdSize), 4)
	if err != nil {
		return 0, "", err
	}
	if string(sig) != cdHeaderSig {
		return unclear, "", nil
	}
	return ends, "", nil
}

// bytesAt returns n bytes at off, from tail when they lie in it.
func bytesAt(f *file, tail []byte, tailOff, off int64, n int) ([]byte, error) {
	if off >= tailOff && off+int64(n) <= tailOff+int64(len(tail)) {
		return tail[off-tailOff : off-tailOff+int64(n)], nil
	}
	return f.readAt(off, n)
}
