package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteFileAtomic(t *testing.T) {
	old := syscall.Umask(0o077) // the mode must not depend on the umask
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o600, 0o644} {
		p := filepath.Join(dir, "f"+mode.String())
		require.NoError(t, writeFileAtomic(p, []byte("one"), mode))
		require.NoError(t, writeFileAtomic(p, []byte("two"), mode))
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, mode, fi.Mode().Perm())
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Equal(t, "two", string(b))
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary file is left behind")

	err = writeFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600)
	require.ErrorContains(t, err, "writing "+filepath.Join(dir, "missing", "f")+": ")
}

func TestWriteFileAtomicUnderConcurrentReads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cert.pem")
	versions := make([][]byte, 50)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i%26)}, 256<<10) // large enough for many write calls
	}
	require.NoError(t, writeFileAtomic(p, versions[0], 0o644))

	var stop atomic.Bool
	var reads, torn atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				b, err := os.ReadFile(p)
				if err != nil {
					torn.Add(1) // a missing file is as bad as a partial one
					continue
				}
				reads.Add(1)
				if len(b) != 256<<10 || strings.Count(string(b), string(b[:1])) != len(b) {
					torn.Add(1)
				}
			}
		})
	}
	for _, v := range versions[1:] {
		require.NoError(t, writeFileAtomic(p, v, 0o644))
	}
	stop.Store(true)
	wg.Wait()
	require.Positive(t, reads.Load())
	require.Zero(t, torn.Load(), "a reader saw a missing, partial or mixed file")
}
