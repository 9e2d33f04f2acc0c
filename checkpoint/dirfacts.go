package checkpoint

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/checkpoint-exporter/checkpoint_exporter/internal/dirfs"
)

// factNames are the files inside a checkpoint directory that some framework
// writes last, or that say what the directory is. Their presence is read once
// per change of the directory (its inode, mtime and ctime) and cached.
var factNames = []string{
	"trainer_state.json",   // transformers Trainer, written last
	"random_states_0.pkl",  // accelerate save_state, written last by process 0
	".metadata",            // torch.distributed.checkpoint, renamed into place last
	"commit_success.txt",   // orbax, written on commit
	"_CHECKPOINT_METADATA", // orbax step metadata
	"checkpoint",           // t5x msgpack, written last; flax
	"config.yaml",          // OLMo, written last
	"data.pt",              // verl, dataloader state after actor and critic
	"metadata.json",        // Megatron dist-ckpt, written last
	"PINNED",               // t5x: never delete
	// torchtune's HF checkpointer, written after the shards
	"model.safetensors.index.json",
	"model_config.json", // nanotron, written last (after latest.txt)
	".metadata.json",    // OLMo-core >= 1.0.2, written last
	"meta.pt",           // Lightning's sharded *.ckpt/ directory, after the shards
}

func factBit(name string) uint32 {
	for i, n := range factNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

// dirFacts is what the top level of a checkpoint directory shows.
type dirFacts struct {
	has uint32
	// content: weights, optimizer state or checkpoint metadata are there.
	content bool
	// empty: nothing is there yet.
	empty bool
	// names are the entries' names (nil when more than maxFactNames), for
	// the sibling comparison.
	names []string
}

// contentExts are extensions of files that hold tensors or training state.
var contentExts = []string{".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".h5", ".keras", ".msgpack", ".distcp", ".npz", ".pkl", ".index", ".tar", ".json.gz"}

// contentDirs are subdirectories that hold a checkpoint's items: orbax item
// names, OLMo's model_and_optim, NeMo 2's weights, verl's actor and critic,
// diffusers' unet, Megatron's mp_rank_NN.
var contentDirs = []string{"default", "state", "params", "opt_state", "train_state", "items", "model", "model_and_optim",
	"optim", "optimizer", "weights", "actor", "critic", "unet", "transformer", "controlnet", "train", "pytorch_model"}

func isContent(name string, typ byte) bool {
	if factBit(name) != 0 && name != "config.yaml" && name != "PINNED" {
		return true
	}
	if typ == unix.DT_DIR || typ == unix.DT_UNKNOWN {
		for _, d := range contentDirs {
			if name == d {
				return true
			}
		}
		for _, p := range []string{"mp_rank_", "tp_rank_", "global_step", "pytorch_model_fsdp", "target."} {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
	}
	for _, e := range contentExts {
		if strings.HasSuffix(name, e) {
			return true
		}
	}
	return false
}

// readFacts lists the directory name below dirfd once, with buf for getdents.
func readFacts(dirfd int, name string, buf []byte) (dirFacts, error) {
	nameZ := append([]byte(name), 0)
	fd, err := dirfs.OpenDirAt(dirfd, nameZ)
	if err != nil {
		return dirFacts{}, err
	}
	defer unix.Close(fd)
	f := dirFacts{empty: true, names: []string{}}
	err = dirfs.ReadDirents(fd, buf, func(childZ []byte, typ byte) bool {
		child := dirfs.Name(childZ)
		f.empty = false
		if f.names != nil && len(f.names) < maxFactNames {
			f.names = append(f.names, strings.Clone(child))
		} else {
			f.names = nil
		}
		f.has |= factBit(child)
		if !f.content && isContent(child, typ) {
			f.content = true
		}
		return true
	})
	return f, err
}

// settle reads what the layout needs to know of the checkpoint directories'
// contents (cached per directory while its entry is unchanged) and lets the
// match apply it. It returns the facts it read, by checkpoint (zero where
// unknown).
func (s *Scanner) settle(d *listing, m *match, sized []sizedCheckpoint) []dirFacts {
	fs := make([]found, len(sized))
	facts := make([]dirFacts, len(sized))
	known := make([]bool, len(sized))
	next := make(map[string]cachedFacts, len(s.facts))
	var buf []byte
	for i, r := range sized {
		fs[i] = r.found
		if !r.found.dir || len(r.entries) != 1 || !r.entries[0].Dir {
			continue
		}
		e := r.entries[0]
		if c, ok := s.facts[e.Name]; ok && c.entry == e {
			facts[i], known[i] = c.facts, true
		} else {
			if buf == nil {
				buf = make([]byte, dirfs.BufSize)
			}
			f, err := readFacts(d.fd, e.Name, buf)
			if err != nil {
				continue // vanished or unreadable: judged by name alone
			}
			facts[i], known[i] = f, true
		}
		next[e.Name] = cachedFacts{entry: e, facts: facts[i]}
	}
	s.facts = next
	m.settle(d, fs, facts, known)
	for i := range sized {
		sized[i].found = fs[i]
	}
	return facts
}
