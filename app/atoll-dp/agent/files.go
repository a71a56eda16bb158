package agent

import (
	"fmt"
	"os"
	"path/filepath"
)

// fileContent is one file for writeFilesAtomic.
type fileContent struct {
	path string
	data []byte
	mode os.FileMode
}

// writeFileAtomic replaces path with data so that a reader opening path sees
// either the old content or the new one in full, never a mix or a partial
// file. See writeFilesAtomic.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFilesAtomic(fileContent{path: path, data: data, mode: mode})
}

// writeFilesAtomic replaces several files, each atomically: every file's
// data first goes to a temporary file in the same directory (so that the
// rename stays within one file system), is flushed to disk and given its
// mode; only when all are staged are they renamed over their paths, in
// order and back to back, so that the moment readers can see some files
// new and others old is as short as two rename calls.
func writeFilesAtomic(files ...fileContent) error {
	temps := make([]string, 0, len(files))
	renamed := 0
	defer func() {
		for _, tmp := range temps[renamed:] {
			_ = os.Remove(tmp)
		}
	}()
	for _, f := range files {
		tmp, err := stage(f)
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		temps = append(temps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(temps[i], f.path); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
		renamed++
	}
	for _, f := range files {
		syncDir(filepath.Dir(f.path))
	}
	return nil
}

// stage writes f's data to a synced temporary file next to f.path and
// returns its name.
func stage(f fileContent) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return "", err
	}
	err = tmp.Chmod(f.mode)
	if err == nil {
		_, err = tmp.Write(f.data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// syncDir flushes a directory entry change to disk, on a best-effort basis:
// the rename is already visible to readers either way.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// ensureDir creates dir (and its parents) with mode 0700 when it is missing
// and checks that it is a directory.
func ensureDir(dir, flag string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s directory: %w", flag, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cannot use %s directory: %w", flag, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s is not a directory", flag, dir)
	}
	return nil
}
