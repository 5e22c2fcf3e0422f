package flowtest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// TrackSources makes Go's test cache depend on keymint's sources. A test
// that runs a keymint it built with `go build` depends on code the test
// binary does not import, so a changed handler would otherwise leave an
// old pass cached; the test cache keys on the files a test stats, so this
// stats every file of the module that can go into the binary (code,
// templates, go.mod), skipping node_modules, .git and docs.
func TrackSources() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "docs", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		_, err = os.Stat(path) // recorded by the test cache
		return err
	})
}

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("flowtest: no go.mod above the working directory")
		}
		dir = parent
	}
}
