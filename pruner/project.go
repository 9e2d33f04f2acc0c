package pruner

// Projection is the footprint of a checkpointing schedule under a policy.
type Projection struct {
	Files int64
	Bytes uint64
	// CappedBy says which limit set Files: "keep", "max_bytes" or "".
	CappedBy string
}

// Project computes how many checkpoints a run of steps saving every saveEvery
// steps leaves behind when keeping keep of them (0: all) within maxBytes (0:
// no cap), and their size. The newest checkpoint always stays, even alone
// over maxBytes, as the pruner keeps it.
func Project(saveEvery, steps, keep int64, size, maxBytes uint64) Projection {
	pr := Projection{Files: steps / saveEvery}
	if keep > 0 && keep < pr.Files {
		pr.Files, pr.CappedBy = keep, "keep"
	}
	if maxBytes > 0 && size > 0 {
		if fit := max(int64(maxBytes/size), 1); fit < pr.Files {
			pr.Files, pr.CappedBy = fit, "max_bytes"
		}
	}
	pr.Bytes = uint64(pr.Files) * size
	return pr
}
