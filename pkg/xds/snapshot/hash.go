package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Hash is a 128-bit content hash. Equal content hashes equal in every
// process and on every run; the zero Hash means "nothing".
type Hash [16]byte

// String returns the hash as 32 hexadecimal digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero Hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// Hasher accumulates values into a content hash. Every value is written with
// its length or a fixed width, so no two sequences of values collide by
// concatenation. The zero value is not usable; call NewHasher.
type Hasher struct {
	buf []byte
}

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher { return &Hasher{buf: make([]byte, 0, 128)} }

// String writes s, length first.
func (x *Hasher) String(s string) {
	x.Uint64(uint64(len(s)))
	x.buf = append(x.buf, s...)
}

// Bytes writes b, length first.
func (x *Hasher) Bytes(b []byte) {
	x.Uint64(uint64(len(b)))
	x.buf = append(x.buf, b...)
}

// Uint64 writes v in 8 bytes.
func (x *Hasher) Uint64(v uint64) { x.buf = binary.LittleEndian.AppendUint64(x.buf, v) }

// Bool writes b as one byte.
func (x *Hasher) Bool(b bool) {
	if b {
		x.buf = append(x.buf, 1)
	} else {
		x.buf = append(x.buf, 0)
	}
}

// Hash writes another hash.
func (x *Hasher) Hash(h Hash) { x.buf = append(x.buf, h[:]...) }

// StringMap writes m with its keys sorted.
func (x *Hasher) StringMap(m map[string]string) {
	x.Uint64(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		x.String(k)
		x.String(m[k])
	}
}

// Sum returns the hash of everything written.
func (x *Hasher) Sum() Hash {
	full := sha256.Sum256(x.buf)
	var out Hash
	copy(out[:], full[:])
	return out
}

// ResourceHash returns the content hash of a resource: its type, mesh, name,
// labels, spec and status. The store-assigned version and times are left
// out, so writing the same content again hashes the same.
func ResourceHash(res *resource.Resource) (Hash, error) {
	x := NewHasher()
	x.String(res.Type)
	x.String(res.Meta.Mesh)
	x.String(res.Meta.Name)
	x.StringMap(res.Meta.Labels)
	spec, err := json.Marshal(res.Spec)
	if err != nil {
		return Hash{}, err
	}
	x.Bytes(spec)
	if res.Status != nil {
		st, err := json.Marshal(res.Status)
		if err != nil {
			return Hash{}, err
		}
		x.Bytes(st)
	}
	return x.Sum(), nil
}
