package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// hashLen is the length of a resource's content hash (hex).
const hashLen = 24

// Entry is one distinct resource message ready to be sent: its name, its
// content hash (its version in delta xDS) and its encoding, made once and
// shared by every proxy and stream that sends the message.
//
// The encoding is a DeltaDiscoveryResponse.resources field (a Resource with
// name, version and the message packed in an Any), laid out so that its
// tail is exactly a DiscoveryResponse.resources field (the Any): both
// protocols send the same bytes, and a response is the concatenation of its
// header and its entries' encodings.
type Entry struct {
	name string
	once sync.Once
	err  error
	hash string
	// enc is the encoding; its Any tail starts at anyAt. Both are also
	// boxed as gRPC buffers, once, so that a response of many resources
	// allocates nothing per resource.
	enc         []byte
	anyAt       int
	delta, sotw mem.Buffer
	refs        int // guarded by the memo shard's lock
}

// Name returns the resource's name.
func (e *Entry) Name() string { return e.name }

// Version returns the resource's content hash.
func (e *Entry) Version() string { return e.hash }

// Field returns the encoding as a DeltaDiscoveryResponse.resources field
// (delta) or as a DiscoveryResponse.resources field. The bytes are shared:
// read-only.
func (e *Entry) Field(delta bool) []byte {
	if delta {
		return e.enc
	}
	return e.enc[e.anyAt:]
}

// Buffer returns Field as a gRPC buffer (it needs no freeing).
func (e *Entry) Buffer(delta bool) mem.Buffer {
	if delta {
		return e.delta
	}
	return e.sotw
}

// encode marshals msg (deterministically, so equal messages hash the same)
// straight into the entry's encoding and hashes it.
func (e *Entry) encode(t Type, msg proto.Message) error {
	o := proto.MarshalOptions{Deterministic: true}
	size := o.Size(msg)
	url := t.URL()
	anyLen := 1 + protowire.SizeBytes(len(url)) + 1 + protowire.SizeBytes(size)
	resLen := 1 + protowire.SizeBytes(len(e.name)) + 1 + protowire.SizeBytes(hashLen) + 1 + protowire.SizeBytes(anyLen)
	b := make([]byte, 0, 1+protowire.SizeBytes(resLen))
	b = protowire.AppendTag(b, 2, protowire.BytesType) // DeltaDiscoveryResponse.resources
	b = protowire.AppendVarint(b, uint64(resLen))
	b = protowire.AppendTag(b, 3, protowire.BytesType) // Resource.name
	b = protowire.AppendString(b, e.name)
	b = protowire.AppendTag(b, 1, protowire.BytesType) // Resource.version
	b = protowire.AppendVarint(b, hashLen)
	hashAt := len(b)
	b = b[:hashAt+hashLen] // filled in below
	anyAt := len(b)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // Resource.resource, DiscoveryResponse.resources
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // Any.type_url
	b = protowire.AppendString(b, url)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // Any.value
	b = protowire.AppendVarint(b, uint64(size))
	valueAt := len(b)
	b, err := o.MarshalAppend(b, msg)
	if err != nil {
		return fmt.Errorf("marshalling: %w", err)
	}
	if len(b)-valueAt != size {
		return errors.New("marshalling: the message changed while it was encoded")
	}
	sum := sha256.Sum256(b[valueAt:])
	hex.Encode(b[hashAt:hashAt+hashLen], sum[:hashLen/2])
	e.hash = string(b[hashAt : hashAt+hashLen])
	e.enc, e.anyAt = b, anyAt
	e.delta, e.sotw = mem.SliceBuffer(b), mem.SliceBuffer(b[anyAt:])
	return nil
}

// memoShards spreads the memo over locks.
const memoShards = 16

// memo holds an Entry per published resource message, by identity, with a
// count of the snapshot lists holding it. Resources are shared between
// proxies (the reconciler hands the same message to every proxy that needs
// it), so each is marshalled and hashed once. Published messages must never
// be changed.
type memo struct {
	seed   maphash.Seed
	shards [memoShards]memoShard
}

type memoShard struct {
	mu sync.Mutex
	m  map[proto.Message]*Entry
}

func newMemo() *memo {
	m := &memo{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = map[proto.Message]*Entry{}
	}
	return m
}

// shard picks a shard by the resource's name: any function of the message
// will do, and the name is at hand.
func (m *memo) shard(name string) *memoShard {
	return &m.shards[maphash.String(m.seed, name)%memoShards]
}

// acquire returns msg's entry, encoding it the first time, and counts a
// reference to it.
func (m *memo) acquire(t Type, msg proto.Message, name string) (*Entry, error) {
	sh := m.shard(name)
	sh.mu.Lock()
	e := sh.m[msg]
	if e == nil {
		e = &Entry{name: name}
		sh.m[msg] = e
	}
	e.refs++
	sh.mu.Unlock()
	e.once.Do(func() { e.err = e.encode(t, msg) })
	if e.err != nil {
		m.release(msg, name)
		return nil, e.err
	}
	return e, nil
}

// release drops one reference to msg.
func (m *memo) release(msg proto.Message, name string) {
	sh := m.shard(name)
	sh.mu.Lock()
	if e, ok := sh.m[msg]; ok {
		e.refs--
		if e.refs <= 0 {
			delete(sh.m, msg)
		}
	}
	sh.mu.Unlock()
}

// lookup returns msg's entry without counting a reference. A message no
// snapshot holds any more (a stream still compares against an older list)
// is encoded again, into an entry that is not kept.
func (m *memo) lookup(t Type, msg proto.Message, name string) *Entry {
	sh := m.shard(name)
	sh.mu.Lock()
	e := sh.m[msg]
	sh.mu.Unlock()
	if e == nil {
		e = &Entry{name: name}
	}
	e.once.Do(func() { e.err = e.encode(t, msg) })
	if e.err != nil {
		return nil
	}
	return e
}

// len returns the number of distinct messages held.
func (m *memo) len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
